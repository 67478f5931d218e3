"""Per-item caching of task applications: the engine's keys, decide step and records.

Design note
-----------
Applying task ``t`` to ``item`` is, for the cache, the task's node in
``pipeline.graph`` with its one input ``item`` bound to the item: its key is
built by `incgraph.run.keys.item_key_maker` (the engine's key, with the
constant head of the key text built once per stage) and its record by
`incgraph.run.keys.make_record`, with the lineage an engine node's has.

A chunk of a stage is a *wave* of the engine's decide step
(`incgraph.run.decide.Decider`): one look-up for the chunk's keys, one claim
for the misses worth a lease. Each item is then a hit (a `Stored`
placeholder), ours to compute, or *theirs*: another process is computing it,
so the stage polls for it between chunks and serves it as a hit once it is
stored (or computes it, if that process died). Leases where they pay: a
stage's first computes are leased; once its computes are all known to cost
less than a lease, its misses are not claimed (two processes may then both
compute a trivial item, which is harmless: same key, same result).

*Data versions travel with items.* A cached task knows the data version of each
result (hashed, or the recorded one on a hit) and passes it downstream with the
item, so the next cached task does not hash the value again -- the engine's rule
that a node's key is built from its inputs' *recorded* data versions.

*Hits load nothing they don't need.* A hit passes a `Stored` placeholder
instead of the value; the value is loaded only where it is needed (a task that
must compute, an op that looks at items, an output queue). A fully cached chain
of tasks loads only the last one's results. A placeholder whose blob is found
missing or corrupt at that point is computed again from its input.

*One store reader at a time.* SQLite's Python binding releases the GIL at
every row it steps through. Stages that query the store at the same time hand
the GIL back and forth at each row -- a thread switch each, which costs more
than the row -- so a run's look-ups and loads take turns (``turn``, the run's
``Execution.store_reads`` lock), a chunk at a time: a stage resolves a whole
chunk (keys, decide, placeholders) in one turn. The lock only orders the
reads; nothing depends on it for correctness, no task runs under it (a lost
blob is recomputed after the turn), and nothing under it waits on another
stage, so it cannot deadlock.

*Items that cannot be hashed.* Caching one needs its content hash; an item that
has none fails for that task with a `HashingError` that names the task and the
item (recorded in the report like any failure, the other items go on). Register
a hasher for the type or declare the task ``cache=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.errors import HashingError, StoreCorruptError
from incgraph.run.decide import Decided, Decider, Work
from incgraph.run.jobs import result_data_version
from incgraph.run.keys import item_key_maker, make_record
from incgraph.sentinels import MISSING
from incgraph.store import Store
from incgraph.store.protocols import Record
from incgraph.store.session import StoreSession

__all__ = ["Stored", "TaskCache", "materialize"]


class Stored:
    """A cached result not loaded yet: loaded only where its value is needed.

    It also remembers how it was made (the task's function and its input, itself
    possibly a placeholder), so a result whose blob turns out to be missing or
    corrupt when it is finally loaded is computed again instead of failing the
    run. (The store drops the index rows of such a blob, so the next run
    recomputes and saves it.)
    """

    __slots__ = ("data_version", "fn", "source")

    def __init__(self, data_version: str, fn: Callable[[Any], Any], source: Any) -> None:
        self.data_version = data_version
        self.fn = fn
        self.source = source

    def load(self, store: Store) -> Any:
        """The value: from the store, or recomputed if its blob is gone."""
        try:
            return store.load(self.data_version)
        except (KeyError, StoreCorruptError):
            source = self.source
            return self.fn(source.load(store) if type(source) is Stored else source)


def materialize(
    items: list[Any], store: Store, turn: AbstractContextManager[Any] | None = None
) -> list[Any]:
    """``items`` with every `Stored` placeholder replaced by its value.

    The loads happen inside ``turn`` (the run's store-reads lock); a value whose
    blob is gone is computed again after it, so no task runs inside ``turn``.
    """
    if not any(type(x) is Stored for x in items):
        return items
    out = list(items)
    broken = []
    load = store.load
    with nullcontext() if turn is None else turn:
        for i, x in enumerate(out):
            if type(x) is Stored:
                try:
                    out[i] = load(x.data_version)
                except (KeyError, StoreCorruptError):
                    broken.append(i)
    for i in broken:
        out[i] = out[i].load(store)
    return out


class TaskCache:
    """The cache of one task stage: data versions, keys, the decide step and records.

    Parameters
    ----------
    store : Store
    session : StoreSession
        The run's session (its log and leases).
    node : Node
        The task's node in ``pipeline.graph``: its label, code and init versions.
    processor : str
        The function's qualified name, recorded with each result.
    lease_min_seconds : float
        Items of a task whose computes all took less than this are not leased.
    """

    def __init__(
        self,
        store: Store,
        session: StoreSession,
        node: Node,
        processor: str,
        lease_min_seconds: float,
    ) -> None:
        self.session = session
        self.node = node
        self.label = node.label
        self.lineage = (processor, node.code_version(), node.init_version())
        self.key = item_key_maker(node, "item")
        self.decider = Decider(store, session, lease_min_seconds=lease_min_seconds)

    def versions(
        self,
        items: list[Any],
        dvs: list[Any] | None,
        on_unhashable: Callable[[int, Exception], None],
    ) -> list[Any]:
        """Each item's data version (``MISSING`` for one that cannot be hashed, reported)."""
        if dvs is not None:
            return dvs
        out: list[Any] = []
        data_version = hashing.data_version
        for i, item in enumerate(items):
            try:
                out.append(data_version(item))
            except HashingError as exc:
                on_unhashable(i, exc)
                out.append(MISSING)
        return out

    def keys(self, dvs: list[Any]) -> list[Any]:
        """Each item's cache key (``MISSING`` where the data version is)."""
        key = self.key
        return [MISSING if dv is MISSING else key(dv) for dv in dvs]

    def decide(self, keys: list[Any]) -> Decided:
        """The chunk as a wave of the decide step: hits, ours to compute, theirs."""
        label = self.label
        wave = [Work(key, label) for key in keys if key is not MISSING]
        decided = self.decider.decide(wave) if wave else Decided()
        self.session.hits.extend(decided.hits)
        return decided

    def poll(self, keys: list[str]) -> Decided:
        """One look at keys another process was computing (stored ones logged as hits)."""
        decided = self.decider.poll(keys)
        self.session.hits.extend(decided.hits)
        return decided

    def computed(self, key: str, data_version: str, seconds: float) -> None:
        """A chunk's items were computed, in ``seconds`` each on average (do leases pay?)."""
        self.decider.computed(Work(key, self.label), data_version, seconds)

    def record(self, key: str, item_dv: str, value: Any, duration: float) -> tuple[Record, str]:
        """The record to save for a computed result, and the result's data version."""
        dv = result_data_version(value, key, True)
        rec = make_record(self.node, key, {"item": item_dv}, dv, duration, self.lineage)
        return rec, dv
