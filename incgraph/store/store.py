"""The store the engine sees: an index plus a blob store, and how to open one.

Design note
-----------
`Store` owns the two rules that span both halves:

* **Write order.** `Store.save` writes the blob (atomically) before the
  index row, so a row is only ever committed for a complete blob; a crash in
  between leaves an orphan blob and a miss, never a hit on missing bytes. When
  both halves live in one SQLite file (every store `open_store` makes),
  `Store.save_many` puts a chunk's blob rows and index rows in ONE
  transaction (blob files are renamed into place before it commits): one
  commit per chunk instead of two, and all-or-nothing. Measured: 38 -> 17 µs
  per small result in a ``save_many`` of 512, most of what is left being
  SQLite's own B-tree inserts into four indexes with random keys.
* **Small results live in their row** (schema version 3). In that shared-file
  path, a result whose pickle is at most ``row_inline_limit_bytes`` (no
  signer) gets no blob row: its bytes and checksum go into its own index row,
  in the same insert. One row and three indexes per small result instead of
  two rows and five (84k -> 68k instructions, about 10.7 -> 9.1 µs each).
  `Store.load` asks the blob store first and then an index row of the
  data version (`row_value`,
  checked like an inline blob), so any Index/BlobStore pair keeps working.
* **Bad blobs are forgotten.** When `Store.load` meets a blob that is
  corrupt (`StoreCorruptError`) or gone (``KeyError``),
  it deletes the index rows that point at it, and those of the results that
  reference it, before re-raising, so the engine can treat the error as a
  miss and the next lookup is a miss too.
* **References are visible.** A value whose type defines
  ``__incgraph_refs__()`` (a Flow manifest, a ForEach join) names the other
  blobs it needs; `Store.save_many` records them (schema version 4,
  ``refs``) in the transaction of the result's row, so garbage collection
  keeps them and ``verify`` checks them.

Beside the two halves sits the *ledger* (`incgraph.store.ledger`): the run
log (`Store.run_log`), pins (`Store.pin`) and leases
(`Store.lessee`). Maintenance works on all three:
`Store.gc` (`incgraph.store.garbage`), `Store.verify`
(`incgraph.store.verification`), `Store.stats` and
`Store.clear` (`incgraph.store.usage`).

`open_store` lays a store out in one folder::

    <folder>/               mode 0700
        incgraph-store.json the marker: this folder is an incgraph store (its id,
                            its schema version), mode 0600
        index.sqlite        results (with small results' bytes) + blobs tables
                            (and -wal / -shm), mode 0600
        blobs/<dv[:2]>/     large values, one file each, mode 0600
        quarantine/         what ``verify`` set aside

**The marker.** A store is created with its marker. A folder without one
made by an older incgraph is adopted (given a marker) the first time it is
opened writable, if its ``index.sqlite`` is an incgraph index; a folder whose
``index.sqlite`` belongs to another program is refused, read-only or not,
before anything is written to it. ``gc``, ``clear`` and quarantining
``verify`` refuse a folder without a marker (`Store.check_marked`), so
maintenance never deletes in a folder that is not known to be a store.

Opening a store unpickles whatever it holds: open only stores you trust.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from incgraph.errors import (
    ConfigurationError,
    NotCachedError,
    ReadOnlyStoreError,
    StoreCorruptError,
    StoreError,
)
from incgraph.hashing._packages import declared_names, package_versions
from incgraph.sentinels import MISSING, Missing
from incgraph.settings import DEFAULT_SETTINGS, Settings, checked_settings
from incgraph.store.blob_cache import BlobCache
from incgraph.store.budget import max_bytes_from_env
from incgraph.store.codecs import Captured, capture
from incgraph.store.failure import store_error
from incgraph.store.file_blobs import FileBlobStore
from incgraph.store.garbage import GcReport, collect_garbage
from incgraph.store.leases import Lessee
from incgraph.store.ledger import Ledger
from incgraph.store.memory import MemoryBlobStore, MemoryIndex
from incgraph.store.names import is_real_folder
from incgraph.store.object_blobs import ObjectBlobStore, is_object_url
from incgraph.store.permissions import Modes, folder_modes
from incgraph.store.postgres_database import is_postgres_url, safe_url, split_blobs
from incgraph.store.postgres_index import open_postgres
from incgraph.store.protocols import BlobStore, Index, Record, refs_of
from incgraph.store.runlog import RunInfo, RunLog, is_abandoned, owner_is_dead
from incgraph.store.schema import SCHEMA_VERSION
from incgraph.store.session import StoreSession, open_session
from incgraph.store.signing import HMAC_ENV_VAR, Signer, signer_from_env
from incgraph.store.sqlite_file import SqliteFile
from incgraph.store.sqlite_index import SqliteIndex
from incgraph.store.sqlite_ledger import SqliteLedger
from incgraph.store.usage import ClearReport, StoreStats, clear_store, store_stats
from incgraph.store.verification import VerifyReport, verify_store

__all__ = [
    "DEFAULT_FOLDER",
    "ENV_VAR",
    "Store",
    "default_location",
    "mark_folder",
    "memory_store",
    "open_store",
    "read_marker",
    "refs_of",
]

ENV_VAR = "INCGRAPH_STORE"
"""Environment variable naming the default store folder."""

DEFAULT_FOLDER = ".incgraph"
"""The default store folder, relative to the current directory, when ``INCGRAPH_STORE`` is unset."""

T = TypeVar("T")

INDEX_HOME_ENV_VAR = "INCGRAPH_INDEX_HOME"
"""Environment variable naming where the local indexes of ``s3://...`` stores live."""

INDEX_FILE = "index.sqlite"
BLOB_FOLDER = "blobs"
CACHE_FOLDER = "cache"
QUARANTINE_FOLDER = "quarantine"
MARKER_FILE = "incgraph-store.json"
MARKER_FORMAT = "incgraph store"


class Store:
    """An Index plus a BlobStore. The engine's only view of persistence.

    Parameters
    ----------
    index : Index
        Cache key -> `Record`.
    blobs : BlobStore
        Data version -> value.
    path : pathlib.Path, optional
        The folder of an on-disk store, None for one in memory.
    read_only : bool
        Refuse `save` and `save_many` (and claims, and the run log).
    ledger : Ledger, optional
        Run log, pins and leases. By default ``index.make_ledger()``: the ledger
        that decides claims against this index (the SQLite ledger in the index's
        file, the memory ledger of a memory index, the PostgreSQL ledger).
    lease_seconds : float, optional
        How long a lease lives without renewal (`incgraph.store.leases`); overrides
        ``settings.lease_ttl_seconds`` when given.
    packages : tuple of str
        Installed packages whose versions enter the cache key of every node run
        with this store (see `open_store`).
    max_bytes : int, optional
        The store's byte budget, enforced after every run that writes
        (`incgraph.store.budget`); None for no budget.
    settings : Settings
        The tuning this store and the runs using it follow (`incgraph.settings`);
        kept on this object only, never in the store's folder.

    Examples
    --------
    >>> store = memory_store()
    >>> record = Record("key1", "dv1", node="2", processor="m.Add", code_version="c",
    ...                 init_version="i", inputs={"a": "dv0"})
    >>> saved = store.save(record, {"total": 3})
    >>> saved.size > 0 and saved.created > 0
    True
    >>> store.lookup("key1") == saved, store.lookup("key2")
    (True, MISSING)
    >>> store.load(saved)
    {'total': 3}
    """

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        *,
        path: str | os.PathLike[str] | None = None,
        read_only: bool = False,
        ledger: Ledger | None = None,
        lease_seconds: float | None = None,
        packages: Iterable[str] = (),
        max_bytes: int | None = None,
        settings: Settings = DEFAULT_SETTINGS,
    ) -> None:
        if lease_seconds is not None:
            settings = settings.replace(lease_ttl_seconds=lease_seconds)
        self.settings = settings
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.max_bytes = max_bytes
        self.index = index
        self.blobs = blobs
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        self.ledger = index.make_ledger() if ledger is None else ledger
        self.packages = _declared_packages(packages)
        self.location: str | None = None if self.path is None else str(self.path)
        """What `open_store` reopens this store from (in another process): its folder, or
        its PostgreSQL URL with ``blobs=``; None for a store in memory."""

    @property
    def lease_seconds(self) -> float:
        """How long a lease lives without renewal: ``settings.lease_ttl_seconds``."""
        return self.settings.lease_ttl_seconds

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else str(self.path)
        if is_postgres_url(self.location):  # the URL names it (its password masked)
            where = safe_url(str(self.location))
        return f"<Store {where}{' read-only' if self.read_only else ''}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def lookup(self, key: str) -> Record | Missing:
        """The record under the cache key ``key``, or ``MISSING``. Reads the index only."""
        return self.index.get(key)

    def lookup_version(self, key: str) -> str | Missing:
        """Just the data version under ``key``, or ``MISSING``: what a cache hit needs."""
        return self.index.data_version_of(key)

    def lookup_versions(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> data version of the stored ``keys``, in bulk (what a batch of hits needs)."""
        return self.index.data_versions_of(keys)

    def resolve(self, prefix: str) -> str:
        """The one stored cache key that starts with ``prefix``.

        Raises
        ------
        NotCachedError
            No stored key starts with ``prefix`` (a ``KeyError``).
        ConfigurationError
            Several do; the message lists some of them (a ``ValueError``).
        """
        found = self.index.keys_with_prefix(prefix, 6) if prefix else []
        if not found:
            raise NotCachedError(
                f"no stored result has a key starting with {prefix!r}; "
                "`incgraph ls` lists the stored keys"
            )
        if len(found) > 1 and prefix not in found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise ConfigurationError(
                f"key prefix {prefix!r} is ambiguous: {shown}; give more characters"
            )
        return prefix if prefix in found else str(found[0])

    def latest_versions(self, nodes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Node label -> (key, data version) of each node's latest record, in bulk."""
        return self.index.latest_versions(nodes)

    def latest_entries(self, nodes: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Node label -> (key, data version, duration) of each node's latest record, in bulk.

        The duration is how long that result took to compute (NaN when the index
        cannot say): the engine skips the lease of a node known to be cheap.
        """
        return self.index.latest_entries(nodes)

    def lookup_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys`` (absent keys are left out)."""
        return self.index.get_many(keys)

    def latest_for_node(self, node: str) -> Record | Missing:
        """The most recently created record of ``node``, or ``MISSING``."""
        return self.index.latest_for_node(node)

    def load(self, record_or_data_version: Record | str) -> Any:
        """The value of a record (or of a data version).

        The blob store is asked first; when it has no sound blob, an index row
        that holds the value itself (schema version 3, small results) is read
        (`row_value`, checked
        like an inline blob).

        Raises
        ------
        KeyError
            No blob is stored for it, and no row holds it.
        StoreCorruptError
            The blob (or the row's bytes) failed its checks; it is never served.

        In both cases the index rows pointing at the data version are dropped
        (unless read-only), so the next run recomputes the result.
        """
        if isinstance(record_or_data_version, Record):
            data_version = record_or_data_version.data_version
        else:
            data_version = record_or_data_version
        try:
            return self.blobs.get(data_version)
        except (KeyError, StoreCorruptError):
            try:
                value = self._row_value(data_version)
            except StoreCorruptError:
                self._forget(data_version)
                raise
            if value is MISSING:
                self._forget(data_version)
                raise
            return value

    def _row_value(self, data_version: str) -> Any:
        """The value an index row holds for ``data_version``, or ``MISSING``."""
        return self.index.row_value(data_version, signed=self.blobs.signed)

    def _forget(self, data_version: str) -> None:
        """Drop the index rows naming or referencing ``data_version`` (unless read-only)."""
        if not self.read_only:
            with suppress(StoreError):
                self.index.delete(
                    [
                        *self.index.keys_for_data_version(data_version),
                        *self.index.referencing(data_version),
                    ]
                )

    def capture(self, value: Any) -> Captured:
        """``value``'s bytes as this store would save them, taken now.

        What the engine does with a result right after computing it: the
        `incgraph.store.codecs.Captured` it returns is what is saved
        (`save_many` takes it in place of the value), and later consumers
        get copies decoded from it, so nothing done to ``value`` afterwards
        changes the stored result.

        Raises
        ------
        StoreError
            ``value`` cannot be pickled.

        Examples
        --------
        >>> store = memory_store()
        >>> value = [1, 2]
        >>> captured = store.capture(value)
        >>> value.append(3)
        >>> saved = store.save(Record("k", "ab" * 16, "n", "p", "c", "i"), captured)
        >>> store.load(saved), captured.value()
        ([1, 2], [1, 2])
        """
        return capture(value, inline_limit=self.blobs.inline_limit)

    def save(self, record: Record, value: Any) -> Record:
        """Store ``value`` as the result of ``record``: blob first (atomic), then the index row.

        ``value`` may be what `capture` returned: its bytes are saved.

        Returns the record as committed: ``size`` is the blob's size and
        ``created`` is now unless the record already carried a time.
        """
        return self.save_many([(record, value)])[0]

    def save_many(self, items: Iterable[tuple[Record, Any]]) -> list[Record]:
        """Store many results: every blob first, then all index rows.

        When the index and the blobs share one SQLite file (every store
        `open_store` makes), the blob rows and the index rows of up to
        ``settings.index_put_chunk`` results go in ONE
        transaction, blob rows first; blob files are renamed into place before
        it commits. Atomic is stronger than blob-then-row: a crash leaves both
        or neither (and at worst an orphan file).
        """
        items = list(items)
        if self.read_only:
            nodes = ", ".join(sorted({repr(record.node) for record, _ in items}))
            raise ReadOnlyStoreError(
                f"cannot save results of node {nodes}: {self!r} was opened read-only; "
                f"{self._writable_advice()}"
            )
        return self.index.save_with(self.blobs, items, time.time())

    # -- the ledger: run log, pins, leases ---------------------------------------------

    def run_log(self, kind: str = "run", label: str = "", *, announce: bool = False) -> RunLog:
        """A `RunLog` collecting one run's hits and writes.

        It writes one row when closed (nothing while the run goes on).
        ``announce=True`` also writes the row when the run starts, so garbage
        collection elsewhere keeps what the run writes while it is running (for
        long batches). A read-only store gives a log that records nothing.
        """
        return RunLog(None if self.read_only else self.ledger, kind, label, announce=announce)

    def session(
        self,
        kind: str = "run",
        label: str = "",
        *,
        announce: bool = False,
        settings: Settings | None = None,
    ) -> StoreSession:
        """One run's run log, leases and writer: the hook the engine and batch loops call.

        ``settings`` tune the session's writer and leases (default: the store's;
        a graph passes its own). See `StoreSession`.

        Examples
        --------
        >>> from incgraph import DEFAULT_SETTINGS
        >>> store = memory_store()
        >>> store.session().settings is store.settings
        True
        >>> tuned = DEFAULT_SETTINGS.replace(writer_pending_count=8)
        >>> store.session(settings=tuned).settings.writer_pending_count
        8
        """
        return open_session(self, kind, label, announce=announce, settings=settings)

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first; a running run whose process died is ``"abandoned"``."""
        now, stale = time.time(), self.settings.stale_run_seconds
        return [
            replace(run, status="abandoned") if is_abandoned(run, now, stale) else run
            for run in self.ledger.runs()
        ]

    def pin(self, key: str) -> str:
        """Keep the result under ``key`` (or a unique prefix) through every gc; return the key."""
        full = self.resolve(key)
        self._check_writable(f"pin {full}")
        self.ledger.pin([full], time.time())
        return full

    def unpin(self, key: str) -> str | None:
        """Let gc drop a pinned key (or unique prefix) again; return it, None if not pinned."""
        self._check_writable(f"unpin {key}")
        pinned = [k for k in self.ledger.pins() if k.startswith(key)]
        if key in pinned:
            pinned = [key]
        if len(pinned) > 1:
            raise ValueError(f"key prefix {key!r} matches {len(pinned)} pinned keys; give more")
        self.ledger.unpin(pinned)
        return pinned[0] if pinned else None

    def pins(self) -> list[str]:
        """The pinned keys, oldest pin first."""
        return list(self.ledger.pins())

    def lessee(self, ttl: float | None = None, settings: Settings | None = None) -> Lessee:
        """A claimant: exactly-once computation across processes (`incgraph.store.leases`).

        Its ``wait`` backs off from ``settings.lease_first_poll_seconds`` to
        ``settings.lease_max_poll_seconds``, and the heartbeat thread renewing its
        leases lingers ``settings.lease_linger_seconds`` once idle (default: this
        store's settings).
        """
        settings = self.settings if settings is None else settings
        return Lessee(
            self.ledger,
            self.lookup_versions,
            ttl=self.lease_seconds if ttl is None else ttl,
            read_only=self.read_only,
            first_poll=settings.lease_first_poll_seconds,
            max_poll=settings.lease_max_poll_seconds,
            linger=settings.lease_linger_seconds,
        )

    # -- maintenance -----------------------------------------------------------------------

    @property
    def quarantine_folder(self) -> Path | None:
        """Where `verify` moves bad blobs (None for a store in memory)."""
        return None if self.path is None else self.path / QUARANTINE_FOLDER

    def check_marked(self, action: str) -> None:
        """Refuse ``action`` (a maintenance step that deletes) in a folder not marked as a store.

        A store in memory needs no marker.

        Raises
        ------
        StoreError
            The folder has no valid ``incgraph-store.json``; the message says how
            to mark it (open it once writable, which adopts an incgraph store).

        Examples
        --------
        >>> import tempfile
        >>> with open_store(tempfile.mkdtemp()) as store:
        ...     store.check_marked("collect garbage")  # open_store marked it: no error
        """
        if self.path is None:
            return
        if read_marker(self.path) is None:
            others = foreign_names(self.path) or []
            held = f" ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''})"
            raise StoreError(
                f"refusing to {action} in {self.path}: it has no {MARKER_FILE} marking it as "
                "an incgraph store; a store made by an older incgraph is marked when opened "
                "with read_only=False, unless the folder also holds files incgraph did not "
                f"make{held if others else ''}: move those out and retry, or, if the folder "
                "is a store, mark it with incgraph.store.mark_folder(path)"
            )

    def gc(
        self,
        *,
        keep_runs: int | None = None,
        max_bytes: int | None = None,
        pins: Iterable[str] = (),
        grace: float | None = None,
        dry_run: bool = False,
    ) -> GcReport:
        """Drop what recent runs did not use; see `incgraph.store.garbage.collect_garbage`."""
        return collect_garbage(
            self,
            keep_runs=keep_runs,
            max_bytes=max_bytes,
            pins=pins,
            grace=self.settings.gc_grace_seconds if grace is None else grace,
            dry_run=dry_run,
        )

    def verify(self, *, quarantine: bool = True) -> VerifyReport:
        """Check every blob and index row; see `incgraph.store.verification.verify_store`."""
        return verify_store(self, quarantine=quarantine and not self.read_only)

    def stats(self) -> StoreStats:
        """Counts, bytes and hit rates; see `incgraph.store.usage.store_stats`."""
        return store_stats(self)

    def clear(self) -> ClearReport:
        """Delete every result, blob, run and pin; see `incgraph.store.usage.clear_store`."""
        return clear_store(self)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Inside the block, every read of this thread sees the store as of its first read.

        One SQLite read transaction (a store in memory has nothing to do): what
        ``verify`` judges from while writers go on. Nothing may be written inside.

        Examples
        --------
        >>> import tempfile
        >>> store = open_store(tempfile.mkdtemp())
        >>> with store.snapshot():
        ...     len(store.index), len(list(store.blobs.entries()))
        (0, 0)
        >>> store.close()
        """
        with self.index.snapshot():
            yield

    def locked(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` holding the store's write lock: no other writer commits meanwhile.

        Writes it makes (deleting rows, quarantining blobs) join one transaction.
        Maintenance re-checks what it found under this lock before it removes it.

        Examples
        --------
        >>> import tempfile
        >>> store = open_store(tempfile.mkdtemp())
        >>> saved = store.save(Record("k", "ab" * 16, "n", "p", "c", "i"), [1])
        >>> store.locked(lambda: store.index.delete(["k"]) or len(store.index))
        0
        >>> store.close()
        """
        if self.read_only:
            return operation()
        return self.index.locked(operation)

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot {action}: {self!r} was opened read-only; {self._writable_advice()}"
            )

    def _writable_advice(self) -> str:
        """How to get a writable store: read_only=False, where the folder can be written."""
        if self.path is not None and not folder_is_writable(self.path):
            return (
                "its folder cannot be written (a read-only mount or missing permission): "
                "open it with read_only=False from where it can be written, or copy it"
            )
        return "open it with read_only=False to change it"

    def close(self) -> None:
        """Release connections and handles. Using the store again reopens them."""
        self.index.close()
        self.blobs.close()
        self.ledger.close()


def default_location() -> Path:
    """The folder `open_store` uses when given none: ``$INCGRAPH_STORE`` or ``./.incgraph``.

    Resolved against the current directory at call time.

    Examples
    --------
    >>> default_location().name in {".incgraph", Path(os.environ.get(ENV_VAR, "x")).name}
    True
    """
    return Path(os.environ.get(ENV_VAR) or DEFAULT_FOLDER).expanduser().absolute()


def open_store(
    location: str | os.PathLike[str] | Store | None = None,
    *,
    read_only: bool = False,
    durable: bool = False,
    hmac_key: bytes | str | None = None,
    lease_seconds: float | None = None,
    packages: Iterable[str] = (),
    max_bytes: int | None = None,
    blobs: str | os.PathLike[str] | None = None,
    create: bool = False,
    settings: Settings = DEFAULT_SETTINGS,
    cache_bytes: int | None = None,
    signing: bool | None = None,
    shared: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Store:
    """Open (creating if needed) a store: a folder, a folder beside a bucket, or a team's store.

    Parameters
    ----------
    location : str, os.PathLike, Store or None
        The store folder; None means `default_location`. A `Store`
        is returned as is. A ``postgresql://user@host:port/dbname`` URL opens
        a store whose index, run log, pins and leases live in that PostgreSQL
        database, shared by every machine that opens it (docs/team.md);
        ``blobs`` then says where the results' bytes go. An object-storage URL
        (``"s3://bucket/prefix"``) keeps the blobs there and the index in a
        local folder of this user's (`remote_index_folder`), as ``blobs=`` does.
    read_only : bool
        Open without write access; saving raises
        `ReadOnlyStoreError`. The store must exist.
    durable : bool
        fsync blob files, their folders and SQLite commits, so results survive a
        power cut (slower); a killed process loses nothing either way.
    hmac_key : bytes or str, optional
        Sign blobs with HMAC-SHA256 and refuse unsigned or tampered ones
        (`incgraph.store.signing`). Default: ``$INCGRAPH_HMAC_KEY`` if set.
    lease_seconds : float, optional
        How long a lease on a key being computed lives without renewal: a
        killed process's work is taken over after this long. Overrides
        ``settings.lease_ttl_seconds`` (30 s by default) when given.
    packages : iterable of str
        Installed packages (as ``pip`` names them) whose versions enter the
        cache key of every node, layer and task run with this store, besides
        those a processor declares in ``Processor.packages``: upgrading one
        recomputes every result. Not remembered in the folder: pass the same
        list wherever the store is opened.
    max_bytes : int, optional
        A byte budget enforced after every run that writes results, least
        recently used first (`incgraph.store.budget`). Default:
        ``$INCGRAPH_MAX_BYTES`` if set, else no budget.
    blobs : str or os.PathLike, optional
        Where the results' bytes go. With a folder ``location``: an
        object-storage URL (``s3://bucket/prefix``, ``file:///folder``;
        `incgraph.store.object_blobs`), the index staying in the folder. The
        folder remembers the URL: later opens may leave it out, and opening it
        with another URL raises `ConfigurationError`. Credentials come from the
        client's own configuration (``AWS_*``, ``~/.aws``), never from the store.
        With a PostgreSQL ``location`` (required there, or as the URL's
        ``?blobs=``): a blob folder on the host whose processes share the store
        (its rows are SQLite: not for a network file system), or an
        object-storage URL for machines that share no disk (docs/team.md).
    create : bool
        With a PostgreSQL ``location``: create incgraph's tables if the database
        has none (the same as ``incgraph migrate URL``). A folder store is
        always created when missing.
    settings : Settings
        The tuning of this store and of the runs that use it (`incgraph.settings`):
        inline limits, chunk sizes, lease timing, gc grace... Kept on the returned
        object only, never written to the folder: pass the same settings wherever
        the store is opened if they matter. Cache keys never depend on them.
    cache_bytes : int, optional
        Size limit of the local read-through cache of blobs in object storage
        (the folder's ``cache/``), least recently used out; 0 turns it off.
        Default: ``settings.blob_cache_bytes``.
    signing : bool, optional
        Blobs in object storage are signed by default: opening one without a
        key (``hmac_key`` or ``$INCGRAPH_HMAC_KEY``) raises
        `ConfigurationError`. ``signing=False`` opts out explicitly (no
        signature written or checked); ``True`` requires a key for any store.
    shared : {None, "group"}
        ``"group"``: folders and files are made group-readable and -writable
        (folders 2770 with the setgid bit, files 0660), so the members of the
        folder's group share one store on one host. Default: private to the
        user (0700 / 0600).
    storage_options : dict, optional
        Options of the fsspec filesystem of ``blobs`` (e.g. ``endpoint_url``).

    Raises
    ------
    StoreCorruptError
        The index file is not a readable SQLite database (the message names it).
    StoreError
        The folder cannot be created, or ``read_only`` and there is no store.
    GraphDefinitionError
        A name in ``packages`` is not an installed package.

    Examples
    --------
    >>> import tempfile
    >>> with open_store(tempfile.mkdtemp() + "/cache") as store:
    ...     store.save(Record("k", "ab" * 16, "n", "p", "c", "i"), [1, 2]).size > 0
    True
    >>> from incgraph import DEFAULT_SETTINGS
    >>> tuned = DEFAULT_SETTINGS.replace(gc_grace_seconds=60)
    >>> with open_store(tempfile.mkdtemp(), settings=tuned) as store:
    ...     store.settings.gc_grace_seconds
    60
    """
    checked_settings(settings, "open_store")
    if isinstance(location, Store):
        return location
    if max_bytes is None:
        max_bytes = max_bytes_from_env()  # a bad value fails before anything is created
    if location is None:  # $INCGRAPH_STORE may be a URL as well as a folder
        location = os.environ.get(ENV_VAR) or None
    if is_postgres_url(location):
        assert isinstance(location, str)  # is_postgres_url says so
        return _open_postgres_store(
            location,
            blobs,
            read_only=read_only,
            create=create,
            durable=durable,
            hmac_key=hmac_key,
            lease_seconds=lease_seconds,
            packages=packages,
            max_bytes=max_bytes,
            settings=settings,
            blob_options={
                "cache_bytes": cache_bytes,
                "signing": signing,
                "shared": shared,
                "storage_options": storage_options,
            },
        )
    if is_object_url(location) and not str(location).startswith("file://"):
        blobs = _same_blobs(_blob_url(blobs), str(location), "the location")
        location = remote_index_folder(str(location))
    elif isinstance(location, str) and location.startswith("file://"):
        location = location[len("file://") :]
    folder = default_location() if location is None else Path(location).expanduser().absolute()
    remembered = read_marker(folder) or {}
    blobs = _same_blobs(remembered.get("blobs"), _blob_url(blobs), f"the store at {folder}")
    modes = folder_modes(shared if shared is not None else remembered.get("shared"))
    signer = _signer(hmac_key, signing, blobs)  # before anything is created
    sqlite_file, existed = _open_index_file(folder, read_only, durable, modes, settings)
    if not read_only:
        _make_private_folder(folder / BLOB_FOLDER, modes)  # once the index proved incgraph's
    if not read_only and (remembered or not existed or adoptable(folder)):
        mark_folder(folder, blobs=blobs, modes=modes)
    ledger = SqliteLedger(sqlite_file)
    if not read_only:
        _drop_dead_leases(ledger, time.time())
    index = SqliteIndex(sqlite_file, settings=settings)
    if blobs is None:
        blob_store: BlobStore = FileBlobStore(
            folder / BLOB_FOLDER,
            sqlite_file,
            durable=durable,
            signer=signer,
            settings=settings,
            modes=modes,
        )
    else:
        limit = settings.blob_cache_bytes if cache_bytes is None else cache_bytes
        cache = None
        if limit:
            cache = BlobCache(
                folder / CACHE_FOLDER,
                limit,
                mmap_threshold=settings.blob_mmap_threshold_bytes,
                **modes.cache_modes(),
            )
        blob_store = ObjectBlobStore(
            blobs,
            signer=signer,
            cache=cache,
            read_only=read_only,
            storage_options=storage_options,
            file_mode=modes.file,
            settings=settings,
        )
    return Store(
        index,
        blob_store,
        path=folder,
        read_only=read_only,
        ledger=ledger,
        lease_seconds=lease_seconds,
        packages=packages,
        max_bytes=max_bytes,
        settings=settings,
    )


def _open_postgres_store(
    location: str,
    blobs: str | os.PathLike[str] | None,
    *,
    read_only: bool,
    create: bool,
    durable: bool,
    hmac_key: bytes | str | None,
    lease_seconds: float | None,
    packages: Iterable[str],
    max_bytes: int | None,
    settings: Settings,
    blob_options: dict[str, Any],
) -> Store:
    """`open_store` of a PostgreSQL URL: index and ledger there, blobs in a folder store
    (or in object storage: ``blob_options`` are `open_store`'s for it)."""
    url, folder = _blobs_of(location, blobs)
    blob_store = _postgres_blobs(url, folder, read_only, durable, hmac_key, settings, blob_options)
    index, ledger = open_postgres(url, read_only=read_only, create=create)
    files = blob_store.blobs
    assert isinstance(files, (FileBlobStore, ObjectBlobStore))  # what open_store makes
    files.elsewhere = index  # gc asks the index before deleting a blob
    index.blobs_present = files.present  # a save checks its blobs under the lock
    if not read_only:
        _drop_dead_leases(ledger, time.time())
    store = Store(
        index,
        blob_store.blobs,
        path=blob_store.path,
        ledger=ledger,
        read_only=read_only,
        lease_seconds=lease_seconds,
        packages=packages,
        max_bytes=max_bytes,
        settings=settings,
    )
    store.location = _with_blobs(url, folder if is_object_url(folder) else blob_store.path)
    return store


def _blobs_of(
    location: str, blobs: str | os.PathLike[str] | None
) -> tuple[str, str | os.PathLike[str] | None]:
    """The URL without its ``blobs=`` parameter, and the blob folder (argument or parameter)."""
    url, in_url = split_blobs(location)
    if in_url is not None and blobs is not None and Path(in_url) != Path(blobs):
        raise ConfigurationError(
            f"open_store({safe_url(url)!r}): the URL says blobs={in_url} and the blobs "
            f"argument says {blobs}; give the blob folder once"
        )
    return url, blobs if blobs is not None else in_url


def _with_blobs(url: str, folder: str | os.PathLike[str] | None) -> str:
    """``url`` with ``blobs=folder`` added: the one string that reopens the store."""
    from urllib.parse import quote

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}blobs={quote(str(folder))}"


def _postgres_blobs(
    url: str,
    blobs: str | os.PathLike[str] | None,
    read_only: bool,
    durable: bool,
    hmac_key: bytes | str | None,
    settings: Settings,
    options: dict[str, Any],
) -> Store:
    """The folder store whose blob store keeps the results of the PostgreSQL store ``url``
    (for an object-storage URL, the local store of this user's beside that bucket)."""
    if blobs is None:
        raise ConfigurationError(
            f"open_store({safe_url(url)!r}) needs to know where the results' bytes go: "
            "a blob folder or an object-storage URL, as open_store(url, "
            "blobs='/data/incgraph-blobs') or blobs='s3://bucket/prefix', or in the URL, "
            "postgresql://...?blobs=/data/incgraph-blobs"
        )
    return open_store(
        blobs,
        read_only=read_only,
        durable=durable,
        hmac_key=hmac_key,
        settings=settings,
        **options,
    )


def _blob_url(blobs: str | os.PathLike[str] | None) -> str | None:
    """``blobs=`` of a folder store: an object-storage URL (or None)."""
    if blobs is None or is_object_url(blobs):
        return None if blobs is None else str(blobs)
    raise ConfigurationError(
        f"blobs={str(blobs)!r}: a folder store keeps its blobs in its own folder or in "
        "object storage; give an object-storage URL (s3://bucket/prefix, file:///folder) "
        "or leave blobs= out"
    )


def _unwritable_folder_error(folder: Path) -> ReadOnlyStoreError:
    return ReadOnlyStoreError(
        f"cannot open the store at {folder} for writing: the folder cannot be written "
        "(a read-only mount or missing permission); open it with read_only=True to "
        "read it, or make the folder writable"
    )


def _open_index_file(
    folder: Path, read_only: bool, durable: bool, modes: Modes, settings: Settings
) -> tuple[SqliteFile, bool]:
    """The store's SQLite file, opened now (a corrupt or foreign index fails here, naming it),
    and whether it existed before."""
    index_path = folder / INDEX_FILE
    if read_only:
        if not index_path.is_file():
            raise StoreError(
                f"there is no incgraph store at {folder} ({why_no_store(folder)}); "
                "open it once without read_only=True to create it"
            )
    else:
        _make_private_folder(folder, modes)
        if not os.access(folder, os.W_OK):  # a read-only mount: reads would work, saves fail
            raise _unwritable_folder_error(folder)
    existed = index_path.exists()
    sqlite_file = SqliteFile(index_path, read_only=read_only, durable=durable, settings=settings)
    try:
        sqlite_file.connection()
    except StoreError as exc:
        if read_only or isinstance(exc, ReadOnlyStoreError) or folder_is_writable(folder):
            raise
        raise _unwritable_folder_error(folder) from exc
    if not existed and not read_only:
        for name in (INDEX_FILE, f"{INDEX_FILE}-wal", f"{INDEX_FILE}-shm"):
            with suppress(FileNotFoundError):
                modes.apply(folder / name, folder=False)
    return sqlite_file, existed


def _same_blobs(first: object, second: str | None, where: str) -> str | None:
    """The blob URL two sources agree on; `ConfigurationError` when they name different ones."""
    if first is None or not isinstance(first, str):
        return second
    if second is None or second.rstrip("/") == first.rstrip("/"):
        return first
    raise ConfigurationError(
        f"{where} keeps its blobs at {first}, not {second}: open it with blobs={first!r} "
        "(or leave blobs= out), or use another folder for the other bucket"
    )


def _signer(hmac_key: bytes | str | None, signing: bool | None, blobs: str | None) -> Signer | None:
    """The signer of a store: required for blobs in object storage unless ``signing=False``."""
    if signing is False:
        return None
    signer = signer_from_env() if hmac_key is None else Signer(hmac_key)
    if signer is None and (signing or blobs is not None):
        where = f"in {blobs}" if blobs is not None else "of this store"
        raise ConfigurationError(
            f"the blobs {where} must be signed: loading a result unpickles it, so incgraph "
            f"refuses bytes it cannot authenticate. Set {HMAC_ENV_VAR} to a secret shared by "
            "everyone who uses the store (or pass hmac_key=...), or opt out explicitly with "
            "signing=False"
        )
    return signer


def remote_index_folder(url: str) -> Path:
    """The local folder holding the index of the blobs at ``url`` for this user.

    ``$INCGRAPH_INDEX_HOME/<name>`` (default ``~/.cache/incgraph/indexes``), the
    name being the URL made safe for a file name plus a short hash of it.

    Examples
    --------
    >>> remote_index_folder("s3://bucket/runs").name.startswith("s3-bucket-runs-")
    True
    """
    import hashlib

    home = os.environ.get(INDEX_HOME_ENV_VAR) or "~/.cache/incgraph/indexes"
    slug = re.sub(r"[^0-9A-Za-z]+", "-", url.rstrip("/")).strip("-")[:80]
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:12]
    return Path(home).expanduser().absolute() / f"{slug}-{digest}"


def _drop_dead_leases(ledger: Ledger, now: float) -> None:
    """Delete leases that expired or whose owner (a process on this host) has died."""
    dead: dict[str, list[str]] = {}
    verdicts: dict[str, bool] = {}
    expired = False
    for state in ledger.lease_states().values():
        owner = state.owner
        expired = expired or state.expires < now
        if owner not in verdicts:
            verdicts[owner] = owner_is_dead(owner)
        if verdicts[owner]:
            dead.setdefault(owner, []).append(state.key)
    if expired:
        ledger.drop_expired(now)  # checks the expiry again as it deletes
    for owner, keys in dead.items():
        ledger.release(owner, keys)


def folder_is_writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried, as permission bits can mislead root).

    Examples
    --------
    >>> import tempfile
    >>> folder_is_writable(Path(tempfile.mkdtemp()))
    True
    """
    probe = folder / f".incgraph-probe-{uuid.uuid4().hex}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    with suppress(OSError):
        os.unlink(probe)
    return True


_OWN_NAMES = re.compile(
    r"index\.sqlite(-wal|-shm|-journal)?|blobs|cache|quarantine|incgraph-store\.json"
    r"|\.index\.sqlite-[0-9a-f]{32}\.new|\.incgraph-store\.json-[0-9a-f]{32}\.new"
    r"|\.incgraph-probe-[0-9a-f]{32}"
)
_BLOB_SUBFOLDER = re.compile(r"[0-9A-Za-z_\-]{2}")


def adoptable(folder: Path) -> bool:
    """Whether an unmarked folder holding an incgraph index has the layout incgraph makes.

    The rule for stores made before markers existed: the folder holds only
    incgraph's names (the index and its SQLite files, ``blobs/``,
    ``quarantine/``, incgraph's temporary files), and ``blobs/`` only real
    two-character sub-folders. A folder that also holds other files was
    opened as a store among someone else's files: it is left unmarked, so
    maintenance refuses it until the user moves those files out or marks it
    (`mark_folder`).
    """
    return foreign_names(folder) == []


def foreign_names(folder: Path) -> list[str] | None:
    """The entries of ``folder`` (and of its ``blobs/``) that incgraph does not make, sorted;
    None if the folder cannot be listed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "notes.txt").write_text("mine")
    4
    >>> foreign_names(folder)
    ['notes.txt']
    """
    try:
        names = sorted(os.listdir(folder))
        blob_names = sorted(os.listdir(folder / BLOB_FOLDER)) if BLOB_FOLDER in names else []
    except OSError:
        return None
    found = [name for name in names if not _OWN_NAMES.fullmatch(name)]
    return found + [
        f"{BLOB_FOLDER}/{name}"
        for name in blob_names
        if not (_BLOB_SUBFOLDER.fullmatch(name) and is_real_folder(folder / BLOB_FOLDER / name))
    ]


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of the store in ``folder`` (id and schema version), None if it has none.

    A marker that is not a regular file or not incgraph's JSON counts as none.
    """
    try:
        with open(folder / MARKER_FILE, "rb", opener=_no_follow) as handle:
            found = json.loads(handle.read(4096))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("format") != MARKER_FORMAT:
        return None
    return found


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def mark_folder(
    folder: str | os.PathLike[str], *, blobs: str | None = None, modes: Modes | None = None
) -> None:
    """Mark ``folder`` as an incgraph store: write its marker unless it is up to date.

    `open_store` calls it once the index opened writable (the folder then
    holds an incgraph index at the current schema version: a foreign one was
    refused). Call it yourself only for a `Store` assembled by hand in
    a folder of its own. Written atomically; an existing store id is kept.
    The marker also remembers where the store's blobs are (``blobs``, a URL)
    and whether it is group-shared (``modes``), so later opens keep to both.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> mark_folder(folder)
    >>> read_marker(folder)["format"]
    'incgraph store'
    """
    folder = Path(folder)
    modes = modes or folder_modes(None)
    found = read_marker(folder) or {}
    wanted = {"blobs": blobs or found.get("blobs"), "shared": modes.shared or found.get("shared")}
    if found.get("schema") == SCHEMA_VERSION and all(
        found.get(name) == value for name, value in wanted.items()
    ):
        return
    store_id = found.get("id")
    marker = {
        "format": MARKER_FORMAT,
        "id": store_id if isinstance(store_id, str) else uuid.uuid4().hex,
        "schema": SCHEMA_VERSION,
        **{name: value for name, value in wanted.items() if value is not None},
    }
    temporary = folder / f".{MARKER_FILE}-{uuid.uuid4().hex}.new"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if modes.shared is not None:
                os.fchmod(fd, modes.file)
            os.write(fd, (json.dumps(marker) + "\n").encode())
        finally:
            os.close(fd)
        os.replace(temporary, folder / MARKER_FILE)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(temporary)
        raise store_error(exc, folder / MARKER_FILE) from exc


def _make_private_folder(folder: Path, modes: Modes) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise StoreError(f"cannot open a store at {folder}: {why_no_store(folder)}")
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        modes.apply(folder, folder=True)
    except OSError as exc:
        raise store_error(exc, folder) from exc


def why_no_store(folder: Path) -> str:
    """Why ``folder`` holds no store: missing, a file (maybe the index itself), or no index.

    Examples
    --------
    >>> import tempfile
    >>> why_no_store(Path(tempfile.mkdtemp()) / "gone")
    'the folder does not exist'
    """
    if folder.is_file():
        if folder.name == INDEX_FILE:
            return f"it is the store's index file; give the folder holding it, {folder.parent}"
        return "it is a file, not a folder"
    if not folder.exists():
        return "the folder does not exist"
    return f"no {INDEX_FILE} in it"


def _declared_packages(packages: Iterable[str]) -> tuple[str, ...]:
    """``packages`` checked: each an installed package (a clear error otherwise)."""
    if not packages:
        return ()
    names = declared_names(packages, "the store")
    package_versions(names, "the store")
    return tuple(sorted(set(names)))


def memory_store(*, settings: Settings = DEFAULT_SETTINGS) -> Store:
    """A store held in this process's memory (values kept as pickled copies).

    Parameters
    ----------
    settings : Settings
        The tuning of the runs that use this store (`incgraph.settings`).

    Examples
    --------
    >>> store = memory_store()
    >>> store.path is None, store.settings.claim_ahead
    (True, 512)
    """
    checked_settings(settings, "memory_store")
    return Store(MemoryIndex(), MemoryBlobStore(settings=settings), settings=settings)
