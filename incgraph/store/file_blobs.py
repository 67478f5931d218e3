"""The on-disk blob store: small values inline in SQLite, large ones as files.

Design note
-----------
A blob is a row of the ``blobs`` table (data version -> codec, checksum, size)
plus its bytes: in the row's ``data`` column when the pickled value is smaller
than ``inline_limit`` (32 KiB: one SQLite page run, no file to open), otherwise
in the file ``blobs/<dv[:2]>/<dv>.<checksum>.<suffix>``.

Write protocol (joblib's): the bytes go to ``<dv>.<uuid>-<pid>-<tid>.tmp`` in
the final folder, are flushed (and fsynced with ``durable=True``), then
``os.replace``-d onto the final name; only then is the row committed
(``INSERT ... ON CONFLICT DO NOTHING``). Hence:

* a row always names a file that was complete when the row was committed;
* a process killed mid-write leaves at worst a ``.tmp`` file
  (:meth:`FileBlobStore.stale_temp_files`) or a renamed file with no row (an
  orphan), never a row pointing at partial bytes;
* the checksum is part of the file name, so two processes that store the same
  data version with different bytes (pickle is not canonical) never overwrite
  each other's file: the first row wins and the loser deletes its own file.
  Equal bytes give equal names, and ``os.replace`` of identical content is
  harmless.

Every load checks the file's size and its xxh3-64 checksum against the row.
A blob that fails (or whose file is missing, or that cannot be decoded) raises
:class:`~incgraph.errors.StoreCorruptError` and is removed, row first, so it is
never served and the next run recomputes it.

Loads: files of at least ``mmap_threshold`` bytes are mapped copy-on-write
(``mmap.ACCESS_COPY``): an ``npy`` array or a ``pickle5`` buffer is a view of
the mapping, with no copy of its own, and writing to it changes only the
caller's private pages. Smaller files are read into a ``bytearray``.

Durability: without ``durable=True`` nothing is fsynced. A killed process loses
nothing that was renamed or committed (the page cache outlives it); a power
cut may lose the last results, which are then recomputed, because a file
whose bytes did not reach the disk fails its checksum.
"""

from __future__ import annotations

import mmap
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

from incgraph.errors import ReadOnlyStoreError, StoreCorruptError, StoreError
from incgraph.store.codecs import SUFFIXES, Encoded, checksum, decode, encode
from incgraph.store.failure import store_error
from incgraph.store.protocols import BlobEntry
from incgraph.store.signing import Signer
from incgraph.store.sqlite_file import SqliteFile

__all__ = ["INLINE_LIMIT", "MMAP_THRESHOLD", "FileBlobStore"]

INLINE_LIMIT = 32 * 1024
"""Encoded values smaller than this many bytes are kept inside SQLite."""

MMAP_THRESHOLD = 1 << 20
"""Blob files of at least this many bytes are memory-mapped instead of read."""

_WRITE_CHUNK = 1 << 30
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_DATA_VERSION = re.compile(r"[0-9A-Za-z_\-]{2,128}")
_SELECT = "SELECT codec, checksum, size, data, tag FROM blobs WHERE data_version = ?"
_INSERT = (
    "INSERT INTO blobs (data_version, codec, checksum, size, created, data, tag) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (data_version) DO NOTHING"
)


class _Row(NamedTuple):
    """What the ``blobs`` table says about one blob (a tuple: built once per blob written)."""

    data_version: str
    codec: str
    checksum: str
    size: int
    inline: bool
    tag: str | None = None


class _Pending(NamedTuple):
    """A blob whose bytes are written (inline data or a renamed file) but whose row is not."""

    row: _Row
    data: bytes | None
    path: Path | None


def _check_data_version(data_version: str) -> None:
    if not isinstance(data_version, str) or not _DATA_VERSION.fullmatch(data_version):
        raise ValueError(
            f"data version {data_version!r} is not a hash string (2-128 characters of "
            "[0-9A-Za-z_-]); pass the value's data version from incgraph.hashing"
        )


def write_all(fd: int, data: Any) -> None:
    """Write every byte of the bytes-like ``data`` to the file descriptor ``fd``."""
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    written = 0
    while written < len(view):
        written += os.write(fd, view[written : written + _WRITE_CHUNK])


class FileBlobStore:
    """A :class:`~incgraph.store.protocols.BlobStore`: SQLite rows plus files under ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the blob files (created with mode 0700).
    file : SqliteFile or path
        The SQLite database holding the ``blobs`` table (usually shared with the index).
    durable : bool
        fsync every file and its folder before committing its row.
    inline_limit : int
        Encoded values smaller than this are stored in SQLite, not as files.
    mmap_threshold : int
        Files at least this big are loaded through a copy-on-write memory map.
    read_only : bool
        Only used when ``file`` is a path.
    signer : Signer, optional
        Sign every blob written and refuse, on load, blobs whose HMAC tag is
        missing or wrong (:mod:`incgraph.store.signing`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> blobs = FileBlobStore(root / "blobs", root / "index.sqlite")
    >>> blobs.put("00ff" * 8, {"a": [1, 2]}) > 0
    True
    >>> blobs.get("00ff" * 8)
    {'a': [1, 2]}
    >>> blobs.close()
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        file: SqliteFile | str | os.PathLike[str],
        *,
        durable: bool = False,
        inline_limit: int = INLINE_LIMIT,
        mmap_threshold: int = MMAP_THRESHOLD,
        read_only: bool = False,
        signer: Signer | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.signer = signer
        self.file = file if isinstance(file, SqliteFile) else SqliteFile(file, read_only=read_only)
        self.durable = durable
        self.inline_limit = inline_limit
        self.mmap_threshold = mmap_threshold
        self._folders: set[Path] = set()
        self._folders_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.directory)!r})"

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.file.read_only

    # -- reading ------------------------------------------------------------------

    def contains(self, data_version: str) -> bool:
        """Whether a complete blob for ``data_version`` is stored (row and, if any, file)."""
        row = self._row(data_version)
        return row is not None and self._complete(row)

    def get(self, data_version: str) -> Any:
        """Load the value; ``KeyError`` if absent, ``StoreCorruptError`` if it fails its checks."""
        try:
            found = self.file.cursor().execute(_SELECT, (data_version,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if found is None:
            raise KeyError(data_version)
        codec, digest, size, data, tag = found
        row = _Row(data_version, codec, digest, size, data is not None, tag)
        buffer = data if row.inline else self._read_file(row)
        problem = self.problem_with(row, buffer)
        if problem is not None:
            raise self._discard(row, problem)
        try:
            return decode(row.codec, buffer)
        except Exception as exc:
            raise self._discard(row, f"it cannot be decoded ({exc!r})") from exc

    def problem_with(self, row: _Row, buffer: Any) -> str | None:
        """Why the bytes ``buffer`` read for ``row`` must not be served, or None if they may."""
        if checksum([buffer]) != row.checksum:
            return "its bytes do not match their checksum"
        if self.signer is not None and not self.signer.check(
            row.data_version, row.codec, [buffer], row.tag
        ):
            if not row.tag:
                return "it has no HMAC signature (written without $INCGRAPH_HMAC_KEY)"
            return "its HMAC signature does not match (tampered, or signed with another key)"
        return None

    def path_of(self, data_version: str) -> Path | None:
        """The file holding ``data_version``'s bytes, or None if the blob is inline or absent."""
        row = self._row(data_version)
        return None if row is None or row.inline else self._file_path(row)

    def data_versions(self) -> Iterator[str]:
        """Every stored data version, oldest row first."""
        sql = "SELECT rowid, data_version FROM blobs WHERE rowid > ? ORDER BY rowid LIMIT 1000"
        after = -1
        while True:
            try:
                rows = self.file.connection().execute(sql, (after,)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.file.path) from exc
            for _, data_version in rows:
                yield data_version
            if len(rows) < 1000:
                return
            after = rows[-1][0]

    def stale_temp_files(self, older_than: float = 3600.0) -> list[Path]:
        """Temporary files of interrupted writes, last modified more than ``older_than`` s ago.

        A writer killed between creating and renaming its temporary file leaves it
        behind; nothing reads it, and a garbage collector may delete these paths.
        """
        cutoff = time.time() - older_than
        stale = []
        for path in self.directory.glob("*/*.tmp"):
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    stale.append(path)
        return sorted(stale)

    # -- maintenance: listing, checking, quarantining, reclaiming ------------------------

    def entries(self) -> Iterator[BlobEntry]:
        """Every stored blob's size, creation time and place, oldest row first."""
        sql = (
            "SELECT rowid, data_version, codec, checksum, size, created, data IS NULL "
            "FROM blobs WHERE rowid > ? ORDER BY rowid LIMIT 1000"
        )
        after = -1
        while True:
            try:
                rows = self.file.connection().execute(sql, (after,)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.file.path) from exc
            for _, dv, codec, digest, size, created, is_file in rows:
                row = _Row(dv, codec, digest, size, not is_file)
                path = self._file_path(row) if is_file and _DATA_VERSION.fullmatch(dv) else None
                yield BlobEntry(dv, size, created, not is_file, path)
            if len(rows) < 1000:
                return
            after = rows[-1][0]

    def check(self, data_version: str) -> str | None:
        """Why ``data_version``'s blob must not be served (read in full), or None if it is sound.

        Checks the row, the file's presence and size, the checksum and, when
        signing, the HMAC tag. Nothing is decoded and nothing is deleted.
        """
        try:
            found = self.file.connection().execute(_SELECT, (data_version,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if found is None:
            return "it is not stored"
        codec, digest, size, data, tag = found
        row = _Row(data_version, codec, digest, size, data is not None, tag)
        if codec not in SUFFIXES:
            return f"its row names an unknown codec {codec!r}"
        if not _DATA_VERSION.fullmatch(data_version):
            return "its data version is not a hash string"
        if row.inline:
            buffer: Any = data
        else:
            buffer, problem = self._read_bytes(row)
            if problem is not None:
                return problem
        return self.problem_with(row, buffer)

    def quarantine(self, data_version: str, folder: Path | None) -> Path | None:
        """Move a blob's bytes into ``folder`` and drop its row; return where they went.

        The bytes of an inline blob are written to a file there; a blob whose
        file is gone just loses its row (None is returned).
        """
        self._check_writable()
        if folder is None:
            raise ValueError(f"a folder is needed to quarantine blob {data_version}")
        try:
            found = self.file.connection().execute(_SELECT, (data_version,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if found is None:
            return None
        codec, digest, size, data, tag = found
        row = _Row(data_version, codec, digest, size, data is not None, tag)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = folder / f"{data_version}.{digest}.{stamp}.{SUFFIXES.get(codec, 'bin')}"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            moved = self._move_out(row, data, target)
        except OSError as exc:
            raise store_error(exc, folder) from exc
        self._delete_rows([row._replace(inline=True)])  # the row only: the file has moved
        return moved

    def _move_out(self, row: _Row, data: bytes | None, target: Path) -> Path | None:
        if row.inline:
            fd = os.open(target, _CREATE_FLAGS, 0o600)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            return target
        try:
            os.replace(self._file_path(row), target)
        except FileNotFoundError:
            return None
        return target

    def delete_many(self, data_versions: Iterable[str]) -> int:
        """Remove blobs (rows in one transaction, then their files); return how many went."""
        self._check_writable()
        rows = list(self._rows(list(data_versions)).values())
        if rows:
            self._delete_rows(rows)
        return len(rows)

    def orphan_files(self, older_than: float = 3600.0) -> list[Path]:
        """Blob files no row names (a writer killed after its rename), older than ``older_than`` s.

        Temporary files are not listed here (see :meth:`stale_temp_files`).
        """
        wanted = {entry.path for entry in self.entries() if entry.path is not None}
        cutoff = time.time() - older_than
        orphans = []
        for path in self.directory.glob("*/*"):
            if path.suffix == ".tmp" or path in wanted:
                continue
            with suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    orphans.append(path)
        # a row committed while we listed would name its file: list the rows again
        wanted = {entry.path for entry in self.entries() if entry.path is not None}
        return sorted(path for path in orphans if path not in wanted)

    def _row(self, data_version: str) -> _Row | None:
        sql = "SELECT codec, checksum, size, data IS NULL, tag FROM blobs WHERE data_version = ?"
        try:
            found = self.file.cursor().execute(sql, (data_version,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if found is None:
            return None
        codec, digest, size, is_file, tag = found
        return _Row(data_version, codec, digest, size, not is_file, tag)

    def _complete(self, row: _Row) -> bool:
        return row.inline or self._file_path(row).exists()

    def _file_path(self, row: _Row) -> Path:
        _check_data_version(row.data_version)
        name = f"{row.data_version}.{row.checksum}.{SUFFIXES.get(row.codec, 'bin')}"
        return self.directory / row.data_version[:2] / name

    def _read_file(self, row: _Row) -> Any:
        buffer, problem = self._read_bytes(row)
        if problem is not None:
            raise self._discard(row, problem)
        return buffer

    def _read_bytes(self, row: _Row) -> tuple[Any, str | None]:
        """The file's bytes (mapped when big), or None and why they cannot be read."""
        path = self._file_path(row)
        buffer: Any = None
        try:
            with open(path, "rb", buffering=0) as handle:
                actual = os.fstat(handle.fileno()).st_size
                if actual != row.size:
                    return None, f"its file holds {actual} bytes, not {row.size}"
                if row.size >= self.mmap_threshold and row.size > 0:
                    buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
                else:
                    buffer = bytearray(row.size)
                    handle.readinto(buffer)
        except FileNotFoundError:
            return None, "its file is missing"
        except OSError as exc:
            raise store_error(exc, path) from exc
        return buffer, None

    def _discard(self, row: _Row, reason: str) -> StoreCorruptError:
        """Remove a blob that failed a check (unless read-only); return the error to raise."""
        where = f"inline in {self.file.path}" if row.inline else str(self._file_path(row))
        if self.read_only:
            action = "it is not served; open the store writable to drop it"
        else:
            with suppress(StoreError):
                self._delete_rows([row])
            action = "it was removed and will be recomputed"
        return StoreCorruptError(
            f"blob {row.data_version} ({where}) is corrupt: {reason}; {action}"
        )

    # -- writing ------------------------------------------------------------------

    def put(self, data_version: str, value: Any) -> int:
        """Store ``value`` under ``data_version`` (a no-op if present); return its size in bytes."""
        return self.put_many([(data_version, value)])[0]

    def put_many(
        self,
        items: Iterable[tuple[str, Any]],
        *,
        also: Callable[[sqlite3.Connection, list[int]], None] | None = None,
    ) -> list[int]:
        """Store many values: their files first, then all their rows in one transaction.

        Returns the stored size of each item, in order. Data versions already
        present (or repeated in ``items``) are not written again.

        ``also(conn, sizes)``, when given, runs inside that same transaction
        after the blob rows are in (``sizes`` as returned), so the caller's own
        rows in this file (the index's) commit atomically with the blobs they
        name. It may run more than once (a busy database is retried).
        """
        self._check_writable()
        items = list(items)
        for data_version, _ in items:
            _check_data_version(data_version)
        stored = self._rows([dv for dv, _ in items])
        sizes: dict[str, int] = {}
        pending: dict[str, _Pending] = {}
        for data_version, value in items:
            if data_version in sizes or data_version in pending:
                continue
            row = stored.get(data_version)
            if row is not None and self._complete(row) and (self.signer is None or row.tag):
                sizes[data_version] = row.size
            else:
                pending[data_version] = self._write(data_version, value)
        if not pending and also is None:
            return [sizes[dv] for dv, _ in items]

        def commit(conn: sqlite3.Connection) -> tuple[dict[str, _Row], list[int]]:
            winners = self._insert(conn, list(pending.values()), stored) if pending else {}
            in_order = [winners[dv].size if dv in winners else sizes[dv] for dv, _ in items]
            if also is not None:
                also(conn, in_order)
            return winners, in_order

        winners, in_order = self.file.write(commit)
        for data_version, winner in winners.items():
            self._drop_losing_file(pending[data_version], winner)
        return in_order

    def delete(self, data_version: str) -> None:
        """Remove the blob (row first, then its file); absent blobs are ignored."""
        self._check_writable()
        row = self._row(data_version)
        if row is not None:
            self._delete_rows([row])

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"the blob store {self.directory} was opened read-only; "
                "open the store with read_only=False to save or delete results"
            )

    def _rows(self, data_versions: list[str]) -> dict[str, _Row]:
        """The stored rows of ``data_versions`` (absent ones left out), by chunked IN queries."""
        try:
            return _select_rows(self.file.connection(), data_versions)
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def _write(self, data_version: str, value: Any) -> _Pending:
        encoded = encode(value, inline_limit=self.inline_limit)
        signer = self.signer
        row = _Row(
            data_version,
            encoded.codec,
            encoded.checksum(),
            encoded.size,
            encoded.codec == "pickle" and encoded.size < self.inline_limit,
            None if signer is None else signer.tag(data_version, encoded.codec, encoded.parts),
        )
        if row.inline:
            return _Pending(row, encoded.join(), None)
        path = self._file_path(row)
        self._write_file(path, encoded)
        return _Pending(row, None, path)

    def _write_file(self, path: Path, encoded: Encoded) -> None:
        folder = path.parent
        self._make_folder(folder)
        name = path.name.split(".")[0]
        temp = folder / f"{name}.{uuid.uuid4().hex}-{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            fd = os.open(temp, _CREATE_FLAGS, 0o600)
            try:
                for part in encoded.parts:
                    write_all(fd, part)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            if self.durable:
                _fsync_folder(folder)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise store_error(exc, path) from exc
            raise

    def _make_folder(self, folder: Path) -> None:
        if folder in self._folders:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise store_error(exc, folder) from exc
        with self._folders_lock:
            self._folders.add(folder)

    def _insert(
        self, conn: sqlite3.Connection, pending: list[_Pending], stored: dict[str, _Row]
    ) -> dict[str, _Row]:
        """Commit the rows of ``pending``; return the row that holds each data version now.

        Runs inside the write transaction, so the rows read here are the truth:
        a data version another writer committed since ``stored`` was read keeps
        that writer's row (we lost the race), every other one gets ours. One
        ``executemany`` for any number of blobs (after dropping stale rows whose
        file went missing); the rows are read back only when some insert did
        nothing, which the connection's change count tells.
        """
        stale = [
            (row.data_version, row.checksum)
            for item in pending
            if (row := stored.get(item.row.data_version)) is not None
        ]
        if stale:
            conn.executemany("DELETE FROM blobs WHERE data_version = ? AND checksum = ?", stale)
        now = time.time()
        before = conn.total_changes  # after the deletes: counts only our inserts
        conn.executemany(
            _INSERT,
            [
                (r.data_version, r.codec, r.checksum, r.size, now, item.data, r.tag)
                for item in pending
                for r in (item.row,)
            ],
        )
        winners = {item.row.data_version: item.row for item in pending}
        if conn.total_changes - before < len(pending):  # some insert did nothing: theirs won
            found = _select_rows(conn, list(winners))
            winners.update(found)  # ours where we inserted (equal rows), theirs where we lost
        return winners

    def _drop_losing_file(self, pending: _Pending, winner: _Row) -> None:
        """Delete the file we wrote if another writer's row (with other bytes) won."""
        if pending.path is not None and (winner.inline or self._file_path(winner) != pending.path):
            with suppress(OSError):
                os.unlink(pending.path)

    def _delete_rows(self, rows: list[_Row]) -> None:
        """Delete rows (only if unchanged), then, after the commit, their files."""

        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM blobs WHERE data_version = ? AND checksum = ?",
                [(row.data_version, row.checksum) for row in rows],
            )

        self.file.write(delete)
        for row in rows:
            if not row.inline:
                with suppress(FileNotFoundError):
                    os.unlink(self._file_path(row))

    def close(self) -> None:
        """Close this process's SQLite connections; using the store again reopens them."""
        self.file.close()


def _select_rows(conn: sqlite3.Connection, data_versions: list[str]) -> dict[str, _Row]:
    """The rows of ``data_versions`` present in ``conn``'s ``blobs`` table, 500 per query."""
    unique = list(dict.fromkeys(data_versions))
    rows = {}
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        sql = (
            "SELECT data_version, codec, checksum, size, data IS NULL, tag FROM blobs "
            f"WHERE data_version IN ({','.join('?' * len(chunk))})"
        )
        for dv, codec, digest, size, is_file, tag in conn.execute(sql, chunk):
            rows[dv] = _Row(dv, codec, digest, size, not is_file, tag)
    return rows


def _fsync_folder(folder: Path) -> None:
    """fsync a folder so a rename inside it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
