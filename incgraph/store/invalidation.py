"""Invalidation: take chosen results out of use, so the next run computes them again.

Design note
-----------
Invalidating a result deletes its index row and nothing else. The next look-up
of its key misses, so the node (or memoized call) computes again; the bytes it
pointed at stay where they are, because other kept results may share them (equal
results share one blob) or name them (a flow layer's manifest names the blobs
of its artifacts by data version). ``gc`` removes the blobs no remaining row
references, later, as it removes any other orphan.

What to invalidate is chosen by key, by node label and by processor
(`select`), and *downstream* adds every result computed, directly or
transitively, from a chosen result's data version (`downstream_of`).
Following data versions is all a store alone can do, and it over-reaches: a
result whose input merely *equals* a removed result (a constant ``2`` beside a
node that returned ``2``) is removed too. That costs recomputation, never a
wrong hit; ``incgraph invalidate --dry-run`` shows it beforehand.
`incgraph.ProcessGraph.invalidate` knows the graph's edges and follows
data versions only into the nodes that read the chosen ones.

A flow's ForEach memo row (``Flow/Layer[*]``, processor `FOREACH_MEMO`)
is a second key for a layer's join that lets a rerun skip its tasks: it goes
with any task or join of its layer that goes, or the next run would serve the
layer from it without recomputing what was invalidated. The tasks then compile
as nodes again, each a hit or not on its own key.

Invalidated pinned keys are unpinned (the row they pinned is gone). Nothing is
removed silently: `InvalidateReport` lists every result, and
``dry_run=True`` reports without deleting.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from incgraph.errors import ReadOnlyStoreError
from incgraph.store.protocols import Record

if TYPE_CHECKING:
    from incgraph.store.store import Store

__all__ = [
    "FOREACH_MEMO",
    "InvalidateReport",
    "downstream_of",
    "invalidate",
    "matches",
    "select",
]

FOREACH_MEMO = "incgraph.flow.ForEach"
"""The processor name of a flow's ForEach memo rows (labelled ``Flow/Layer[*]``)."""


@dataclass
class InvalidateReport:
    """What an invalidation removed from use (or, with ``dry_run``, would remove).

    Attributes
    ----------
    removed : every result taken out of use, oldest first.
    downstream : how many of them were added because they were computed from another.
    unpinned : pinned keys among them (unpinned).
    dry_run : nothing was deleted.
    """

    removed: list[Record] = field(default_factory=list)
    downstream: int = 0
    unpinned: list[str] = field(default_factory=list)
    dry_run: bool = False


def matches(text: str, pattern: str) -> bool:
    """Whether ``text`` is ``pattern`` or matches it as a glob (``"sum/*"``)."""
    return text == pattern or fnmatch.fnmatchcase(text, pattern)


def select(
    store: Store,
    *,
    keys: Iterable[str] = (),
    nodes: Iterable[str] = (),
    processors: Iterable[str] = (),
) -> list[Record]:
    """The stored results chosen by full ``keys``, or by node label and processor globs.

    A result is chosen when its key is one of ``keys``, or when node and
    processor patterns are given and it matches one node pattern (if any) and
    one processor pattern (if any).

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> _ = store.save(Record("a" * 32, "b" * 32, "sum/2", "m.Sum", "c", "i"), 3)
    >>> _ = store.save(Record("c" * 32, "d" * 32, "mul/1", "m.Mul", "c", "i"), 4)
    >>> [r.node for r in select(store, processors=["m.S*"])]
    ['sum/2']
    >>> [r.node for r in select(store, keys=["c" * 32])]
    ['mul/1']
    """
    wanted, node_globs, proc_globs = set(keys), list(nodes), list(processors)
    filtered = bool(node_globs or proc_globs)
    found = []
    for rec in store.index.records():
        if rec.key in wanted or (
            filtered
            and (not node_globs or any(matches(rec.node, p) for p in node_globs))
            and (not proc_globs or any(matches(rec.processor, p) for p in proc_globs))
        ):
            found.append(rec)
    return found


def downstream_of(
    store: Store, chosen: Iterable[Record], within: set[tuple[str, str]] | None = None
) -> list[Record]:
    """Every other result computed, directly or transitively, from a ``chosen`` result.

    A result is downstream when one of its inputs has the data version of a
    chosen (or downstream) result. ``within``, when given, keeps only results
    of those (node label, processor) pairs (the nodes a graph says read them):
    an input that merely equals a chosen result is then not followed.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> a = store.save(Record("a" * 32, "1" * 32, "1", "m.Inc", "c", "i", {"x": "0" * 32}), 1)
    >>> b = store.save(Record("b" * 32, "2" * 32, "2", "m.Dbl", "c", "i", {"y": "1" * 32}), 2)
    >>> [r.node for r in downstream_of(store, [a])]
    ['2']
    """
    chosen = list(chosen)
    done = {rec.key for rec in chosen}
    readers: dict[str, list[Record]] = {}
    for rec in store.index.records():
        if within is not None and (rec.node, rec.processor) not in within:
            continue
        for dv in set(rec.inputs.values()):
            readers.setdefault(dv, []).append(rec)
    frontier = {rec.data_version for rec in chosen}
    seen_dvs = set(frontier)
    found = []
    while frontier:
        next_dvs: set[str] = set()
        for dv in frontier:
            for rec in readers.get(dv, ()):
                if rec.key not in done:
                    done.add(rec.key)
                    found.append(rec)
                    if rec.data_version not in seen_dvs:
                        seen_dvs.add(rec.data_version)
                        next_dvs.add(rec.data_version)
        frontier = next_dvs
    return found


def memo_rows(store: Store, removed: Iterable[Record]) -> list[Record]:
    """The ForEach memo rows standing for a task or join among ``removed`` (see the module note).

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> task = store.save(Record("a" * 32, "1" * 32, "F/Fit[0]", "m.Fit", "c", "i"), 1)
    >>> memo = store.save(Record("b" * 32, "2" * 32, "F/Fit[*]", FOREACH_MEMO, "c", "i"), [1])
    >>> [r.node for r in memo_rows(store, [task])]
    ['F/Fit[*]']
    """
    layers = set()
    for rec in removed:
        if rec.processor == FOREACH_MEMO:
            continue
        base, bracket, index = rec.node.rpartition("[")
        layers.add(base if bracket and index[:-1].isdigit() and index.endswith("]") else rec.node)
    gone = {rec.key for rec in removed}
    return [
        rec
        for rec in store.index.records()
        if rec.processor == FOREACH_MEMO and rec.node[:-3] in layers and rec.key not in gone
    ]


def invalidate(
    store: Store, chosen: Iterable[Record], *, downstream: bool = False, dry_run: bool = False
) -> InvalidateReport:
    """Take ``chosen`` results (and, with ``downstream``, what was computed from them) out of use.

    Index rows are deleted; blobs are left for ``gc`` (see the module note).

    Raises
    ------
    ReadOnlyStoreError
        The store was opened read-only (and ``dry_run`` is false).

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> a = store.save(Record("a" * 32, "1" * 32, "1", "m.Inc", "c", "i", {"x": "0" * 32}), 1)
    >>> b = store.save(Record("b" * 32, "2" * 32, "2", "m.Dbl", "c", "i", {"y": "1" * 32}), 2)
    >>> report = invalidate(store, [a], downstream=True)
    >>> [r.node for r in report.removed], store.lookup("b" * 32), store.load("1" * 32)
    (['1', '2'], MISSING, 1)
    """
    chosen = list({rec.key: rec for rec in chosen}.values())
    if store.read_only and not dry_run:
        raise ReadOnlyStoreError(
            f"cannot invalidate results in {store!r}: it was opened read-only; "
            "open it writable, or pass dry_run=True to see what would go"
        )
    below = downstream_of(store, chosen) if downstream else []
    below += memo_rows(store, [*chosen, *below])
    removed = sorted([*chosen, *below], key=lambda rec: (rec.created, rec.key))
    keys = {rec.key for rec in removed}
    unpinned = sorted(key for key in store.ledger.pins() if key in keys)
    report = InvalidateReport(removed, len(below), unpinned, dry_run)
    if not dry_run and removed:
        store.index.delete(sorted(keys))
        if unpinned:
            store.ledger.unpin(unpinned)
    return report
