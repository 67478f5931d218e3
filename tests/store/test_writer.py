"""The session writer over the in-memory and the SQLite store, and its write order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store import MemoryBlobStore, MemoryIndex, Record, Store, memory_store, open_store

from .contract import dv, record
from .writer_contract import WriterContract


class TestMemoryWriter(WriterContract):
    """The writer contract over `memory_store`."""

    def make_store(self, tmp_path: Path, settings: Settings = DEFAULT_SETTINGS) -> Store:
        return memory_store(settings=settings)


class TestSqliteWriter(WriterContract):
    """The writer contract over a store folder."""

    def make_store(self, tmp_path: Path, settings: Settings = DEFAULT_SETTINGS) -> Store:
        return open_store(tmp_path / "store", settings=settings)


class Recording:
    """Wraps a blob store or an index, logging the writes that reach it."""

    def __init__(self, inner: Any, events: list[str]) -> None:
        self.inner, self.events = inner, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, data_version: str, value: Any) -> int:
        self.events.append(f"blob {data_version[-1]}")
        return int(self.inner.put(data_version, value))

    def put_many(self, items: Any) -> list[Any]:
        items = list(items)
        if items and isinstance(items[0], Record):
            self.events += [f"row {r.key[-1]}" for r in items]
            self.inner.put_many(items)
            return []
        return [self.put(data_version, v) for data_version, v in items]


def test_a_flush_writes_blobs_then_result_blobs_then_rows() -> None:
    """Artifact blobs are written first, then the results' blobs, then their index rows."""
    events: list[str] = []
    store = Store(Recording(MemoryIndex(), events), Recording(MemoryBlobStore(), events))
    with store.session() as session:
        session.writer.put_blob(dv(2), "artifact")
        session.writer.add(record(1, 1), store.capture("result"))
        session.writer.flush()
    assert events == ["blob 2", "blob 1", "row 1"]
