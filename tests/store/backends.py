"""The store backends every contract suite runs over: the one list to extend.

Each `Backend` makes a fresh, empty `Store` in a test's ``tmp_path``, with the
settings it is given (a suite may tune the writer or the index for one test).
``tests/store/test_contracts.py`` runs `IndexContract`, `BlobStoreContract`,
`LedgerContract`, `RunLogContract` and `StoreContract` (``contract.py``) over every
entry of `BACKENDS`, so a new index, blob store or ledger joins every suite by
adding one entry here. A backend that needs a server takes it from a pytest
fixture through ``request.getfixturevalue`` (a session-scoped fixture that starts
the server once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from incgraph.settings import Settings
from incgraph.store import FileBlobStore, SqliteFile, SqliteIndex, Store, memory_store, open_store
from incgraph.store.store import mark_folder


@dataclass(frozen=True)
class Backend:
    """A named way to make an empty store for one test."""

    name: str
    make: Callable[[pytest.FixtureRequest, Path, Settings], Store]


MakeStore = Callable[..., Store]
"""The ``make_store`` fixture: ``make_store(settings=DEFAULT_SETTINGS)``, a new store of the
test's backend (closed at the end of the test)."""


def _memory(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    return memory_store(settings=settings)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    return open_store(tmp_path / "store", settings=settings)


def _sqlite_all_files(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """Every blob a memory-mapped file: no inline blobs, no results kept in their rows."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = SqliteFile(tmp_path / "index.sqlite", settings=settings)
    every_file = settings.replace(blob_inline_limit_bytes=1, blob_mmap_threshold_bytes=1)
    blobs = FileBlobStore(tmp_path / "blobs", db, settings=every_file)
    mark_folder(tmp_path)
    index = SqliteIndex(db, settings=settings)
    return Store(index, blobs, path=tmp_path, settings=settings)


def _sqlite_signed(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """Blobs signed with HMAC: nothing kept unsigned in a result's row is ever served."""
    return open_store(tmp_path / "store", hmac_key=b"contract-key", settings=settings)


def _postgres(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """Index and ledger in a schema of its own of the session's PostgreSQL server."""
    url = request.getfixturevalue("postgres_url")
    return open_store(url, blobs=tmp_path / "blobs", create=True, settings=settings)


OBJECT_KEY = "team-secret"
"""The signing key of the object-storage backends (blobs outside the store are signed)."""


def _s3(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """Blobs in a bucket of the S3 emulator (a server process), index in a local folder."""
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(tmp_path / "store", blobs=bucket, hmac_key=OBJECT_KEY, settings=settings)


def _local_objects(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """The object store over a local folder (file://), without the read-through cache."""
    url = f"file://{tmp_path / 'bucket'}"
    return open_store(
        tmp_path / "store", blobs=url, hmac_key=OBJECT_KEY, cache_bytes=0, settings=settings
    )


def _postgres_s3(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Store:
    """A team's store: index and ledger in PostgreSQL, blobs in the S3 emulator's bucket."""
    url, bucket = request.getfixturevalue("postgres_url"), request.getfixturevalue("s3_bucket")
    return open_store(url, blobs=bucket, create=True, hmac_key=OBJECT_KEY, settings=settings)


BACKENDS: list[Backend] = [
    Backend("memory", _memory),
    Backend("sqlite", _sqlite),
    Backend("sqlite-all-files", _sqlite_all_files),
    Backend("sqlite-signed", _sqlite_signed),
    Backend("postgres", _postgres),
    Backend("postgres-s3", _postgres_s3),
    Backend("s3", _s3),
    Backend("local-objects", _local_objects),
]
"""Every backend the contract suites run over, by name (the test id)."""
