"""A write-behind buffer in front of a store, so a flow commits results in batches.

Design note
-----------
A ForEach over a thousand small tasks records a thousand results. Committed
one by one, each is its own SQLite transaction (~100 us); committed together
with `save_many`, each costs a few microseconds.
`WriteBackStore` is the store a flow run hands the engine: it holds
saved results and artifact blobs in memory and commits them in one batch

* when `MAX_PENDING` items are waiting, or values of more than
  `MAX_PENDING_BYTES` (arrays and bytes, by their size in memory),
* when `MAX_DELAY` seconds have passed since the last commit (so a flow
  of slow tasks commits each result as soon as it is made), and
* at the end of every engine run, successful or not.

The write order the store promises is kept: artifact blobs first, then the
results' blobs, then their index rows, all from one flush. Reads see pending
items (a lookup finds a pending record, a load finds a pending blob), so
nothing is ever both saved and missing.

Small blobs written by the run stay readable from memory after their flush
(up to `RECENT_BYTES` in all, each at most `RECENT_ITEM_BYTES`
encoded): a ForEach task reading the shard element its upstream layer wrote
a moment ago does not pay an SQLite read for it.

Values are captured (`incgraph.store.Store.capture`) when they are
queued: the buffer holds their bytes, never the objects, and every load of a
pending or recent blob decodes a private copy. So a layer that changes what it
read in place (``a.rows.append(...)``) changes neither what is committed nor
what any other reader gets. A process killed before a flush
loses at most the pending results, which the next run recomputes; a
half-written result is never served.

Leases. The engine releases a lease as soon as it has saved the key's result,
which here only queues it. A session of this store
(`WriteBackStore.session`) therefore keeps the leases of saved keys
until it closes, after a flush: another process waiting on such a key polls
the index and sees the result once the flush commits it (at most
`MAX_DELAY` later), never a released lease before the result is
there. ``session.commit()``, which the engine calls before it waits for
another process, flushes, so two runs never wait for each other.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final

from incgraph.errors import StoreError
from incgraph.sentinels import MISSING, Missing
from incgraph.store import Store
from incgraph.store.codecs import Captured
from incgraph.store.protocols import Record
from incgraph.store.runlog import RunLog
from incgraph.store.session import StoreSession
from incgraph.store.store import refs_of

__all__ = [
    "MAX_DELAY",
    "MAX_PENDING",
    "MAX_PENDING_BYTES",
    "RECENT_BYTES",
    "RECENT_ITEM_BYTES",
    "WriteBackStore",
]

MAX_PENDING: Final = 4096
"""Flush once this many results and blobs are waiting.

Each commit rewrites every index page its rows touch, and cache keys land at random
places in their indexes: a ForEach of 10,000 tasks wrote 26% fewer pages with 4,096
results a commit than with 1,024 (``strace -c``). The time flush (`MAX_DELAY`)
still commits a slow flow's results promptly.
"""

MAX_PENDING_BYTES: Final = 256 << 20
"""Flush once the waiting values' encoded bytes reach this many."""

MAX_DELAY: Final = 0.2
"""Flush when this many seconds have passed since the last flush."""

RECENT_BYTES: Final = 64 << 20
"""Encoded bytes of recently written blobs kept readable from memory."""

RECENT_ITEM_BYTES: Final = 64 << 10
"""Larger blobs are not kept in memory after they are written."""


class WriteBackStore(Store):
    """A `Store` whose writes are buffered and committed in batches.

    Parameters
    ----------
    inner : Store
        The store written to. It stays open when this buffer is closed.

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> inner = memory_store()
    >>> buffer = WriteBackStore(inner)
    >>> _ = buffer.save(Record("k", "ab" * 16, "n", "p", "c", "i"), [1, 2])
    >>> buffer.lookup("k").data_version == "ab" * 16, inner.lookup("k")
    (True, MISSING)
    >>> buffer.flush()
    >>> inner.load("ab" * 16)
    [1, 2]
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(
            inner.index,
            inner.blobs,
            path=inner.path,
            read_only=inner.read_only,
            ledger=inner.ledger,
            packages=inner.packages,
            max_bytes=inner.max_bytes,
        )
        self.location = inner.location
        self.inner = inner
        self._lock = threading.Lock()
        self._blobs: dict[str, Captured] = {}
        self._records: dict[str, Record] = {}
        self._recent: OrderedDict[str, tuple[Captured, int]] = OrderedDict()
        self._recent_bytes = 0
        self._pending_bytes = 0
        self._last_flush = time.monotonic()
        self.run_log_of_flow: RunLog | None = None  # set by the flow: its waves' one log

    def lookup(self, key: str) -> Record | Missing:
        """A pending record, else the inner store's."""
        record = self._records.get(key)
        return record if record is not None else self.inner.lookup(key)

    def lookup_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """Pending records and the inner store's, for ``keys``."""
        keys = list(keys)
        found = self.inner.lookup_many(k for k in keys if k not in self._records)
        found.update({k: self._records[k] for k in keys if k in self._records})
        return found

    def lookup_version(self, key: str) -> str | Missing:
        """A pending record's data version, else the inner store's."""
        record = self._records.get(key)
        return record.data_version if record is not None else self.inner.lookup_version(key)

    def lookup_versions(self, keys: Iterable[str]) -> dict[str, str]:
        """Pending records' data versions and the inner store's, for ``keys``."""
        keys = list(keys)
        found = self.inner.lookup_versions(k for k in keys if k not in self._records)
        found.update({k: self._records[k].data_version for k in keys if k in self._records})
        return found

    def load(self, record_or_data_version: Record | str) -> Any:
        """A pending blob, else the inner store's."""
        dv = (
            record_or_data_version.data_version
            if isinstance(record_or_data_version, Record)
            else record_or_data_version
        )
        captured = self._blobs.get(dv)
        if captured is None:
            recent = self._recent.get(dv)
            if recent is None:
                return self.inner.load(dv)
            captured = recent[0]
        return captured.value()  # a private copy

    def session(
        self, kind: str = "run", label: str = "", *, announce: bool = False
    ) -> StoreSession:
        """A run's session whose leases are released only after their results are committed."""
        return _BufferedSession(self, kind, label, announce=announce, log=self.run_log_of_flow)

    def save_many(self, items: Iterable[tuple[Record, Any]]) -> list[Record]:
        """Queue results; they are committed at the next flush."""
        items = list(items)
        if self.read_only:
            return self.inner.save_many(items)
        captured = [(record, self._captured(value)) for record, value in items]
        with self._lock:
            for record, value in captured:
                self._blobs[record.data_version] = value
                self._records[record.key] = record
                self._pending_bytes += value.size
            self._maybe_flush()
        return [record for record, _ in items]

    def save_row(self, record: Record) -> None:
        """Commit an index row naming a result that is stored already; nothing is queued.

        For a second key of a committed result (the flow's ForEach memo): writing
        the row alone spares encoding the value again. A small result kept in
        its index row (schema version 3) is copied into the new row by the same
        statement (``put_sharing_data``), so the new row stays loadable when the
        first one is dropped. ``record`` should carry its ``size`` and
        ``created``, as the store does not fill them in here.
        """
        if record.data_version in self._blobs:  # still queued: commit it with its blob
            self.save(record, self._blobs[record.data_version])
            return
        index = self.inner.index
        put = getattr(index, "put_sharing_data", None)
        (index.put_many if put is None else put)([record])

    def put_blob(self, data_version: str, value: Any) -> None:
        """Queue an artifact blob (no index row); committed before any queued record."""
        captured = self._captured(value)
        with self._lock:
            self._blobs[data_version] = captured
            self._pending_bytes += captured.size
            self._maybe_flush()

    def _captured(self, value: Any) -> Captured:
        """``value``'s bytes, taken now (a value captured already is kept as is)."""
        return value if type(value) is Captured else self.inner.capture(value)

    def _maybe_flush(self) -> None:
        waiting = len(self._blobs)  # every pending record has its blob here too
        full = self._pending_bytes >= MAX_PENDING_BYTES
        if full or waiting >= MAX_PENDING or time.monotonic() - self._last_flush >= MAX_DELAY:
            self._flush_locked(everything=full)

    def flush(self) -> None:
        """Commit everything pending: blobs first, then results (blob, then index row)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self, *, everything: bool = True) -> None:
        """Commit the queued results with the artifacts they reference (``everything``: all).

        A flush between two layers' writes (by count or time) leaves the artifacts
        no queued result references yet in the queue: they go with their layer's
        result, so a collection meanwhile cannot find them unreferenced. Should
        one still vanish before its result commits (``gc --grace 0``), the save
        refuses (``missing_refs``) and the artifacts are written again.
        """
        self._last_flush = time.monotonic()
        if not self._blobs and not self._records:
            return
        records = list(self._records.values())
        items = [(r, self._blobs[r.data_version]) for r in records]
        result_dvs = {r.data_version for r in records}
        wanted = None if everything else {ref for _, ref in refs_of(items)}
        artifacts = [
            (dv, v)
            for dv, v in self._blobs.items()
            if dv not in result_dvs and (wanted is None or dv in wanted)
        ]
        self._put_artifacts(artifacts)
        if records:
            saved = self._save_with_refs(items)
            self._remember([(r.data_version, self._blobs[r.data_version]) for r in saved],
                           [r.size for r in saved])  # fmt: skip
        # Dropped only now: until committed, readers find them here.
        flushed = {dv for dv, _ in artifacts} | result_dvs
        self._records = {}
        self._blobs = {dv: v for dv, v in self._blobs.items() if dv not in flushed}
        self._pending_bytes = sum(v.size for v in self._blobs.values())

    def _put_artifacts(self, artifacts: list[tuple[str, Captured]]) -> None:
        if not artifacts:
            return
        put_many = getattr(self.inner.blobs, "put_many", None)
        if put_many is not None:
            sizes = list(put_many(artifacts))
        else:
            sizes = [self.inner.blobs.put(dv, v) for dv, v in artifacts]
        self._remember(artifacts, sizes)

    def _save_with_refs(self, items: list[tuple[Record, Any]]) -> list[Record]:
        """``save_many``, writing again (twice at most) artifacts that vanished before it."""
        for attempt in range(3):
            try:
                return self.inner.save_many(items)
            except StoreError as exc:
                missing = getattr(exc, "missing_refs", None)
                values = [self._artifact(dv) for dv in missing or ()]
                if not missing or attempt == 2 or any(v is MISSING for v in values):
                    raise
                self._put_artifacts(list(zip(missing, values, strict=True)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _artifact(self, data_version: str) -> Any:
        """A queued or recently written artifact's value, or ``MISSING``."""
        value = self._blobs.get(data_version, MISSING)
        if value is MISSING and data_version in self._recent:
            value = self._recent[data_version][0]
        return value

    def _remember(self, items: list[tuple[str, Captured]], sizes: list[int]) -> None:
        recent = self._recent
        for (dv, value), size in zip(items, sizes, strict=True):
            if 0 < size <= RECENT_ITEM_BYTES and dv not in recent:
                recent[dv] = (value, size)
                self._recent_bytes += size
        while self._recent_bytes > RECENT_BYTES:
            _, (_, size) = recent.popitem(last=False)
            self._recent_bytes -= size

    def close(self) -> None:
        """Flush; the inner store stays open (it belongs to the caller)."""
        self.flush()


class _BufferedSession(StoreSession):
    """A session of a `WriteBackStore`: saved keys keep their leases until a flush.

    ``saved`` only logs the keys (their rows are still queued); ``commit`` and
    ``close`` flush the buffer first, and ``close`` then releases every lease.
    """

    store: WriteBackStore

    def saved(self, keys: Iterable[str]) -> None:
        """Log ``keys`` as written; their leases are released when the session closes."""
        self.log.written.extend(keys)

    def commit(self) -> None:
        """Flush the buffer: every result saved so far is committed."""
        self.store.flush()

    def close(self, ok: bool = True) -> None:
        """Flush, then release every lease and write the run log.

        If the flush fails, the leases are still released and the run log still
        written; the flush's error is raised unless the run failed already.
        """
        try:
            self.store.flush()
        except StoreError:
            super().close(ok=False)
            if ok:
                raise
            return
        super().close(ok)
