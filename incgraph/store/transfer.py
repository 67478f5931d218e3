"""Copy results between two stores, with their lineage: ``incgraph push`` and ``incgraph pull``.

Design note
-----------
`transfer` copies results from a source store to a target store (any two
stores: a local folder, a folder beside a bucket, a team's shared store).
`push` and `pull` are the same copy seen from the local store.

* **Lineage.** A result is copied with everything its record needs to be
  served and trusted on the other side: the results that produced its inputs
  (found through the data versions in ``Record.inputs``), upstream to the
  graph's constants, and the blobs its value references (a Flow execution's
  artifacts, a ForEach join: ``refs``), transitively.
* **Blobs first, index entry last.** Referenced blobs are written first, then
  each result through `Store.save_many`, which writes its blob before its
  index row; results go upstream first (oldest first). An interrupted copy
  leaves at worst blobs no row names (garbage collection takes them) and
  never a row whose bytes are missing.
* **Idempotent.** A key the target already holds is left as it is (never
  overwritten, even by another data version), and a stored blob is not
  written again, so running the same copy twice writes nothing the second
  time, and a copy interrupted half-way resumes where it stopped.
* **Kept by gc.** The copy is logged in the target's run log (kind ``push``
  or ``pull``), so ``gc --keep-runs N`` there keeps what it brought.

Values are loaded from the source (checked: checksum, and signature when it
signs) and saved into the target, which signs them with its own key: the two
stores may use different keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from incgraph.errors import NotCachedError
from incgraph.sentinels import MISSING
from incgraph.store.protocols import Record
from incgraph.store.store import Store, open_store

__all__ = ["TransferReport", "pull", "push", "transfer"]

_CHUNK = 32  # results loaded and saved together: bounds the memory a copy holds


@dataclass
class TransferReport:
    """What a copy did.

    Attributes
    ----------
    results : keys whose results were copied.
    present : keys the target held already (left as they were).
    blobs : referenced blobs copied besides the results' own.
    """

    results: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    blobs: int = 0

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{len(self.results)} results copied, {len(self.present)} already there, "
            f"{self.blobs} referenced blobs copied"
        )


def transfer(
    source: Store, target: Store, keys: Iterable[str] | None = None, *, kind: str = "push"
) -> TransferReport:
    """Copy the results under ``keys`` (default: every result) and their lineage.

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> here, there = memory_store(), memory_store()
    >>> up = here.save(Record("k1", "ab" * 8, "1", "p", "c", "i"), 1)
    >>> down = here.save(Record("k2", "cd" * 8, "2", "p", "c", "i", {"a": "ab" * 8}), 2)
    >>> transfer(here, there, ["k2"]).results
    ['k1', 'k2']
    >>> there.load(there.lookup("k1")), transfer(here, there, ["k2"]).present
    (1, ['k1', 'k2'])
    """
    records = _with_lineage(source, keys)
    report = TransferReport()
    found = target.lookup_versions(record.key for record in records)
    wanted = [record for record in records if record.key not in found]
    report.present = [record.key for record in records if record.key in found]
    report.blobs = _copy_refs(source, target, wanted)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        target.save_many([(record, source.load(record)) for record in chunk])
        report.results += [record.key for record in chunk]
    if report.results or report.present:
        with target.run_log(kind, f"{kind} from {_where(source)}") as log:
            log.wrote_many(report.results)
            log.hit_many(report.present)
    return report


def push(
    remote: Store | str | os.PathLike[str],
    keys: Iterable[str] | None = None,
    *,
    local: Store | str | os.PathLike[str] | None = None,
    **open_options: Any,
) -> TransferReport:
    """Copy results (default: all) and their lineage from the local store to ``remote``.

    ``remote`` and ``local`` are stores or what `open_store` accepts (``local``
    defaults to the default store folder); ``open_options`` are passed to
    `open_store` for ``remote`` (``blobs=``, ``hmac_key=``...).

    Examples
    --------
    >>> import tempfile
    >>> here = open_store(tempfile.mkdtemp())
    >>> _ = here.save(Record("k1", "ab" * 8, "1", "p", "c", "i"), [1, 2])
    >>> push(tempfile.mkdtemp(), local=here).summary()
    '1 results copied, 0 already there, 0 referenced blobs copied'
    """
    with _opened(local, {}) as source, _opened(remote, open_options) as target:
        return transfer(source, target, keys, kind="push")


def pull(
    remote: Store | str | os.PathLike[str],
    keys: Iterable[str] | None = None,
    *,
    local: Store | str | os.PathLike[str] | None = None,
    **open_options: Any,
) -> TransferReport:
    """Copy results (default: all) and their lineage from ``remote`` into the local store.

    The arguments are `push`'s.

    Examples
    --------
    >>> import tempfile
    >>> there = open_store(tempfile.mkdtemp())
    >>> _ = there.save(Record("k1", "ab" * 8, "1", "p", "c", "i"), [1, 2])
    >>> here = open_store(tempfile.mkdtemp())
    >>> pull(there, local=here).results, here.load(here.lookup("k1"))
    (['k1'], [1, 2])
    """
    with _opened(remote, open_options) as source, _opened(local, {}) as target:
        return transfer(source, target, keys, kind="pull")


class _opened:
    """A store given or opened here (and then closed here)."""

    def __init__(self, location: Store | str | os.PathLike[str] | None, options: Any) -> None:
        self.given = location if isinstance(location, Store) else None
        self.store = self.given or open_store(location, **options)

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc: object) -> None:
        if self.given is None:
            self.store.close()


def _with_lineage(source: Store, keys: Iterable[str] | None) -> list[Record]:
    """The records of ``keys`` and of every result upstream of them, oldest first."""
    if keys is None:
        return sorted(source.index.records(), key=lambda record: record.created)
    found: dict[str, Record] = {}
    todo = [_record(source, key) for key in dict.fromkeys(keys)]
    seen_versions: set[str] = set()
    while todo:
        record = todo.pop()
        if record.key in found:
            continue
        found[record.key] = record
        for data_version in record.inputs.values():
            if data_version in seen_versions:
                continue
            seen_versions.add(data_version)
            producers = source.index.keys_for_data_version(data_version)
            todo += source.index.get_many(producers).values()
    return sorted(found.values(), key=lambda record: record.created)


def _record(source: Store, key: str) -> Record:
    record = source.lookup(key)
    if record is MISSING:
        raise NotCachedError(
            f"no result is stored under key {key!r} in {_where(source)}; "
            "list the stored keys with `incgraph ls`"
        )
    assert isinstance(record, Record)
    return record


def _copy_refs(source: Store, target: Store, records: list[Record]) -> int:
    """Copy the blobs ``records`` reference (transitively) that the target lacks."""
    refs = source.index.refs()
    wanted: list[str] = []
    todo = [ref for record in records for ref in refs.get(record.data_version, ())]
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        wanted.append(ref)
        todo += refs.get(ref, ())
    copied = 0
    for ref in reversed(wanted):  # the deepest first: a blob before what references it
        if not target.blobs.contains(ref):
            target.blobs.put(ref, source.load(ref))
            copied += 1
    if wanted:
        target.index.put_refs(
            (record.data_version, ref)
            for record in records
            for ref in refs.get(record.data_version, ())
        )
    return copied


def _where(store: Store) -> str:
    return "memory" if store.path is None else str(store.path)
