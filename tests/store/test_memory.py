"""The in-memory store passes the store contract."""

from __future__ import annotations

from pathlib import Path

from incgraph.store import MemoryBlobStore, MemoryIndex, Store, memory_store

from .contract import StoreContract


class TestMemoryStore(StoreContract):
    """memory_store() under the shared contract."""

    def make_store(self, tmp_path: Path) -> Store:
        return memory_store()

    def test_memory_store_is_made_of_memory_parts(self) -> None:
        """memory_store() pairs a MemoryIndex with a MemoryBlobStore and has no path."""
        store = memory_store()
        assert isinstance(store.index, MemoryIndex) and isinstance(store.blobs, MemoryBlobStore)
        assert store.path is None and not store.read_only
