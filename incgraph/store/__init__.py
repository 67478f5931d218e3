"""Persistence: a metadata index (cache key -> record) beside a blob store (data version -> value).

The engine talks to a :class:`Store` only. :func:`open_store` opens the on-disk
store (an SQLite index through sqlite-utils plus blob files in one folder);
:func:`memory_store` makes an in-memory one with the same semantics. Both pass
the one contract suite in ``tests/store/contract.py``. See ``docs/store.md``
for the on-disk layout, durability, concurrency, and the security note: results
are pickled, so opening a store means trusting it.
"""

from incgraph.store.file_blobs import INLINE_LIMIT, FileBlobStore
from incgraph.store.memory import MemoryBlobStore, MemoryIndex
from incgraph.store.protocols import BlobStore, Index, Record
from incgraph.store.sqlite_file import SqliteFile
from incgraph.store.sqlite_index import SqliteIndex
from incgraph.store.store import (
    ENV_VAR,
    Store,
    default_location,
    memory_store,
    open_store,
)

__all__ = [
    "ENV_VAR",
    "INLINE_LIMIT",
    "BlobStore",
    "FileBlobStore",
    "Index",
    "MemoryBlobStore",
    "MemoryIndex",
    "Record",
    "SqliteFile",
    "SqliteIndex",
    "Store",
    "default_location",
    "memory_store",
    "open_store",
]
