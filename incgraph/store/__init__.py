"""Persistence: a metadata index (cache key -> record) beside a blob store (data version -> value).

The engine talks to a `Store` only. `open_store` opens the on-disk
store (an SQLite index plus blob files in one folder) or, given a
``postgresql://`` URL, a store a team shares (index and ledger in PostgreSQL);
`memory_store` makes an in-memory one with the same semantics. Blobs may also
live in object storage (`ObjectBlobStore`, ``open_store(path,
blobs="s3://...")``), and `incgraph.store.transfer` copies results between
stores (``incgraph push`` / ``pull``). Beside the
index and the blobs, a *ledger* holds the run log, pins and leases; on top of
them sit garbage collection (`Store.gc`), verification
(`Store.verify`), statistics and lineage, typed against `StoreView`. Every
implementation passes the contract suites in ``tests/store/contract.py``. See
``docs/store.md`` for the on-disk layout, durability, concurrency, exactly-once
leases and the security note: results are pickled, so opening a store means
trusting it.
"""

from incgraph.store.blob_cache import BlobCache
from incgraph.store.file_blobs import FileBlobStore
from incgraph.store.garbage import GcReport
from incgraph.store.leases import LEASE_SECONDS, Claims, Lessee
from incgraph.store.ledger import Ledger
from incgraph.store.lineage import LineageNode, lineage
from incgraph.store.memory import MemoryBlobStore, MemoryIndex, MemoryLedger
from incgraph.store.object_blobs import ObjectBlobStore
from incgraph.store.postgres_index import PostgresIndex
from incgraph.store.postgres_ledger import PostgresLedger
from incgraph.store.protocols import BlobEntry, BlobStore, Index, Record, StoreView, save_apart
from incgraph.store.runlog import RunInfo, RunLog
from incgraph.store.session import StoreSession
from incgraph.store.signing import HMAC_ENV_VAR, Signer
from incgraph.store.sqlite_file import SqliteFile
from incgraph.store.sqlite_index import SqliteIndex
from incgraph.store.sqlite_ledger import SqliteLedger
from incgraph.store.store import (
    ENV_VAR,
    Store,
    default_location,
    mark_folder,
    memory_store,
    open_store,
    read_marker,
)
from incgraph.store.usage import ClearReport, StoreStats
from incgraph.store.verification import VerifyReport
from incgraph.store.writer import Writer

__all__ = [
    "ENV_VAR",
    "HMAC_ENV_VAR",
    "LEASE_SECONDS",
    "BlobCache",
    "BlobEntry",
    "BlobStore",
    "Claims",
    "ClearReport",
    "FileBlobStore",
    "GcReport",
    "Index",
    "Ledger",
    "Lessee",
    "LineageNode",
    "MemoryBlobStore",
    "MemoryIndex",
    "MemoryLedger",
    "ObjectBlobStore",
    "PostgresIndex",
    "PostgresLedger",
    "Record",
    "RunInfo",
    "RunLog",
    "Signer",
    "SqliteFile",
    "SqliteIndex",
    "SqliteLedger",
    "Store",
    "StoreSession",
    "StoreStats",
    "StoreView",
    "VerifyReport",
    "Writer",
    "default_location",
    "lineage",
    "mark_folder",
    "memory_store",
    "open_store",
    "read_marker",
    "save_apart",
]
