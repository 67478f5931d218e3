"""Acceptance: "this code change does not change results", said explicitly and recorded.

Design note
-----------
A refactor changes a processor's code version, so every result of its nodes
(and, through their keys, nothing downstream whose inputs stay equal) would be
computed again. `accept` lets a person say the new code gives the same
results as the code before it, for one node label and processor:

* the *previous* code version is the code version of the node's most recently
  created result whose code version is not the current one. Only results of
  that one code version are accepted: results of still older code were made
  by code the person did not vouch for (an earlier edit may have changed
  results on purpose);
* each of those results gets a second index row, keyed as the current code
  would key it (same init version, same inputs), with the same data version.
  The bytes are shared (a result held in its own index row is copied into the
  new row); nothing is recomputed;
* downstream keys are built from data versions, which are unchanged, so
  downstream nodes are hits too;
* the acceptance is one row of the run log, of kind ``"accept"``, naming the
  node, the processor and both code versions, with the new keys as written and
  the old ones as hits. ``incgraph show`` and ``incgraph lineage`` read it back
  (`acceptances`), and ``gc`` keeps these rows however long the log.

It is never automatic: nothing in a run decides that code is equivalent.
Accepting when no earlier code version has results raises
`NotCachedError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from incgraph import hashing
from incgraph.errors import NotCachedError, ReadOnlyStoreError
from incgraph.sentinels import MISSING
from incgraph.store.protocols import Record

if TYPE_CHECKING:
    from incgraph.store.store import Store

__all__ = ["ACCEPT_KIND", "AcceptReport", "Acceptance", "accept", "acceptances"]

ACCEPT_KIND = "accept"
"""The run-log kind of an acceptance."""

_ARROW = " -> "
_CODE = " code "


@dataclass
class AcceptReport:
    """What one acceptance did (or, with ``dry_run``, would do).

    Attributes
    ----------
    node, processor : the node label and processor accepted.
    previous, current : the code version whose results were accepted, and the new one.
    accepted : (old key, new key) of each result now a hit for the current code.
    already : results the current code already had (left as they are).
    dry_run : nothing was written.
    """

    node: str
    processor: str
    previous: str
    current: str
    accepted: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class Acceptance:
    """How a result came from an acceptance: the run-log row, and the code that made it.

    ``old_key`` is the key of the result it was accepted from.
    """

    run_id: int
    when: float
    previous: str
    old_key: str

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {
            "run": self.run_id,
            "when": self.when,
            "code_version": self.previous,
            "key": self.old_key,
        }


def accept(
    store: Store,
    node: str,
    processor: str,
    current: str,
    *,
    what: str | None = None,
    dry_run: bool = False,
) -> AcceptReport:
    """Make ``node``'s results of its previous code version hits for code version ``current``.

    Parameters
    ----------
    store : Store
    node : str
        The node label (``"2"``, ``"video/3"``, a memoized function's name).
    processor : str
        The processor's qualified name, as its records name it.
    current : str
        The code version the node has now.
    what : str, optional
        How messages name the target (default: ``node N (processor)``).
    dry_run : bool
        Report only; write nothing.

    Raises
    ------
    NotCachedError
        No result of ``node`` was made by an earlier code version.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> from incgraph.run.keys import call_key
    >>> store = memory_store()
    >>> old = call_key("c1" * 16, "i" * 32, {"x": "0" * 32})
    >>> _ = store.save(Record(old, "d" * 32, "1", "m.Inc", "c1" * 16, "i" * 32, {"x": "0" * 32}), 1)
    >>> report = accept(store, "1", "m.Inc", "c2" * 16)
    >>> new = call_key("c2" * 16, "i" * 32, {"x": "0" * 32})
    >>> report.accepted == [(old, new)], store.lookup_version(new) == "d" * 32
    (True, True)
    """
    what = what or f"node {node} ({processor})"
    records = [r for r in store.index.records() if r.node == node and r.processor == processor]
    earlier = [r for r in records if r.code_version != current]
    if not earlier:
        made = "has results only of its current code" if records else "has no results at all"
        raise NotCachedError(
            f"nothing to accept for {what}: the store {made}, so there is no earlier code "
            "version whose results the current code could take over; run it once under "
            "the old code first, or just run it"
        )
    previous = max(earlier, key=lambda r: (r.created, r.key)).code_version
    report = AcceptReport(node, processor, previous, current, dry_run=dry_run)
    new: list[Record] = []
    now = time.time()
    for old in earlier:
        if old.code_version != previous:
            continue
        key = hashing.node_key(current, old.init_version, dict(old.inputs))
        if store.lookup_version(key) is not MISSING:
            report.already += 1
            continue
        report.accepted.append((old.key, key))
        new.append(
            Record(
                key,
                old.data_version,
                old.node,
                old.processor,
                current,
                old.init_version,
                dict(old.inputs),
                now,
                old.duration,
                old.size,
            )
        )
    if dry_run or not new:
        return report
    if store.read_only:
        raise ReadOnlyStoreError(
            f"cannot accept {what}: {store!r} was opened read-only; open it writable"
        )
    _write(store, new)
    log = store.run_log(ACCEPT_KIND, f"{node} ({processor}){_CODE}{previous}{_ARROW}{current}")
    log.hit_many(old_key for old_key, _ in report.accepted)
    log.wrote_many(new_key for _, new_key in report.accepted)
    log.close()
    return report


def _write(store: Store, records: list[Record]) -> None:
    """The new rows: bytes in a blob are shared; bytes held in an old row are copied."""
    in_blobs = [rec for rec in records if store.blobs.contains(rec.data_version)]
    held = [rec for rec in records if not store.blobs.contains(rec.data_version)]
    if in_blobs:
        store.index.put_many(in_blobs)
    if held:
        store.save_many([(rec, store.load(rec.data_version)) for rec in held])


def acceptances(store: Store) -> dict[str, Acceptance]:
    """New key -> the acceptance that made it, for every acceptance in the run log.

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> acceptances(memory_store())
    {}
    """
    rows = [run for run in store.runs() if run.kind == ACCEPT_KIND]
    if not rows:
        return {}
    keys = store.ledger.run_keys([run.id for run in rows])
    found = {}
    for run in rows:
        previous = run.label.rpartition(_CODE)[2].partition(_ARROW)[0]
        written = keys.get(run.id, ([], []))[1]
        for rec in store.lookup_many(written).values():
            old_key = hashing.node_key(previous, rec.init_version, dict(rec.inputs))
            found[rec.key] = Acceptance(run.id, run.started, previous, old_key)
    return found
