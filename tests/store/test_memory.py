"""The in-memory store's own make-up (the contract suites run over it in test_contracts.py)."""

from __future__ import annotations

from incgraph.store import MemoryBlobStore, MemoryIndex, MemoryLedger, memory_store


def test_memory_store_is_made_of_memory_parts() -> None:
    """memory_store() pairs a MemoryIndex with a MemoryBlobStore and a MemoryLedger, no path."""
    store = memory_store()
    assert isinstance(store.index, MemoryIndex) and isinstance(store.blobs, MemoryBlobStore)
    assert isinstance(store.ledger, MemoryLedger)
    assert store.path is None and not store.read_only
