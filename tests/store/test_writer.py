"""The session writer's write order (its contract runs over every backend in test_contracts.py)."""

from __future__ import annotations

from typing import Any

from incgraph.store import MemoryBlobStore, MemoryIndex, Record, Store, save_apart

from .contract import dv, record


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

    def save_with(self, blobs: Any, items: list[tuple[Record, Any]], now: float) -> list[Record]:
        """As an index: blobs then rows through this wrapper, so both are logged."""
        return save_apart(self, blobs, items, now)  # type: ignore[arg-type]


def test_a_flush_writes_blobs_then_result_blobs_then_rows() -> None:
    """Artifact blobs are written first, then the results' blobs, then their index rows."""
    events: list[str] = []
    store = Store(Recording(MemoryIndex(), events), Recording(MemoryBlobStore(), events))
    with store.session() as session:
        session.writer.put_blob(dv(2), "artifact")
        session.writer.add(record(1, 1), store.capture("result"))
        session.writer.flush()
    assert events == ["blob 2", "blob 1", "row 1"]
