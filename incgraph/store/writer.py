"""The one writer of a run: computed results queued, then written in batches.

Design note
-----------
Every front-end (a graph run, a batch, a flow, a queue pipeline) writes what
it computes through the `Writer` of its store session (``session.writer``).
Committed one by one, each result would be its own SQLite transaction
(~100 us); written together with `incgraph.store.Store.save_many`, each costs
a few microseconds. So the writer queues results and writes them in one go,
by its session's settings (`incgraph.settings`, ``session.settings``: the
store's, or those of the graph whose run it writes):

* when ``writer_pending_count`` results and blobs are waiting (4,096: a
  ForEach of 10,000 tasks wrote 26% fewer index pages than with 1,024, as
  cache keys land at random places in their indexes), or their encoded bytes
  reach ``writer_pending_bytes``,
* when the oldest has waited ``writer_max_delay_seconds``, or a result took
  ``prompt_write_seconds`` to compute, or is ``prompt_write_bytes`` large (a
  slow or large result is written at once: a crash loses little work), and
* whenever its owner calls `Writer.flush` (``session.commit()`` before
  waiting on another process, ``session.close()`` at the end of the run).

State. Values are queued as their captured bytes
(`incgraph.store.Store.capture`), never as objects: nothing a caller does
to a value afterwards changes what is written. Queued results and blobs are
readable (`Writer.pending_version`, `Writer.load`) until their flush has
committed them, so nothing is ever both saved and missing; small blobs stay
readable from memory afterwards too (up to ``writer_recent_bytes`` in all,
each at most ``writer_recent_item_bytes`` encoded): a flow layer reading the
shard element its upstream layer wrote a moment ago does not pay a store read
for it.

Invariants. A flush writes blobs (`Writer.put_blob`: artifacts a later
result names) first, then the results' blobs and index rows in one
transaction, and only then tells the session (``session.saved``): the run
log records the keys as written and their leases are released, so another
process waiting on a key never sees its lease go before its row is there. A
result that cannot be stored fails alone: `Writer.flush` returns it with the
error naming the part that cannot be pickled, and the rest is stored. Any
other store error (a full disk, a read-only store) is raised naming the node;
the queue is kept, so nothing is lost to a retry. A process killed before a
flush loses at most the queued results, which the next run recomputes.

The writer is thread-safe: queue stages and flow tasks add from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from incgraph.errors import StoreError, UnstorableResultError
from incgraph.sentinels import MISSING, Missing
from incgraph.store.codecs import Captured, unstorable
from incgraph.store.picklability import pickle_error, unpicklable_part
from incgraph.store.protocols import Record

if TYPE_CHECKING:
    from incgraph.settings import Settings
    from incgraph.store.session import StoreSession
    from incgraph.store.store import Store

__all__ = [
    "Unstorable",
    "Writer",
    "save_results",
]

Unstorable = tuple[Record, UnstorableResultError]
"""A queued result that could not be stored, and the error saying which part."""


class Writer:
    """The one writer of a store session: queues results, writes them in batches.

    Make none yourself: use ``session.writer`` (`incgraph.store.StoreSession`),
    which creates it on first use, flushes it in ``commit()`` and ``close()``.

    Parameters
    ----------
    session : StoreSession
        The session whose store is written, whose run log records the keys
        written and whose leases on them are released after each commit.

    Examples
    --------
    >>> from incgraph.store import Record, memory_store
    >>> store = memory_store()
    >>> with store.session("run", "demo") as session:
    ...     record = Record("a" * 32, "b" * 32, "n", "p", "c", "i")
    ...     session.writer.add(record, store.capture([1, 2]))
    ...     queued = session.writer.pending_version(record.key), store.lookup(record.key)
    ...     unstorable = session.writer.flush()
    >>> queued, unstorable, store.load("b" * 32), store.runs()[-1].computed
    (('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', MISSING), [], [1, 2], 1)
    """

    def __init__(self, session: StoreSession) -> None:
        self.session = session
        self.store: Store = session.store
        self.settings: Settings = session.settings
        self._lock = threading.RLock()
        self._records: dict[str, Record] = {}  # key -> queued result
        self._rows: dict[str, Record] = {}  # key -> queued row naming a stored/queued blob
        self._blobs: dict[str, Captured] = {}  # data version -> bytes (results and artifacts)
        self._pending_bytes = 0
        self._oldest = 0.0
        self._unstorable: list[Unstorable] = []
        self._recent: OrderedDict[str, Captured] = OrderedDict()
        self._recent_bytes = 0

    def __repr__(self) -> str:
        return f"<Writer {len(self._records)} results, {len(self._blobs)} blobs queued>"

    # -- queueing --------------------------------------------------------------------

    def add(self, record: Record, captured: Captured, *, duration: float = 0.0) -> None:
        """Queue a computed result (its bytes from `incgraph.store.Store.capture`).

        It is written by the next flush: at once when ``duration`` (seconds
        computing it) or its size says so, else when the queue's count, bytes
        or age does (module note). Results an automatic flush could not store
        are returned by the next `flush` call.
        """
        captured = self._captured(captured)
        size = captured.size
        with self._lock:
            self._queued()
            self._records[record.key] = record
            self._blobs[record.data_version] = captured
            self._pending_bytes += size
            settings = self.settings
            if duration >= settings.prompt_write_seconds or size >= settings.prompt_write_bytes:
                self._write(everything=False)
            else:
                self._maybe_write()

    def add_row(self, record: Record) -> None:
        """Queue an index row naming a result stored already (or queued here): a second key.

        Writing the row alone spares encoding the value again (a flow's ForEach
        memo row names the join's result). ``record`` carries its ``size`` and
        ``created``. A small result kept in its index row is copied into the new
        row, so the new row stays loadable when the first one is dropped.
        """
        with self._lock:
            self._queued()
            self._rows[record.key] = record
            self._maybe_write()

    def put_blob(self, data_version: str, captured: Captured | Any) -> None:
        """Queue a blob (no index row) that a result queued later names (a flow artifact).

        It is written before the rows of the flush that writes its result; a
        value that is not captured yet is captured now.
        """
        captured = self._captured(captured)
        with self._lock:
            self._queued()
            self._blobs[data_version] = captured
            self._pending_bytes += captured.size
            self._maybe_write()

    def _captured(self, value: Any) -> Captured:
        return value if type(value) is Captured else self.store.capture(value)

    def _queued(self) -> None:
        if not self._blobs and not self._rows:
            self._oldest = time.monotonic()

    def _maybe_write(self) -> None:
        settings = self.settings
        full = self._pending_bytes >= settings.writer_pending_bytes
        if (
            full
            or len(self._blobs) + len(self._rows) >= settings.writer_pending_count
            or time.monotonic() - self._oldest >= settings.writer_max_delay_seconds
        ):
            self._write(everything=full)

    # -- reading what is queued ------------------------------------------------------

    def pending_version(self, key: str) -> str | None:
        """The data version of ``key``'s result if it is queued here, else None."""
        record = self._records.get(key) or self._rows.get(key)
        return None if record is None else record.data_version

    def load(self, data_version: str) -> Any:
        """A private copy of a queued or recently written blob, else ``MISSING``.

        Examples
        --------
        >>> from incgraph.store import memory_store
        >>> writer = memory_store().session().writer
        >>> writer.put_blob("ab" * 16, {"a": 1})
        >>> writer.load("ab" * 16), writer.load("cd" * 16)
        ({'a': 1}, MISSING)
        """
        captured = self._blobs.get(data_version) or self._recent.get(data_version)
        return MISSING if captured is None else captured.value()

    # -- writing ---------------------------------------------------------------------

    def flush(self) -> list[Unstorable]:
        """Write everything queued; return the results that could not be stored.

        Blobs first, then the results' blobs and index rows in one transaction,
        then the session logs their keys as written and releases their leases.
        Each returned result failed alone (its lease is released; the caller
        fails its node); so did those of an automatic flush since the last call.

        Raises
        ------
        StoreError
            A result could not be written (a full disk, a read-only store); the
            message names its node. Nothing queued is dropped.
        """
        with self._lock:
            self._write(everything=True)
            failed, self._unstorable = self._unstorable, []
        return failed

    def commit(self) -> None:
        """Write everything queued; results that cannot be stored wait for the next `flush`."""
        with self._lock:
            self._write(everything=True)

    def _write(self, *, everything: bool) -> None:
        """Commit the queued results with the blobs they name (``everything``: all blobs).

        A flush by count or age leaves the blobs no queued result names yet in
        the queue: they go with their own result, so a garbage collection
        meanwhile cannot find them unreferenced.
        """
        self._oldest = time.monotonic()
        if not self._records and not self._rows and not (everything and self._blobs):
            return
        records = list(self._records.values())
        items = [(r, self._blobs[r.data_version]) for r in records]
        wanted = None if everything else {ref for _, value in items for ref in value.refs}
        result_dvs = {r.data_version for r in records}
        blobs = [
            (dv, v)
            for dv, v in self._blobs.items()
            if dv not in result_dvs and (wanted is None or dv in wanted)
        ]
        sizes = _put_blobs(self.store, blobs)
        self._remember([(dv, v, size) for (dv, v), size in zip(blobs, sizes, strict=True)])
        results = save_results(self.store, items, self._queued_blob) if items else []
        saved = [r for r in results if isinstance(r, Record)]
        rows = list(self._rows.values())
        if rows:
            self._put_rows(rows)
        self._remember([(r.data_version, self._blobs[r.data_version], r.size) for r in saved])
        failed = [
            (record, error)
            for record, error in zip(records, results, strict=True)
            if isinstance(error, UnstorableResultError)
        ]
        # Dropped only now: until committed, readers find them here.
        written = {dv for dv, _ in blobs} | result_dvs
        self._records, self._rows = {}, {}
        self._blobs = {dv: v for dv, v in self._blobs.items() if dv not in written}
        self._pending_bytes = sum(v.size for v in self._blobs.values())
        self.session.saved([r.key for r in saved] + [r.key for r in rows])
        if failed:
            self.session.release([record.key for record, _ in failed])
            self._unstorable += failed

    def _put_rows(self, rows: list[Record]) -> None:
        self.store.index.put_sharing_data(rows)

    def _queued_blob(self, data_version: str) -> Captured | Missing:
        """A queued or recently written blob's bytes (to write again), or ``MISSING``."""
        found = self._blobs.get(data_version) or self._recent.get(data_version)
        return MISSING if found is None else found

    def _remember(self, written: list[tuple[str, Captured, int]]) -> None:
        recent, item_bytes = self._recent, self.settings.writer_recent_item_bytes
        for dv, value, size in written:
            if 0 < size <= item_bytes and dv not in recent:
                recent[dv] = value
                self._recent_bytes += size
        while self._recent_bytes > self.settings.writer_recent_bytes:
            _, dropped = recent.popitem(last=False)
            self._recent_bytes -= dropped.size


def save_results(
    store: Store,
    items: list[tuple[Record, Any]],
    blob: Any = None,
) -> list[Record | UnstorableResultError]:
    """Save ``items`` in one go; one saved record per item, or the error saying why not.

    A value that cannot be pickled fails alone: the others are stored and the
    error names the part that cannot be pickled. A result naming a blob that
    vanished before it was committed (a garbage collection beside the run)
    has the blob written again from ``blob(data_version)`` (twice at most).
    Any other store error is raised naming the node.

    Examples
    --------
    >>> import threading
    >>> from incgraph.store import memory_store
    >>> store = memory_store()
    >>> record = Record("a" * 32, "b" * 32, "n1", "Proc", "c", "i")
    >>> other = Record("c" * 32, "d" * 32, "n2", "Proc", "c", "i")
    >>> saved, failed = save_results(store, [(record, 1), (other, threading.Lock())])
    >>> saved.key == record.key, failed.part
    (True, 'result: _thread.lock')
    """
    try:
        return list(_save(store, items, blob))
    except UnstorableResultError:
        pass
    results: list[Record | UnstorableResultError] = []
    storable = []
    for record, value in items:
        error = pickle_error(value)
        if error is None:
            storable.append((record, value))
            results.append(record)
        else:
            results.append(unstorable(unpicklable_part(value), error))
    saved = iter(_save(store, storable, blob) if storable else [])
    return [next(saved) if isinstance(r, Record) else r for r in results]


def _save(store: Store, items: list[tuple[Record, Any]], blob: Any) -> list[Record]:
    for attempt in range(3):
        try:
            return store.save_many(items)
        except UnstorableResultError:
            raise
        except StoreError as exc:
            missing = getattr(exc, "missing_refs", None) or ()
            values = [MISSING if blob is None else blob(dv) for dv in missing]
            if not missing or attempt == 2 or any(v is MISSING for v in values):
                _raise_naming_the_node(store, items, exc)
                raise
            _put_blobs(store, list(zip(missing, values, strict=True)))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _put_blobs(store: Store, blobs: list[tuple[str, Any]]) -> list[int]:
    """Write ``blobs`` (data version, value or captured bytes) to ``store``; their sizes."""
    return store.blobs.put_many(blobs) if blobs else []


def _raise_naming_the_node(store: Store, items: list[tuple[Record, Any]], exc: StoreError) -> None:
    """Retry a failed batch write one result at a time, to say which node could not be stored."""
    if getattr(exc, "missing_refs", None):
        return  # it names the node already
    for record, value in items:
        try:
            store.save(record, value)
        except StoreError as one:
            raise type(one)(f"node {record.node} ({record.processor}): {one}") from one
    raise exc
