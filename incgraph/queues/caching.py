"""Per-item caching of task applications, keyed exactly as the engine keys a node.

Design note
-----------
Applying task ``t`` to ``item`` is, for the cache, a node of ``t``'s generated
processor with no init kwargs and one input ``item``; its key is::

    hashing.node_key(t.code_version, hashing.data_version({}), {"item": data_version(item)})

and its record carries the same lineage an engine node's does (node label,
function, code and init versions, input data versions, duration). Keys are looked
up and results saved a chunk at a time (``lookup_many`` / ``save_many``), so the
store costs one query per chunk, not per item. Saving goes through one
*recorder* thread per run that joins the chunks of every task into large
``save_many`` transactions: SQLite has one writer at a time, and stages that
each committed their own small transactions would mostly wait for each other.
A result reaches downstream stages before its record is committed; the run
ends only once the recorder has saved everything, and a run killed before that
simply recomputes what was not committed.

*Data versions travel with items.* A cached task knows the data version of each
result (hashed, or the recorded one on a hit) and passes it downstream with the
item, so the next cached task does not hash the value again -- the engine's rule
that a node's key is built from its inputs' *recorded* data versions.

*Hits load nothing they don't need.* A hit passes a `Stored` placeholder
instead of the value; the value is loaded only where it is needed (a task that
must compute, an op that looks at items, an output queue). A fully cached chain
of tasks loads only the last one's results. A placeholder whose blob is found
missing or corrupt at that point is computed again from its input.

*Keys are cheap.* A task's keys differ only in the item's data version, so
`item_key_function` uses `incgraph.hashing.node_key_function`: the
constant head of the key text is built once per task and ``head + item part``
hashed per item -- the same key `incgraph.hashing.node_key` gives, at
about a fifth of its cost, which matters on a rerun where a key is most of a
hit's work.

*One store reader at a time.* SQLite's Python binding releases the GIL at
every row it steps through. Stages that query the store at the same time hand
the GIL back and forth at each row -- a thread switch each, which costs more
than the row -- so a run's look-ups and loads take turns (``turn``, the run's
``Execution.store_reads`` lock), a chunk at a time: a stage resolves a whole
chunk (keys, look-up, placeholders) in one turn. The lock only orders the
reads; nothing depends on it for correctness, no task runs under it (a lost
blob is recomputed after the turn), and nothing under it waits on another
stage, so it cannot deadlock. The recorder's saves do not take it: they are
the run's long transactions, and the stages' reads go on beside them.

*Items that cannot be hashed.* Caching one needs its content hash; an item that
has none fails for that task with a `HashingError` that
names the task and the item (recorded in the report like any failure, the other
items go on). Register a hasher for the type or declare the task
``cache=False``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from incgraph import hashing
from incgraph.errors import HashingError, StoreCorruptError
from incgraph.hashing._packages import with_packages
from incgraph.run.jobs import result_data_version
from incgraph.sentinels import MISSING
from incgraph.store import Store
from incgraph.store.protocols import Record

__all__ = [
    "Stored",
    "TaskCache",
    "init_version",
    "item_key",
    "item_key_function",
    "materialize",
]


@functools.cache
def init_version() -> str:
    """The data version of no init kwargs, ``hashing.data_version({})``."""
    return hashing.data_version({})


def item_key(code_version: str, item_data_version: str) -> str:
    """The cache key of a task (by code version) applied to an item (by data version)."""
    return hashing.node_key(code_version, init_version(), {"item": item_data_version})


def item_key_function(code_version: str) -> Callable[[str], str]:
    """`item_key` with ``code_version`` fixed: the same keys, built faster.

    Examples
    --------
    >>> from incgraph import hashing
    >>> key = item_key_function(hashing.code_version(len))
    >>> key(hashing.data_version(3)) == item_key(hashing.code_version(len), hashing.data_version(3))
    True
    """
    return hashing.node_key_function(code_version, init_version(), "item")


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
    """The cache of one task stage: data versions, keys, look-ups and saves.

    Parameters
    ----------
    store : Store
    code_version : str
        The task's code version.
    node : str
        The node label recorded with each result.
    processor : str
        The function's qualified name, recorded with each result.
    """

    def __init__(self, store: Store, code_version: str, node: str, processor: str) -> None:
        self.store = store
        self.code_version = code_version
        self.node = node
        self.processor = processor
        self.init_version = with_packages(init_version(), store.packages, f"task {node}")
        self.key = hashing.node_key_function(code_version, self.init_version, "item")

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

    def lookup(self, keys: list[Any]) -> dict[str, str]:
        """The data versions stored for ``keys`` (the hits)."""
        wanted = [k for k in keys if k is not MISSING]
        if not wanted:
            return {}
        versions = getattr(self.store, "lookup_versions", None)
        if versions is not None:  # a store that can answer without building records
            found: dict[str, str] = versions(wanted)
            return found
        return {k: rec.data_version for k, rec in self.store.lookup_many(wanted).items()}

    def record(self, key: str, item_dv: str, value: Any, duration: float) -> tuple[Record, str]:
        """The record to save for a computed result, and the result's data version."""
        dv = result_data_version(value, key, True)
        rec = Record(
            key=key,
            data_version=dv,
            node=self.node,
            processor=self.processor,
            code_version=self.code_version,
            init_version=self.init_version,
            inputs={"item": item_dv},
            created=time.time(),
            duration=duration,
        )
        return rec, dv
