"""The in-memory store: the reference implementation of the protocols.

Design note
-----------
Dicts behind one lock each. It has the SQLite store's semantics, so the same
contract suite runs against both, with two differences that follow from living
in one process: no checksums (bytes cannot tear in memory) and no durability.

Values are kept as their pickled bytes, not as objects: saving copies the value
and every load unpickles a fresh copy, so neither the caller who saved a value
nor one who loaded it can change the cache by mutating their object. Records
are copied on the way in and out for the same reason (``inputs`` is a dict).
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from incgraph.sentinels import MISSING, Missing
from incgraph.store.codecs import dumps
from incgraph.store.protocols import Record

__all__ = ["MemoryBlobStore", "MemoryIndex"]


def _copy(record: Record) -> Record:
    return replace(record, inputs=dict(record.inputs))


class MemoryIndex:
    """An :class:`~incgraph.store.protocols.Index` in a dict. Thread-safe.

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
        found: dict[str, tuple[str, str]] = {}
        for node in nodes:
            latest = self.latest_for_node(node)
            if latest is not MISSING:
                found[node] = (latest.key, latest.data_version)
        return found

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys``; absent keys are left out."""
        with self._lock:
            found = {key: self._records[key][1] for key in keys if key in self._records}
        return {key: _copy(record) for key, record in found.items()}

    def put(self, record: Record) -> None:
        """Insert or replace the record under ``record.key``."""
        self.put_many([record])

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

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under ``keys``; absent keys are ignored."""
        with self._lock:
            for key in keys:
                old = self._records.pop(key, None)
                if old is not None:
                    self._by_node.get(old[1].node, {}).pop(key, None)

    def close(self) -> None:
        """Nothing to release; the records stay."""


class MemoryBlobStore:
    """A :class:`~incgraph.store.protocols.BlobStore` of pickled bytes in a dict. Thread-safe.

    Examples
    --------
    >>> blobs = MemoryBlobStore()
    >>> value = [1, 2]
    >>> size = blobs.put("dv", value)
    >>> value.append(3)  # the stored copy does not change
    >>> blobs.get("dv")
    [1, 2]
    """

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
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
            data = dumps(value)
            with self._lock:
                stored = self._blobs.setdefault(data_version, data)
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
        with self._lock:
            self._blobs.pop(data_version, None)

    def data_versions(self) -> Iterator[str]:
        """Every stored data version, in insertion order (a snapshot)."""
        with self._lock:
            versions = list(self._blobs)
        return iter(versions)

    def close(self) -> None:
        """Nothing to release; the blobs stay."""
