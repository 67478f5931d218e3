"""The in-memory store: the reference implementation of the protocols.

Design note
-----------
Dicts behind one lock each (index, blobs, and the ledger of runs, pins and
leases, which decides claims against the memory index). It has the SQLite
store's semantics, so the same contract suite runs against both, with two
differences that follow from living in one process: no checksums (bytes
cannot tear in memory) and no durability.

Values are kept as their pickled bytes, not as objects: saving copies the value
and every load unpickles a fresh copy, so neither the caller who saved a value
nor one who loaded it can change the cache by mutating their object. Records
are copied on the way in and out for the same reason (``inputs`` is a dict).
"""

from __future__ import annotations

import itertools
import json
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from incgraph.sentinels import MISSING, Missing
from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.codecs import Captured, dumps
from incgraph.store.ledger import ClaimResult, LeaseState
from incgraph.store.protocols import BlobEntry, BlobStore, Record, RowsWithoutData, save_apart
from incgraph.store.runlog import RunEntry, RunInfo, unpack_keys

__all__ = ["MemoryBlobStore", "MemoryIndex", "MemoryLedger"]

T = TypeVar("T")


def _copy(record: Record) -> Record:
    return replace(record, inputs=dict(record.inputs))


class MemoryIndex(RowsWithoutData):
    """An `Index` in a dict. Thread-safe.

    Examples
    --------
    >>> index = MemoryIndex()
    >>> index.put(Record("k", "dv", node="1", processor="p", code_version="c", init_version="i"))
    >>> index.get("k").data_version, index.get("other")
    ('dv', MISSING)
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, Record]] = {}
        self._by_node: dict[str, dict[str, None]] = {}  # node label -> its keys, in insertion order
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._refs: dict[str, set[str]] = {}  # result data version -> blobs it references

    def __repr__(self) -> str:
        return f"MemoryIndex({len(self._records)} records)"

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Record | Missing:
        """The record stored under ``key``, or ``MISSING``."""
        with self._lock:
            found = self._records.get(key)
        return MISSING if found is None else _copy(found[1])

    def data_version_of(self, key: str) -> str | Missing:
        """Just the data version under ``key``, or ``MISSING``."""
        found = self._records.get(key)  # a dict read is atomic under the GIL
        return MISSING if found is None else found[1].data_version

    def latest_versions(self, nodes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Node label -> (key, data version) of its latest record."""
        return {node: (key, dv) for node, (key, dv, _) in self.latest_entries(nodes).items()}

    def latest_entries(self, nodes: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Node label -> (key, data version, duration) of its latest record."""
        found: dict[str, tuple[str, str, float]] = {}
        for node in nodes:
            latest = self.latest_for_node(node)
            if latest is not MISSING:
                found[node] = (latest.key, latest.data_version, latest.duration)
        return found

    def data_versions_of(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> data version of the stored ``keys``."""
        with self._lock:
            found = {key: self._records.get(key) for key in keys}
        return {key: entry[1].data_version for key, entry in found.items() if entry is not None}

    def keys_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` stored keys that start with ``prefix``, in key order."""
        with self._lock:
            keys = [key for key in self._records if key.startswith(prefix)]
        return sorted(keys)[:limit]

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys``; absent keys are left out."""
        with self._lock:
            found = {key: self._records[key][1] for key in keys if key in self._records}
        return {key: _copy(record) for key, record in found.items()}

    def put(self, record: Record) -> None:
        """Insert or replace the record under ``record.key``."""
        self.put_many([record])

    def put_sharing_data(self, records: Iterable[Record]) -> None:
        """Insert records naming stored results: `put_many` (rows hold no bytes here)."""
        self.put_many(records)

    def save_with(
        self, blobs: BlobStore, items: list[tuple[Record, Any]], now: float
    ) -> list[Record]:
        """Blobs first, then the rows (`save_apart`): nothing shares a transaction here."""
        return save_apart(self, blobs, items, now)

    def put_many(self, records: Iterable[Record]) -> None:
        """Insert or replace many records at once."""
        copies = [_copy(record) for record in records]
        with self._lock:
            for record in copies:
                old = self._records.pop(record.key, None)  # a replaced record counts as new
                if old is not None:
                    self._by_node.get(old[1].node, {}).pop(record.key, None)
                self._records[record.key] = (next(self._order), record)
                self._by_node.setdefault(record.node, {})[record.key] = None

    def latest_for_node(self, node: str) -> Record | Missing:
        """The most recently created record of ``node`` (the later insert wins a tie)."""
        with self._lock:
            keys = list(self._by_node.get(node, ()))
            mine = [(self._records[k][1].created, *self._records[k]) for k in keys]
        if not mine:
            return MISSING
        return _copy(max(mine, key=lambda entry: entry[:2])[2])

    def records(self) -> Iterator[Record]:
        """Every record in creation order (a snapshot taken when iteration starts)."""
        with self._lock:
            entries = sorted(self._records.values(), key=lambda entry: (entry[1].created, entry[0]))
        for _, record in entries:
            yield _copy(record)

    def keys_for_data_version(self, data_version: str) -> list[str]:
        """The keys whose result is ``data_version``."""
        with self._lock:
            entries = list(self._records.items())
        return [key for key, (_, rec) in entries if rec.data_version == data_version]

    def raw_rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(key, row) of every record in the column order of the SQLite index's raw rows."""
        for rec in self.records():
            row = (
                rec.key,
                rec.data_version,
                rec.node,
                rec.processor,
                rec.code_version,
                rec.init_version,
                json.dumps(dict(rec.inputs)),
                rec.created,
                rec.duration,
                rec.size,
            )
            yield rec.key, row

    def delete_raw(self, refs: Iterable[str]) -> None:
        """Delete rows by the references `raw_rows` gave (their keys)."""
        self.delete(refs)

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under ``keys``; absent keys are ignored."""
        with self._lock:
            for key in keys:
                old = self._records.pop(key, None)
                if old is not None:
                    self._by_node.get(old[1].node, {}).pop(key, None)

    def delete_unchanged(self, records: Iterable[Record]) -> None:
        """Remove these records, each only if it is still the one stored (same creation time)."""
        with self._lock:
            for rec in records:
                found = self._records.get(rec.key)
                if found is not None and found[1].created == rec.created:
                    del self._records[rec.key]
                    self._by_node.get(rec.node, {}).pop(rec.key, None)

    def put_refs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (result data version, referenced blob) pairs."""
        with self._lock:
            for dv, ref in pairs:
                self._refs.setdefault(dv, set()).add(ref)

    def refs(self) -> dict[str, set[str]]:
        """Result data version -> the blobs it references."""
        with self._lock:
            return {dv: set(refs) for dv, refs in self._refs.items()}

    def referencing(self, ref: str) -> list[str]:
        """The keys of the results that reference the blob ``ref``."""
        with self._lock:
            dvs = {dv for dv, refs in self._refs.items() if ref in refs}
            return [key for key, (_, rec) in self._records.items() if rec.data_version in dvs]

    def drop_unused_refs(self) -> None:
        """Forget the references of data versions no result has any more."""
        with self._lock:
            used = {rec.data_version for _, rec in self._records.values()}
            for dv in [dv for dv in self._refs if dv not in used]:
                del self._refs[dv]

    def snapshot(self) -> AbstractContextManager[None]:
        """A block with nothing to hold: each read of a memory index is atomic already."""
        return nullcontext()

    def locked(self, operation: Callable[[], T]) -> T:
        """``operation()``: each change of a memory index takes its lock by itself."""
        return operation()

    def integrity_problem(self) -> tuple[str, str] | None:
        """None: a memory index has no file to check."""
        return None

    def disk_bytes(self) -> int:
        """0: a memory index has no files."""
        return 0

    def make_ledger(self) -> MemoryLedger:
        """A `MemoryLedger` deciding claims against this index."""
        return MemoryLedger(self)

    def close(self) -> None:
        """Nothing to release; the records stay."""


class MemoryBlobStore:
    """A `BlobStore` of pickled bytes in a dict. Thread-safe.

    Examples
    --------
    >>> blobs = MemoryBlobStore()
    >>> value = [1, 2]
    >>> size = blobs.put("dv", value)
    >>> value.append(3)  # the stored copy does not change
    >>> blobs.get("dv")
    [1, 2]
    """

    signed = False
    """Memory blobs carry no signature (their bytes never leave the process)."""

    def __init__(self, *, settings: Settings = DEFAULT_SETTINGS) -> None:
        self.inline_limit = settings.blob_inline_limit_bytes
        """What `Store.capture` pickles whole (``blob_inline_limit_bytes``), as on disk."""
        self._blobs: dict[str, bytes] = {}
        self._created: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._blobs)} blobs)"

    def contains(self, data_version: str) -> bool:
        """Whether ``data_version`` is stored."""
        return data_version in self._blobs

    def put(self, data_version: str, value: Any) -> int:
        """Store a pickled copy of ``value`` (a no-op if present); return its size in bytes."""
        with self._lock:
            stored = self._blobs.get(data_version)
        if stored is None:
            data = _pickled(value)
            with self._lock:
                stored = self._blobs.setdefault(data_version, data)
                self._created.setdefault(data_version, time.time())
        return len(stored)

    def put_many(self, items: Iterable[tuple[str, Any]]) -> list[int]:
        """Store many values; return each one's stored size, in order."""
        return [self.put(data_version, value) for data_version, value in items]

    def get(self, data_version: str) -> Any:
        """A fresh copy of the stored value; ``KeyError`` if absent."""
        with self._lock:
            data = self._blobs[data_version]
        return pickle.loads(data)

    def delete(self, data_version: str) -> None:
        """Remove the blob; absent blobs are ignored."""
        self.delete_many([data_version])

    def delete_many(self, data_versions: Iterable[str], *, unreferenced: bool = False) -> int:
        """Remove blobs; return how many were stored (``unreferenced``: the caller checked)."""
        with self._lock:
            gone = [self._blobs.pop(dv, None) for dv in data_versions]
            for dv in list(self._created):
                if dv not in self._blobs:
                    del self._created[dv]
        return sum(data is not None for data in gone)

    def entries(self) -> Iterator[BlobEntry]:
        """Every stored blob's size and creation time (a snapshot)."""
        with self._lock:
            created = self._created
            found = [(dv, len(data), created.get(dv, 0.0)) for dv, data in self._blobs.items()]
        return iter([BlobEntry(dv, size, created) for dv, size, created in found])

    def path_of(self, data_version: str) -> Path | None:
        """None: a memory blob is not a file."""
        return None

    def check(self, data_version: str) -> str | None:
        """None if the blob is stored (bytes in memory cannot tear), else why not."""
        return None if data_version in self._blobs else "it is not stored"

    def quarantine(self, data_version: str, folder: Path | None) -> Path | None:
        """Drop the blob (a memory store has no folder to move it to); return None."""
        self.delete_many([data_version])
        return None

    def orphan_files(self, older_than: float = 3600.0) -> list[Path]:
        """None: a memory store has no files."""
        return []

    def remove_files(self, paths: Iterable[Path]) -> list[Path]:
        """None: a memory store has no files."""
        return []

    def stale_temp_files(self, older_than: float = 3600.0) -> list[Path]:
        """None: a memory store has no files."""
        return []

    def data_versions(self) -> Iterator[str]:
        """Every stored data version, in insertion order (a snapshot)."""
        with self._lock:
            versions = list(self._blobs)
        return iter(versions)

    def close(self) -> None:
        """Nothing to release; the blobs stay."""


def _pickled(value: Any) -> bytes:
    """The pickle of ``value``; a captured value's own bytes when they are one."""
    if type(value) is not Captured:
        return dumps(value)
    encoding = value.encoded_for(sys.maxsize)
    return encoding if type(encoding) is bytes else dumps(value.value())


class MemoryLedger:
    """A `Ledger` in dicts, deciding claims against ``index``.

    Parameters
    ----------
    index : MemoryIndex
        The index whose stored keys make a claim "done".

    Examples
    --------
    >>> ledger = MemoryLedger(MemoryIndex())
    >>> ledger.claim(["k"], "me", expires=2e9, now=1e9).mine
    ['k']
    >>> list(ledger.claim(["k"], "you", expires=2e9, now=1e9).theirs)
    ['k']
    """

    def __init__(self, index: Any) -> None:
        self.index = index
        self._runs: dict[int, tuple[RunInfo, bytes, bytes]] = {}
        self._next_run = itertools.count(1)
        self._pins: dict[str, float] = {}
        self._leases: dict[str, LeaseState] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryLedger({len(self._runs)} runs, {len(self._leases)} leases)"

    # -- run log ------------------------------------------------------------------------

    def add_run(self, entry: RunEntry) -> int:
        """Log a finished run; return its id."""
        with self._lock:
            run_id = next(self._next_run)
            self._runs[run_id] = _run(run_id, entry)
        return run_id

    def start_run(self, entry: RunEntry) -> int:
        """Log a run that is starting; return its id."""
        return self.add_run(entry)

    def end_run(self, entry: RunEntry, run_id: int | None, owner: str, keys: Iterable[str]) -> int:
        """Drop ``owner``'s leases on ``keys``, then add or complete the run; return its id."""
        self.release(owner, keys)
        if run_id is None:
            return self.add_run(entry)
        self.finish_run(run_id, entry)
        return run_id

    def finish_run(self, run_id: int, entry: RunEntry) -> None:
        """Complete a started run."""
        with self._lock:
            if run_id in self._runs:
                self._runs[run_id] = _run(run_id, entry)

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first."""
        with self._lock:
            return [info for info, _, _ in self._runs.values()]

    def run_keys(self, run_ids: Iterable[int]) -> dict[int, tuple[list[str], list[str]]]:
        """Run id -> (keys hit, keys written)."""
        with self._lock:
            found = {i: self._runs[i] for i in run_ids if i in self._runs}
        return {i: (unpack_keys(hits), unpack_keys(wrote)) for i, (_, hits, wrote) in found.items()}

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs from the log."""
        with self._lock:
            for run_id in run_ids:
                self._runs.pop(run_id, None)

    # -- pins -----------------------------------------------------------------------------

    def pin(self, keys: Iterable[str], now: float) -> None:
        """Pin keys; a key pinned before keeps its first time."""
        with self._lock:
            for key in keys:
                self._pins.setdefault(key, now)

    def unpin(self, keys: Iterable[str]) -> None:
        """Unpin keys; absent ones are ignored."""
        with self._lock:
            for key in keys:
                self._pins.pop(key, None)

    def pins(self) -> dict[str, float]:
        """Pinned key -> when it was pinned."""
        with self._lock:
            return dict(sorted(self._pins.items(), key=lambda item: (item[1], item[0])))

    # -- leases -----------------------------------------------------------------------------

    def claim(self, keys: Iterable[str], owner: str, expires: float, now: float) -> ClaimResult:
        """Take the free, expired or own leases on ``keys``; stored keys are ``done``."""
        mine: list[str] = []
        theirs: dict[str, LeaseState] = {}
        done: dict[str, str] = {}
        with self._lock:
            for key in dict.fromkeys(keys):
                stored = self.index.data_version_of(key)
                if stored is not MISSING:
                    done[key] = stored
                    continue
                held = self._leases.get(key)
                if held is None or held.expires < now or held.owner == owner:
                    self._leases[key] = LeaseState(key, owner, expires)
                    mine.append(key)
                else:
                    theirs[key] = held
        return ClaimResult(mine, theirs, done)

    def renew(self, owner: str, keys: Iterable[str], expires: float) -> None:
        """Push back the expiry of ``owner``'s leases on ``keys``."""
        with self._lock:
            for key in keys:
                held = self._leases.get(key)
                if held is not None and held.owner == owner:
                    self._leases[key] = LeaseState(key, owner, expires)

    def release(self, owner: str, keys: Iterable[str]) -> None:
        """Drop ``owner``'s leases on ``keys``."""
        with self._lock:
            for key in keys:
                held = self._leases.get(key)
                if held is not None and held.owner == owner:
                    del self._leases[key]

    def lease_states(self, keys: Iterable[str] | None = None) -> dict[str, LeaseState]:
        """The current leases on ``keys`` (every lease when None)."""
        with self._lock:
            if keys is None:
                return dict(sorted(self._leases.items()))
            return {key: self._leases[key] for key in keys if key in self._leases}

    def drop_expired(self, now: float) -> int:
        """Delete leases that expired before ``now``; return how many."""
        with self._lock:
            stale = [key for key, held in self._leases.items() if held.expires < now]
            for key in stale:
                del self._leases[key]
        return len(stale)

    notifies = False
    """Waiters poll: `wait_for_news` only sleeps."""

    def wait_for_news(self, timeout: float) -> bool:
        """Sleep ``timeout`` seconds (nothing here tells of news); return False."""
        time.sleep(timeout)
        return False

    # -- the rest ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the run log, pins and leases."""
        with self._lock:
            self._runs.clear()
            self._pins.clear()
            self._leases.clear()

    def end_thread(self) -> None:
        """Nothing to release."""

    def close(self) -> None:
        """Nothing to release; the ledger stays."""


def _run(run_id: int, entry: RunEntry) -> tuple[RunInfo, bytes, bytes]:
    info = RunInfo(
        run_id,
        entry.kind,
        entry.label,
        entry.owner,
        entry.started,
        entry.finished,
        entry.status,
        entry.hits,
        entry.computed,
    )
    return info, entry.hit_keys, entry.written_keys
