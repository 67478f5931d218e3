"""The on-disk blob store: small values inline in SQLite, large ones as files.

Design note
-----------
A blob is a row of the ``blobs`` table (data version -> codec, checksum, size)
plus its bytes: in the row's ``data`` column when the pickled value is smaller
than the ``blob_inline_limit_bytes`` setting (32 KiB: one SQLite page run, no
file to open), otherwise
in the file ``blobs/<dv[:2]>/<dv>.<checksum>.<suffix>``.

A caller that writes its own rows in the same transaction (the store's
``save_many``, through ``put_many(..., also=..., row_limit=...)``) may take the
bytes of a small value to keep them in its rows instead: such a value gets no
blob row at all (schema version 3, `incgraph.store.sqlite_index`).

Write protocol (joblib's): the bytes go to ``<dv>.<uuid>-<host>-<pid>-<tid>.tmp``
in the final folder, are flushed (and fsynced with ``durable=True``), then,
inside the write transaction that commits their row, ``os.replace``-d onto
the final name (``INSERT ... ON CONFLICT DO NOTHING``). A collector holding
the write lock therefore never sees a renamed file whose row is about to be
committed, and it keeps the temporary files of writers that still run
(`incgraph.store.names`). Hence:

* a row always names a file that was complete when the row was committed;
* a process killed mid-write leaves at worst a ``.tmp`` file
  (`FileBlobStore.stale_temp_files`) or a renamed file with no row (an
  orphan), never a row pointing at partial bytes;
* the checksum is part of the file name, so two processes that store the same
  data version with different bytes (pickle is not canonical) never overwrite
  each other's file: the first row wins and the loser deletes its own file.
  Equal bytes give equal names, and ``os.replace`` of identical content is
  harmless.

Saving many small values (the hot path: a ForEach saves one per task) reads
nothing first: their rows go in with ``ON CONFLICT DO NOTHING``, and the
connection's change count tells whether some insert did nothing (an existing
blob, a lost race, or a file row whose file vanished, which the inline row then
replaces); only then are those rows read back, inside the transaction. A batch
that finds 1 in 8 of its blobs stored already (results saved again, after an
early cutoff) makes the next batch look its data versions up first, as failed
inserts then cost more than a look-up; a batch that finds fewer turns that off.
Values that may be files (``bytes``, arrays, and any value whose encoding came
out large) are looked up before their files are written, so an existing file
is not written again; a signed store looks every data version up, so an
unsigned row is rewritten signed. Measured with
``benchmarks/store_save_instructions.py``: 132k -> 84k CPU instructions per
small result saved, together with the cheaper encode and Record.

Every load checks the file's size and its xxh3-64 checksum against the row.
A blob that fails (or whose file is missing, or that cannot be decoded) raises
`StoreCorruptError` and is removed, row first, so it is
never served and the next run recomputes it.

Loads: files of at least ``blob_mmap_threshold_bytes`` are mapped copy-on-write
(``mmap.ACCESS_COPY``): an ``npy`` array or a ``pickle5`` buffer is a view of
the mapping, with no copy of its own, and writing to it changes only the
caller's private pages. Smaller files are read into a ``bytearray``.

Durability: without ``durable=True`` nothing is fsynced. A killed process loses
nothing that was renamed or committed (the page cache outlives it); a power
cut may lose the last results, which are then recomputed, because a file
whose bytes did not reach the disk fails its checksum.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

from incgraph.errors import (
    ExtraNotInstalledError,
    ReadOnlyStoreError,
    StoreCorruptError,
    StoreError,
)
from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.codecs import (
    Captured,
    Encoded,
    checksum,
    checksum_of,
    decode,
    encode_small,
)
from incgraph.store.diskio import fsync_folder, write_all
from incgraph.store.failure import store_error
from incgraph.store.names import (
    BadName,
    blob_file_name,
    is_blob_file,
    is_real_folder,
    make_real_folder,
    open_file,
    open_folder,
    parse_temp_file,
    temp_file_is_live,
    temp_file_name,
)
from incgraph.store.permissions import Modes, folder_modes
from incgraph.store.protocols import BlobEntry
from incgraph.store.signing import Signer
from incgraph.store.sqlite_file import SqliteFile

T = TypeVar("T")

__all__ = ["FileBlobStore"]

Also = Callable[[sqlite3.Connection, list[int], Mapping[str, tuple[str, bytearray]]], None]
"""What `FileBlobStore.put_many` calls inside its transaction: (conn, sizes, row bytes)."""

_FOLDER_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_DATA_VERSION = re.compile(r"[0-9A-Za-z_\-]{2,128}")
_DATA_VERSION_LINES = re.compile(r"[0-9A-Za-z_\-]{2,128}(?:\n[0-9A-Za-z_\-]{2,128})*")
_SELECT = "SELECT codec, checksum, size, data, tag FROM blobs WHERE data_version = ?"
_INSERT = (
    "INSERT INTO blobs (data_version, codec, checksum, size, created, data, tag) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (data_version) DO NOTHING"
)
# An inline blob is always a pickle; an unsigned one's tag is left to its default (NULL):
# binding None (like bytes) costs sqlite3 an adapter look-up per row.
_INSERT_INLINE = (
    "INSERT INTO blobs (data_version, codec, checksum, size, created, data) "
    "VALUES (?, 'pickle', ?, ?, ?, ?) ON CONFLICT (data_version) DO NOTHING"
)
_INSERT_INLINE_SIGNED = (
    "INSERT INTO blobs (data_version, codec, checksum, size, created, data, tag) "
    "VALUES (?, 'pickle', ?, ?, ?, ?, ?) ON CONFLICT (data_version) DO NOTHING"
)
_DELETE = "DELETE FROM blobs WHERE data_version = ? AND checksum = ?"
_DELETE_UNREFERENCED = (
    "DELETE FROM blobs WHERE data_version = ? AND checksum = ? "
    "AND NOT EXISTS (SELECT 1 FROM results WHERE data_version = ?) "
    "AND NOT EXISTS (SELECT 1 FROM refs JOIN results ON results.data_version = "
    "refs.data_version WHERE refs.ref = ?)"
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
    """A blob file written under its temporary name, renamed into place with its row."""

    row: _Row
    path: Path
    temp: Path


class _Vanished(Exception):
    """A blob found stored before the transaction was deleted meanwhile (by a collector)."""


class _Batch:
    """What `FileBlobStore.put_many` staged before its transaction.

    Inline rows are plain tuples ``(data_version, checksum, size, data)``: the
    hot path of a save makes no other object per small value.
    """

    __slots__ = (
        "existing",
        "files",
        "found",
        "inline",
        "missed",
        "row_limit",
        "rows",
        "sizes",
        "stale",
        "stored",
        "tags",
    )

    def __init__(self, signed: bool, row_limit: int = -1) -> None:
        self.existing = 0  # data versions whose look-up found a complete blob
        self.found: list[str] = []  # those data versions: checked again inside the transaction
        self.missed = 0  # our inserts that did nothing: the blob was there already
        self.sizes: dict[str, int] = {}  # every data version staged -> its blob's size
        self.inline: list[tuple[str, str, int, bytearray]] = []  # our new inline rows
        self.tags: list[str] | None = [] if signed else None  # their HMAC tags, when signing
        self.files: dict[str, _Pending] = {}  # our new blob files, already in place
        self.stored: dict[str, _Row] = {}  # the rows looked up before the transaction
        self.stale: list[tuple[str, str]] = []  # (data version, checksum) of rows to replace
        self.row_limit = row_limit  # values encoding to at most this many bytes get no blob row
        self.rows: dict[str, tuple[str, bytearray]] = {}  # theirs: dv -> (checksum, bytes)

    def looks_stored(self) -> bool:
        """Whether at least 1 in 8 of these blobs was stored already: then the next batch
        had better look its data versions up before encoding (see ``_look_up_first``)."""
        return bool(self.sizes) and (self.existing + self.missed) * 8 >= len(self.sizes)


def _check_data_version(data_version: str) -> None:
    if not isinstance(data_version, str) or not _DATA_VERSION.fullmatch(data_version):
        raise ValueError(
            f"data version {data_version!r} is not a hash string (2-128 characters of "
            "[0-9A-Za-z_-]); pass the value's data version from incgraph.hashing"
        )


def _check_data_versions(data_versions: list[str]) -> None:
    """`_check_data_version` of each, in one regex pass over them all (a third of the cost).

    Joined by newlines, which no data version may hold (the count of newlines
    proves none did), every line must be a data version.
    """
    try:
        lines = "\n".join(data_versions)
    except TypeError:  # not all str: the one-by-one check names the culprit
        lines = ""
    if lines.count("\n") != len(data_versions) - 1 or not _DATA_VERSION_LINES.fullmatch(lines):
        for data_version in data_versions:
            _check_data_version(data_version)


class ResultsElsewhere(Protocol):
    """An index in another database than the blobs' rows (`incgraph.store.postgres_index`)."""

    def names(self, data_versions: list[str]) -> set[str]:
        """Which of ``data_versions`` a stored result names or references now."""
        ...

    def hold(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` while no result can be committed to the index."""
        ...


class FileBlobStore:
    """A `BlobStore`: SQLite rows plus files under ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the blob files (created with mode 0700).
    file : SqliteFile or path
        The SQLite database holding the ``blobs`` table (usually shared with the index).
    durable : bool
        fsync every file and its folder before committing its row.
    read_only : bool
        Only used when ``file`` is a path.
    signer : Signer, optional
        Sign every blob written and refuse, on load, blobs whose HMAC tag is
        missing or wrong (`incgraph.store.signing`).
    settings : Settings
        ``blob_inline_limit_bytes`` (smaller encoded values stay in SQLite, not
        in files), ``blob_mmap_threshold_bytes`` (files at least this big are
        loaded through a copy-on-write memory map) and
        ``temp_file_max_age_seconds`` (`incgraph.settings`).
    modes : Modes, optional
        Permissions of new folders and files (`incgraph.store.permissions`);
        private (0700 / 0600) by default.

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
        read_only: bool = False,
        signer: Signer | None = None,
        settings: Settings = DEFAULT_SETTINGS,
        modes: Modes | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.modes = modes or folder_modes(None)
        self.signer = signer
        self.file = (
            file
            if isinstance(file, SqliteFile)
            else SqliteFile(file, read_only=read_only, settings=settings)
        )
        self.durable = durable
        self.settings = settings
        self.inline_limit = settings.blob_inline_limit_bytes
        self.mmap_threshold = settings.blob_mmap_threshold_bytes
        self._folders: set[Path] = set()
        self._folders_lock = threading.Lock()
        # Whether the next put_many looks every data version up before encoding: when
        # the last one found many of its blobs stored already (results saved again,
        # e.g. after an early cutoff), a look-up is cheaper than failed inserts.
        self._look_up_first = False
        self.elsewhere: ResultsElsewhere | None = None
        """The index of results kept in another database (PostgreSQL), which garbage
        collection must ask before deleting a blob; None when they live in ``file``."""

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.directory)!r})"

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.file.read_only

    @property
    def signed(self) -> bool:
        """Whether blobs carry an HMAC signature (this store was given a signer)."""
        return self.signer is not None

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
        except ExtraNotInstalledError:  # the bytes are sound: this Python lacks a library
            raise
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
        return None if row is None or row.inline else self._path_or_none(row)

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
        Only names incgraph makes are listed, and never the file of a writer that
        still runs on this host, however old; a file whose writer cannot be
        checked (another host) must also be older than the
        ``temp_file_max_age_seconds`` setting (an hour by default).
        """
        now = time.time()
        stale = []
        for path, stats in self._own_files():
            temp = parse_temp_file(path.name, path.parent.name)
            if temp is None or stats.st_mtime >= now - older_than:
                continue
            live = temp_file_is_live(temp)
            unknown_until = now - self.settings.temp_file_max_age_seconds
            if live is False or (live is None and stats.st_mtime < unknown_until):
                stale.append(path)
        return sorted(stale)

    def _own_files(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Regular files in the real (not symlinked) two-letter sub-folders of the blob folder."""
        if not is_real_folder(self.directory):
            return
        try:
            folders = sorted(os.scandir(self.directory), key=lambda entry: entry.name)
        except FileNotFoundError:
            return
        for folder in folders:
            if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                continue
            with suppress(FileNotFoundError, NotADirectoryError):
                for entry in os.scandir(folder.path):
                    with suppress(FileNotFoundError):
                        stats = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(stats.st_mode):
                            yield Path(entry.path), stats

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
                path = None
                if is_file:
                    with suppress(BadName):
                        path = self._file_path(_Row(dv, codec, digest, size, False))
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
        try:
            blob_file_name(data_version, digest, codec)
        except BadName as exc:
            return str(exc)
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
        try:
            name = blob_file_name(data_version, digest, codec)
        except BadName:  # a crafted row: no file of ours to move, drop the row only
            self._delete_rows([row._replace(inline=True)])
            return None
        target = folder / f"{name}.{stamp}"
        try:
            make_real_folder(folder)
            moved = self._move_out(row, data, target)
        except OSError as exc:
            raise store_error(exc, folder) from exc
        self._delete_rows([row._replace(inline=True)])  # the row only: the file has moved
        return moved

    def _move_out(self, row: _Row, data: bytes | None, target: Path) -> Path | None:
        if row.inline:
            fd = os.open(target, _CREATE_FLAGS | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            return target
        try:
            with self._folder_of(row) as (folder_fd, name):
                os.replace(name, target, src_dir_fd=folder_fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return target

    def delete_many(self, data_versions: Iterable[str], *, unreferenced: bool = False) -> int:
        """Remove blobs (rows and files in one transaction); return how many went.

        ``unreferenced=True`` (garbage collection) removes only blobs that no
        result names or references when the transaction runs. When the results
        live in another database (`elsewhere`: a PostgreSQL index), that
        database is asked too, holding its lock so that no result naming one of
        them commits until the deletion has.
        """
        self._check_writable()
        rows = list(self._rows(list(data_versions)).values())
        if not rows:
            return 0
        elsewhere = self.elsewhere
        if not unreferenced or elsewhere is None:
            return len(self._delete_rows(rows, unreferenced=unreferenced))

        def delete_unnamed() -> int:
            named = elsewhere.names([row.data_version for row in rows])
            free = [row for row in rows if row.data_version not in named]
            return len(self._delete_rows(free, unreferenced=True)) if free else 0

        return elsewhere.hold(delete_unnamed)

    def present(self, data_versions: Iterable[str]) -> set[str]:
        """Which of ``data_versions`` have a blob row (one query per chunk)."""
        return set(self._rows(list(dict.fromkeys(data_versions))))

    def orphan_files(self, older_than: float = 3600.0) -> list[Path]:
        """Blob files no row names (a writer killed after its rename), older than ``older_than`` s.

        Temporary files are not listed here (see `stale_temp_files`), and
        neither is any file whose name incgraph would not give a blob (a user's
        own files), nor anything behind a symlink. A file is listed only if no
        row names it once the write lock is held (`unnamed_files`): a file
        is renamed into place inside the transaction that commits its row.
        """
        cutoff = time.time() - older_than
        candidates = [
            path
            for path, stats in self._own_files()
            if is_blob_file(path.name, path.parent.name) and stats.st_mtime < cutoff
        ]
        if not candidates or self.read_only:
            return self._unnamed(self.file.connection(), candidates)
        return self.file.write(lambda conn: self._unnamed(conn, candidates))

    def _unnamed(self, conn: sqlite3.Connection, paths: list[Path]) -> list[Path]:
        """The ``paths`` no row of ``conn``'s ``blobs`` table names."""
        named = {
            path
            for row in _select_rows(conn, [path.name.split(".")[0] for path in paths]).values()
            if not row.inline
            for path in [self._path_or_none(row)]
            if path is not None
        }
        return sorted(path for path in paths if path not in named)

    def _path_or_none(self, row: _Row) -> Path | None:
        try:
            return self._file_path(row)
        except BadName:
            return None

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
        if row.inline:
            return True
        path = self._path_or_none(row)
        return path is not None and os.path.isfile(path) and not os.path.islink(path)

    def _file_path(self, row: _Row) -> Path:
        """Where ``row``'s bytes live; `BadName` for a row no file of ours can match."""
        name = blob_file_name(row.data_version, row.checksum, row.codec)
        return self.directory / row.data_version[:2] / name

    @contextmanager
    def _folder_of(self, row: _Row) -> Iterator[tuple[int, str]]:
        """A descriptor of ``row``'s sub-folder and its file's name, through no symlink."""
        name = blob_file_name(row.data_version, row.checksum, row.codec)
        with open_folder(self.directory) as top:
            fd = os.open(row.data_version[:2], _FOLDER_FLAGS, dir_fd=top)
            try:
                yield fd, name
            finally:
                os.close(fd)

    def _read_file(self, row: _Row) -> Any:
        buffer, problem = self._read_bytes(row)
        if problem is not None:
            raise self._discard(row, problem)
        return buffer

    def _read_bytes(self, row: _Row) -> tuple[Any, str | None]:
        """The file's bytes (mapped when big), or None and why they cannot be read."""
        try:
            path = self._file_path(row)
        except BadName as exc:
            return None, str(exc)
        buffer: Any = None
        try:
            with self._folder_of(row) as (folder_fd, name):
                fd = open_file(folder_fd, name)
            with open(fd, "rb", buffering=0) as handle:
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
        except (NotADirectoryError, IsADirectoryError) as exc:
            return None, f"its file is not a regular file in the store ({exc})"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, "its file or folder is a symlink, which incgraph never follows"
            raise store_error(exc, path) from exc
        return buffer, None

    def _discard(self, row: _Row, reason: str) -> StoreCorruptError:
        """Remove a blob that failed a check (unless read-only); return the error to raise."""
        where = f"inline in {self.file.path}"
        if not row.inline:
            path = self._path_or_none(row)
            where = "its row names no valid file" if path is None else str(path)
        if self.read_only:
            action = (
                "it is not served; run `incgraph verify` (or open the store writable) "
                "to drop it, so it is recomputed"
            )
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
        also: Also | None = None,
        row_limit: int = -1,
    ) -> list[int]:
        """Store many values: their files first, then all their rows in one transaction.

        Returns the stored size of each item, in order. Data versions already
        present (or repeated in ``items``) are not written again.

        ``also(conn, sizes, rows)``, when given, runs inside that same
        transaction after the blob rows are in (``sizes`` as returned), so the
        caller's own rows in this file (the index's) commit atomically with the
        blobs they name. It may run more than once (a busy database is retried).

        ``row_limit`` (only with ``also``, and only without a signer): a value
        whose pickle is at most this many bytes gets no blob row; ``rows`` maps
        its data version to ``(checksum, bytes)``, which ``also`` must write
        into every row it commits for that data version (the store's results
        rows, schema version 3). A stored complete blob found by a look-up is
        used instead, as always.
        """
        self._check_writable()
        items = list(items)
        if items:
            _check_data_versions([dv for dv, _ in items])
        if also is None or self.signer is not None:
            row_limit = -1
        for _ in range(3):
            batch = self._stage(items, row_limit)
            try:
                return self._commit(batch, items, also)
            except _Vanished:
                self._look_up_first = True  # stage again, looking every blob up
            finally:
                self._drop_temp_files(batch)
        raise StoreError(
            f"blobs of {self.directory} kept vanishing while being saved; "
            "is a garbage collection with --grace 0 running in a loop?"
        )

    def _commit(self, batch: _Batch, items: list[tuple[str, Any]], also: Also | None) -> list[int]:
        """The transaction of `put_many`: rename files into place, insert rows, ``also``."""
        if not batch.inline and not batch.files and not batch.found and also is None:
            self._look_up_first = batch.looks_stored()
            return [batch.sizes[dv] for dv, _ in items]

        def commit(conn: sqlite3.Connection) -> tuple[dict[str, _Row], list[int]]:
            if batch.found and len(_select_rows(conn, batch.found)) < len(set(batch.found)):
                raise _Vanished
            self._rename_into_place(batch)
            theirs = self._insert(conn, batch)
            sizes = batch.sizes
            if theirs:  # a copy: a retried transaction starts from the staged sizes again
                sizes = {**sizes, **{dv: row.size for dv, row in theirs.items()}}
            in_order = [sizes[dv] for dv, _ in items]
            if also is not None:
                also(conn, in_order, batch.rows)
            return theirs, in_order

        theirs, in_order = self.file.write(commit)
        self._look_up_first = batch.looks_stored()
        for data_version, winner in theirs.items():
            pending = batch.files.get(data_version)
            if pending is not None:
                self._drop_losing_file(pending, winner)
        return in_order

    def _rename_into_place(self, batch: _Batch) -> None:
        """Give the batch's files their final names (inside the transaction; idempotent)."""
        folders = set()
        for pending in batch.files.values():
            try:
                os.replace(pending.temp, pending.path)
            except FileNotFoundError:
                if not os.path.exists(pending.path):  # renamed by an earlier attempt otherwise
                    raise
            except OSError as exc:
                raise store_error(exc, pending.path) from exc
            folders.add(pending.path.parent)
        if self.durable:
            for folder in folders:
                fsync_folder(folder)

    @staticmethod
    def _drop_temp_files(batch: _Batch) -> None:
        """Remove temporary files a failed transaction left unrenamed."""
        for pending in batch.files.values():
            with suppress(OSError):
                os.unlink(pending.temp)

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

    def _stage(self, items: list[tuple[str, Any]], row_limit: int = -1) -> _Batch:
        """Encode ``items`` and write their files: everything `put_many` does before its
        transaction.

        Without a signer, a value that is neither ``bytes`` nor an array is
        encoded at once and, when small, becomes an inline row with no look-up:
        the insert does nothing where a row exists, and `_insert` reads
        back only then. The others (and every value when the last batch met many
        stored blobs, or with a signer, so that an unsigned row is rewritten
        signed) are looked up first, and a stored, complete blob is not written
        again. A large value that is neither bytes
        nor an array (a frame, a long list) was encoded before its look-up, for
        nothing if it is stored already. A small value whose bytes fit
        ``row_limit`` goes to ``batch.rows`` instead of an inline row (see
        `put_many`). A `~incgraph.store.codecs.Captured` value is not encoded
        again: its bytes are stored as they were taken.
        """
        batch = _Batch(self.signer is not None, row_limit)
        sizes, inline, rows, limit = batch.sizes, batch.inline, batch.rows, self.inline_limit
        look_up_all = self.signer is not None or self._look_up_first
        # value, and its encoding if made
        looked_up: dict[str, tuple[Any, bytes | Encoded | None]] = {}
        for data_version, value in items:
            if data_version in sizes or data_version in looked_up:
                continue
            cls = type(value)
            if cls is Captured:  # encoded when it was computed: its bytes, as they are
                found = value.encoded_for(limit)
                if look_up_all or value.maybe_file or type(found) is not bytes:
                    looked_up[data_version] = (value, found)
                    continue
            elif look_up_all or cls is bytes or cls.__name__ == "ndarray":
                looked_up[data_version] = (value, None)  # maybe a file: look it up first
                continue
            else:
                found = encode_small(value, inline_limit=limit)
            if type(found) is bytes:
                size = len(found)
                # a bytearray binds straight to a BLOB; bytes go through sqlite3's adapters
                if size <= row_limit:
                    rows[data_version] = (checksum_of(found), bytearray(found))
                else:
                    inline.append((data_version, checksum_of(found), size, bytearray(found)))
                sizes[data_version] = size
            else:
                looked_up[data_version] = (value, found)
        if looked_up:
            batch.stored = self._rows(list(looked_up))
            for data_version, (value, encoded) in looked_up.items():
                self._stage_looked_up(batch, data_version, value, encoded)
        return batch

    def _stage_looked_up(
        self, batch: _Batch, data_version: str, value: Any, encoded: bytes | Encoded | None
    ) -> None:
        """Stage a value whose stored row (if any) is known: keep a complete (signed) blob,
        else encode it (unless done) as an inline row, row bytes (a small value that is
        neither bytes nor an array, see `put_many`) or a file written now."""
        row = batch.stored.get(data_version)
        if row is not None and self._complete(row) and (self.signer is None or row.tag):
            batch.sizes[data_version] = row.size
            batch.existing += 1
            batch.found.append(data_version)
            return
        found = encode_small(value, inline_limit=self.inline_limit) if encoded is None else encoded
        if type(found) is not bytes:
            self._stage_file(batch, data_version, found, row)  # type: ignore[arg-type]
            return
        if row is not None:
            batch.stale.append((row.data_version, row.checksum))
        size = len(found)
        batch.sizes[data_version] = size
        cls = type(value)
        if cls is Captured:
            maybe_file = value.maybe_file
        else:
            maybe_file = cls is bytes or cls.__name__ == "ndarray"
        if size <= batch.row_limit and not maybe_file:
            batch.rows[data_version] = (checksum_of(found), bytearray(found))
            return
        batch.inline.append((data_version, checksum_of(found), size, bytearray(found)))
        if batch.tags is not None:
            assert self.signer is not None
            batch.tags.append(self.signer.tag(data_version, "pickle", [found]))

    def _stage_file(
        self, batch: _Batch, data_version: str, encoded: Encoded, row: _Row | None
    ) -> None:
        """Write ``encoded`` to its file now; its row (replacing ``row``) waits for the commit."""
        signer = self.signer
        ours = _Row(
            data_version,
            encoded.codec,
            encoded.checksum(),
            encoded.size,
            False,
            None if signer is None else signer.tag(data_version, encoded.codec, encoded.parts),
        )
        path = self._file_path(ours)
        temp = self._write_file(path, encoded)
        if row is not None:
            batch.stale.append((row.data_version, row.checksum))
        batch.files[data_version] = _Pending(ours, path, temp)
        batch.sizes[data_version] = ours.size

    def _write_file(self, path: Path, encoded: Encoded) -> Path:
        """Write ``encoded`` to a temporary file beside ``path``; return its name."""
        folder = path.parent
        self._make_folder(folder)
        temp = folder / temp_file_name(path.name.split(".")[0])
        try:
            fd = os.open(temp, _CREATE_FLAGS, self.modes.file)
            try:
                if self.modes.shared is not None:
                    os.fchmod(fd, self.modes.file)
                for part in encoded.parts:
                    write_all(fd, part)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise store_error(exc, path) from exc
            raise
        return temp

    def _make_folder(self, folder: Path) -> None:
        if folder in self._folders:
            return
        try:
            for made in (self.directory, folder):
                if not made.is_dir():
                    made.mkdir(mode=0o700, parents=True, exist_ok=True)
                    self.modes.apply(made, folder=True)
        except OSError as exc:
            raise store_error(exc, folder) from exc
        for made in (self.directory, folder):
            if not is_real_folder(made):
                raise StoreError(
                    f"{made} is a symlink or not a folder; incgraph writes blob files only "
                    "into real folders of the store: remove it and rerun"
                )
        with self._folders_lock:
            self._folders.add(folder)

    def _insert(self, conn: sqlite3.Connection, batch: _Batch) -> dict[str, _Row]:
        """Commit the rows of ``batch``; return the rows that hold its data versions instead
        where some insert did nothing (empty when every insert took).

        Runs inside the write transaction, so the rows read here are the truth:
        a data version another writer committed since ``batch`` was staged keeps
        that writer's row (we lost the race). One ``executemany`` per kind of
        row (after dropping stale rows the staging found); the rows are read back
        only when some insert did nothing, which the connection's change count
        tells. An inline row that was not looked up beforehand and met a row
        whose file is gone replaces it, as a looked-up one would have.
        """
        if batch.stale:
            conn.executemany(_DELETE, batch.stale)
        now = time.time()
        before = conn.total_changes  # after the deletes: counts only our inserts
        _insert_inline(conn, batch.inline, batch.tags, now)
        if batch.files:
            conn.executemany(
                _INSERT,
                [
                    (r.data_version, r.codec, r.checksum, r.size, now, None, r.tag)
                    for item in batch.files.values()
                    for r in (item.row,)
                ],
            )
        missed = len(batch.inline) + len(batch.files) - (conn.total_changes - before)
        if not missed:
            return {}
        batch.missed = missed
        found = _select_rows(conn, [entry[0] for entry in batch.inline] + list(batch.files))
        replace = [
            entry
            for entry in batch.inline
            if entry[0] not in batch.stored and not self._complete(found[entry[0]])
        ]
        if replace:
            self._replace_stale(conn, batch, replace, found, now)
        return found

    def _replace_stale(
        self,
        conn: sqlite3.Connection,
        batch: _Batch,
        replace: list[tuple[str, str, int, bytearray]],
        found: dict[str, _Row],
        now: float,
    ) -> None:
        """Put the inline rows ``replace`` in place of the rows ``found`` whose file is gone."""
        conn.executemany(
            _DELETE, [(found[entry[0]].data_version, found[entry[0]].checksum) for entry in replace]
        )
        tags = None
        if batch.tags is not None:
            tag_of = {entry[0]: tag for entry, tag in zip(batch.inline, batch.tags, strict=True)}
            tags = [tag_of[entry[0]] for entry in replace]
        _insert_inline(conn, replace, tags, now)
        for entry in replace:
            del found[entry[0]]

    def _drop_losing_file(self, pending: _Pending, winner: _Row) -> None:
        """Delete the file we wrote if another writer's row (with other bytes) won."""
        if pending.path is not None and (
            winner.inline or self._path_or_none(winner) != pending.path
        ):
            with suppress(OSError):
                os.unlink(pending.path)

    def _delete_rows(self, rows: list[_Row], *, unreferenced: bool = False) -> list[_Row]:
        """Delete rows (only if unchanged) and their files, in one transaction; return those gone.

        A file goes inside the transaction, after its row: a writer renames a
        file into place only inside its own transaction, so it cannot put back a
        file of that name between our delete and our unlink. With
        ``unreferenced``, a row that some ``results`` row names, or that a
        stored result references (the ``refs`` table), is kept: the check and
        the delete see the same state.
        """
        sql = _DELETE_UNREFERENCED if unreferenced else _DELETE

        def delete(conn: sqlite3.Connection) -> list[_Row]:
            gone = []
            for row in rows:
                before = conn.total_changes
                params = (row.data_version, row.checksum)
                conn.execute(sql, params * 2 if unreferenced else params)
                if conn.total_changes > before:
                    gone.append(row)
                    if not row.inline:
                        self._unlink(row)
            return gone

        return self.file.write(delete)

    def remove_files(self, paths: Iterable[Path]) -> list[Path]:
        """Delete those of ``paths`` that are still orphans or stale temporary files; return them.

        Each path must be one `orphan_files` or `stale_temp_files`
        listed (a name incgraph makes, in a real sub-folder of the blob folder);
        it is checked again under the write lock, so a file renamed into place
        meanwhile (with its row) stays.
        """
        self._check_writable()
        wanted = [path for path in paths if path.parent.parent == self.directory]
        if not wanted:
            return []

        def remove(conn: sqlite3.Connection) -> list[Path]:
            blob_files = [p for p in wanted if is_blob_file(p.name, p.parent.name)]
            doomed = self._unnamed(conn, blob_files)
            for path in wanted:
                temp = parse_temp_file(path.name, path.parent.name)
                if temp is not None and temp_file_is_live(temp) is not True:
                    doomed.append(path)
            removed = []
            for path in doomed:
                with suppress(OSError):
                    with open_folder(self.directory) as top:
                        folder = os.open(path.parent.name, _FOLDER_FLAGS, dir_fd=top)
                        try:
                            os.unlink(path.name, dir_fd=folder)
                        finally:
                            os.close(folder)
                    removed.append(path)
            return removed

        return sorted(self.file.write(remove))

    def _unlink(self, row: _Row) -> None:
        """Remove ``row``'s file, if its fields name one of ours, through no symlink."""
        with suppress(BadName, OSError), self._folder_of(row) as (folder_fd, name):
            os.unlink(name, dir_fd=folder_fd)

    def close(self) -> None:
        """Close this process's SQLite connections; using the store again reopens them."""
        self.file.close()


def _insert_inline(
    conn: sqlite3.Connection,
    inline: list[tuple[str, str, int, bytearray]],
    tags: list[str] | None,
    now: float,
) -> None:
    """Insert inline rows (with their HMAC ``tags`` when signing), ``now`` as their time."""
    if not inline:
        return
    if tags is None:
        conn.executemany(
            _INSERT_INLINE, [(dv, digest, size, now, data) for dv, digest, size, data in inline]
        )
    else:
        conn.executemany(
            _INSERT_INLINE_SIGNED,
            [
                (dv, digest, size, now, data, tag)
                for (dv, digest, size, data), tag in zip(inline, tags, strict=True)
            ],
        )


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
