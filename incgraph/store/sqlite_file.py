"""One SQLite file shared by the index and the blob store: connections, writes, schema.

Design note
-----------
*Connections.* SQLite connections must not cross threads or a ``fork``, so each
thread gets its own, kept in a ``threading.local`` together with one reused
cursor for the hot single-row queries. `SqliteFile.close` closes only the
calling thread's connection and drops the others, which close when their
thread lets go of them: closing a connection under another thread's feet
crashes the interpreter. ``os.register_at_fork`` gives every open
`SqliteFile` a fresh ``threading.local`` in the child: the child opens
its own connections on first use. The inherited ones are kept referenced
(never closed, never garbage collected) because closing them in the child could
release or checkpoint state that still belongs to the parent.

*Pragmas.* WAL journal (readers never block the writer and vice versa),
``synchronous=NORMAL`` (a commit survives a killed process; only a power cut
can lose the last commits, never tear the file; ``durable=True`` switches to
``FULL``), ``busy_timeout`` so SQLite itself waits for locks, and a larger page
cache for bulk inserts.

*Writes.* `SqliteFile.write` runs a function inside ``BEGIN IMMEDIATE`` ...
``COMMIT``. Taking the write lock up front means a transaction never has to
upgrade a read lock (the case in which WAL answers ``SQLITE_BUSY`` at once).
``SQLITE_BUSY`` that still escapes ``busy_timeout`` is retried with jittered
exponential backoff for ``lock_timeout`` seconds, so contention between
processes is slow at worst and never an error.

*Schema.* The first connection in a process checks ``PRAGMA user_version`` and
applies `MIGRATIONS`; a file SQLite cannot read
raises `StoreCorruptError` naming the file and the fix.
A read-only file is opened with ``mode=ro`` and is never migrated: one at
`READABLE_SINCE` or later is read as it is
(`SqliteFile.schema_version` tells readers which columns it has), an
older one is refused with the fix (open it writable once).

*Foreign files.* Before the first connection of a process touches an
existing file, `foreign_reason` reads it with ``immutable=1`` (no lock,
no ``-wal``/``-shm`` created, nothing written) and refuses a database that is
not an incgraph index (tables of its own, or no ``results``/``blobs`` tables
of incgraph's shape): switching it to WAL or adding tables would change
another program's file.

*Read-only.* ``mode=ro`` needs the ``-shm`` file, which SQLite creates (and
leaves) beside the database. Where the folder cannot be written (a read-only
mount, another user's folder), that fails; a store closed cleanly there (no
``-wal`` holding commits) is then opened with ``immutable=1``, which reads the
file as it is and writes nothing. A store whose ``-wal`` still holds commits
cannot be read that way (they would be missed): the error says to open it
writable once, where it can be written, to fold them in.

*New files.* A file that does not exist yet is made whole instead: the
schema image (`new_file_image`: the migrated
schema, already in WAL mode) is written to a temporary file beside it
(mode 0600), fsynced once, and hard-linked to the database's name, which
fails if the name exists. So a crash leaves no store file or a complete one
(never a torn one), and two processes creating the same store at once
cannot both win: the loser, like any process that finds the file, opens and
migrates it the ordinary way, as it does where hard links are not supported.
Measured on a fresh store: 1 fsync instead of 3, and no migration
statements, rollback journal or schema pages to checkpoint at close.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from incgraph.errors import ReadOnlyStoreError, StoreError
from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.diskio import fsync_folder, write_all
from incgraph.store.failure import is_busy, is_transient_io, store_error
from incgraph.store.schema import READABLE_SINCE, SCHEMA_VERSION, migrate, new_file_image

__all__ = ["SqliteFile"]

T = TypeVar("T")


_OPEN_FILES: weakref.WeakSet[SqliteFile] = weakref.WeakSet()
_INHERITED: list[sqlite3.Connection] = []  # a fork's parent connections: never closed


def _forget_connections_after_fork() -> None:
    for sqlite_file in list(_OPEN_FILES):
        sqlite_file._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def foreign_reason(path: Path) -> str | None:
    """Why the SQLite file at ``path`` is not an incgraph index, or None if it may be one.

    Read with ``immutable=1``: no lock is taken and nothing is created or
    written, whatever the file is. An absent or empty file, or one SQLite
    cannot read (reported later, as corruption), gives None.

    Examples
    --------
    >>> import tempfile
    >>> other = Path(tempfile.mkdtemp()) / "index.sqlite"
    >>> conn = sqlite3.connect(other)
    >>> _ = conn.execute("CREATE TABLE photos (name TEXT)"); conn.close()
    >>> foreign_reason(other)
    "it holds tables incgraph does not make: 'photos'"
    """
    try:
        if path.stat().st_size == 0:
            return None
    except OSError:
        return None
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {name for (name,) in conn.execute(_TABLES)}
        results = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
        blobs = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return _foreign(version, tables, results, blobs)


_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
_OWN_TABLES = frozenset({"results", "blobs", "runs", "pins", "leases", "refs"})
_RESULTS_COLUMNS = frozenset({"key", "data_version", "node", "processor", "code_version"})
_BLOBS_COLUMNS = frozenset({"data_version", "codec", "checksum", "size"})


def _foreign(version: int, tables: set[str], results: set[str], blobs: set[str]) -> str | None:
    if not tables and version == 0:
        return None  # an empty database: incgraph makes it a store
    other = sorted(tables - _OWN_TABLES)
    if other:
        return f"it holds tables incgraph does not make: {', '.join(map(repr, other[:5]))}"
    if not (results >= _RESULTS_COLUMNS and blobs >= _BLOBS_COLUMNS):
        return "its results and blobs tables are not incgraph's"
    if version < 1:
        return f"its schema version is {version}, which incgraph never writes"
    return None


def _wal_holds_commits(path: Path) -> bool:
    """Whether ``path``'s write-ahead log exists and is not empty."""
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except OSError:
        return False


class SqliteFile:
    """An SQLite database file with a connection per thread and retried write transactions.

    Parameters
    ----------
    path : str or os.PathLike
        The database file. It is created (mode 0600) unless ``read_only``.
    read_only : bool
        Open with ``mode=ro``; `write` raises
        `ReadOnlyStoreError`.
    durable : bool
        ``synchronous=FULL`` instead of ``NORMAL``: commits survive a power cut.
    busy_timeout : float
        Seconds SQLite waits for a lock before reporting it busy.
    lock_timeout : float
        Seconds `write` keeps retrying a busy database before giving up.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> db = SqliteFile(pathlib.Path(tempfile.mkdtemp()) / "index.sqlite")
    >>> db.write(lambda conn: conn.execute("SELECT count(*) FROM results").fetchone()[0])
    0
    >>> db.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        durable: bool = False,
        busy_timeout: float = 30.0,
        lock_timeout: float = 600.0,
        settings: Settings = DEFAULT_SETTINGS,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.durable = durable
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        # how many times a transient "disk I/O error" (a WAL open/close race between
        # processes) is retried before it is reported as a store error
        self.io_retries = settings.sqlite_io_retries
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._schema_checked = False
        self._immutable = False  # read-only, through a folder that refuses the -shm file
        self._version = SCHEMA_VERSION
        _OPEN_FILES.add(self)

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"SqliteFile({str(self.path)!r}, {mode})"

    @property
    def schema_version(self) -> int:
        """The schema version of the file as this process reads it.

        `SCHEMA_VERSION` unless the file was opened
        read-only at an older version it can still read (see the module note).
        """
        self.connection()
        return self._version

    # -- connections -------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema checked) on first use."""
        try:
            conn: sqlite3.Connection = self._local.conn
        except AttributeError:
            conn = self._open()
        return conn

    def cursor(self) -> sqlite3.Cursor:
        """This thread's reusable cursor, for single-row queries fetched at once."""
        try:
            cur: sqlite3.Cursor = self._local.cursor
        except AttributeError:
            self.connection()
            cur = self._local.cursor
        return cur

    def _open(self) -> sqlite3.Connection:
        if not self._schema_checked:
            reason = foreign_reason(self.path)
            if reason is not None:
                raise StoreError(
                    f"{self.path} is not an incgraph store index ({reason}); incgraph left it "
                    "untouched: point the store at a folder of its own"
                )
        retries = self.io_retries
        for attempt in range(retries + 1):
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                if is_transient_io(exc) and attempt < retries:
                    time.sleep(0.005 * (attempt + 1))
                    continue
                raise store_error(exc, self.path) from exc
            try:
                if not self._schema_checked:
                    with self._lock:
                        if not self._schema_checked:
                            self._check_schema(conn)
                            self._schema_checked = True
            except BaseException as exc:
                conn.close()
                cause = exc.__cause__ if isinstance(exc, StoreError) else exc
                if is_transient_io(cause or exc) and attempt < retries:
                    time.sleep(0.005 * (attempt + 1))
                    continue
                raise
            break
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        self._local.cursor = conn.cursor()
        return conn

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            if not self._schema_checked and self._create_whole():
                self._schema_checked = True  # made here from the current schema, in WAL mode
            else:
                self._create_private_file()
        if self.read_only:
            return self._connect_read_only()
        conn = sqlite3.connect(
            str(self.path),
            timeout=self.busy_timeout,  # sets SQLite's busy_timeout
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # only so close() may close every thread's connection
            cached_statements=256,
        )
        return self._tuned(conn)

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; where the folder refuses the ``-shm`` file, ``immutable=1`` if clean."""
        if self._immutable:
            return self._uri_connection("immutable=1")
        try:
            conn = self._uri_connection("mode=ro")
            try:
                conn.execute("PRAGMA user_version").fetchone()
            except BaseException:
                conn.close()
                raise
        except sqlite3.OperationalError as exc:
            if "unable to open" not in str(exc) and "readonly" not in str(exc):
                raise
            if _wal_holds_commits(self.path):
                raise StoreError(
                    f"{self.path} cannot be read here: its folder cannot be written and "
                    f"{self.path.name}-wal still holds commits (the store was not closed "
                    "cleanly); open the store once with read_only=False where its folder "
                    "can be written, then read-only opening works"
                ) from exc
            self._immutable = True
            return self._uri_connection("immutable=1")
        return conn

    def _uri_connection(self, options: str) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?{options}",
            uri=True,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        return self._tuned(conn)

    def _tuned(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Set the connection's pragmas (closing it if that fails)."""
        try:
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            conn.execute("PRAGMA cache_size = -65536")  # KiB: 64 MiB at most, as pages are used
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_whole(self) -> bool:
        """Create the missing file from the schema image, atomically; False if not done here.

        False when the file exists (made by another process meanwhile, too), when
        this Python cannot build the image, or when the folder refuses the
        temporary file or hard links: the caller then opens the file the
        ordinary way, which creates and migrates it or reports the error.
        """
        if os.path.lexists(self.path):
            return False
        image = new_file_image()
        if image is None or not self._link_new_file(image):
            return False
        if self.durable:
            fsync_folder(self.path.parent)
        return True

    def _create_private_file(self) -> None:
        """Create the missing database file with mode 0600 (SQLite's -wal/-shm files copy it).

        Never by opening ``self.path`` itself: closing any descriptor of the database
        file drops every POSIX lock this process holds on it, the locks of the other
        threads' open connections included, and another process could then write
        under them (seen: "database disk image is malformed" with eight processes of
        four threads, each thread opening its connection). The empty file is made
        as `_link_new_file` makes one. A folder that refuses the temporary
        file or hard links leaves the file to SQLite, which creates it with the
        process's default mode.
        """
        if not os.path.lexists(self.path):
            self._link_new_file(b"")

    def _link_new_file(self, content: bytes) -> bool:
        """Give ``self.path`` a new file holding ``content``, mode 0600; False if not done here.

        The file is written (and, when not empty, fsynced: complete on disk before its
        name can be seen) under a temporary name, closed, then hard-linked into place:
        the link fails if the name exists, so a store is never replaced, and no
        descriptor of ``self.path`` is ever opened here. False when the name exists
        by then or the folder refuses the temporary file or hard links.
        """
        temporary = self.path.with_name(f".{self.path.name}-{uuid.uuid4().hex}.new")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(temporary, flags, 0o600)
        except OSError:
            return False
        try:
            try:
                if content:
                    write_all(fd, content)
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.link(temporary, self.path)
        except OSError:
            return False
        finally:
            with suppress(OSError):
                os.unlink(temporary)
        return True

    def close(self) -> None:
        """Close this thread's connection now, and let go of the other threads'.

        Closing a connection while another thread is inside one of its calls
        crashes the interpreter (seen: a graph closing a store that other threads
        were running on), so other threads' connections are not closed from here:
        they are dropped, and close when their thread lets go of them (at once if
        it is idle, else when its current call returns). Every next use, in any
        thread, opens a fresh connection.
        """
        with self._lock:
            mine = getattr(self._local, "conn", None)
            self._connections = []
            self._local = threading.local()
        if mine is not None:
            mine.close()

    def end_thread(self) -> None:
        """Close the calling thread's connection, if it has one (it is about to exit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        del self._local.conn, self._local.cursor
        conn.close()

    def _after_fork(self) -> None:
        _INHERITED.extend(self._connections)
        self._connections = []
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- schema -------------------------------------------------------------------

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Set WAL mode and migrate to `SCHEMA_VERSION` (or check it, read-only)."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if self.read_only:
                self._check_read_only_version(version)
                self._version = version
                return
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc
        if version < SCHEMA_VERSION:
            self.write(migrate, conn=conn)
        elif version > SCHEMA_VERSION:
            raise self._too_new(version)

    def _check_read_only_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise self._too_new(version)
        if version < READABLE_SINCE:
            raise StoreError(
                f"{self.path} has schema version {version}, older than this incgraph's "
                f"{SCHEMA_VERSION} (or it is not an incgraph store); open it once "
                "with read_only=False to upgrade it"
            )

    def _too_new(self, version: int) -> StoreError:
        return StoreError(
            f"{self.path} has schema version {version}, newer than this incgraph "
            f"understands ({SCHEMA_VERSION}); upgrade incgraph to open it"
        )

    # -- writes ---------------------------------------------------------------------

    def write(
        self,
        operation: Callable[[sqlite3.Connection], T],
        *,
        conn: sqlite3.Connection | None = None,
    ) -> T:
        """Run ``operation(conn)`` in one ``BEGIN IMMEDIATE`` transaction and return its result.

        The transaction is rolled back if ``operation`` raises, and retried from the
        start while the database is busy. SQLite errors become store errors. A
        write made from inside ``operation`` (in the same thread) joins its
        transaction: a maintenance step can re-check and act under one lock.
        """
        if self.read_only:
            raise ReadOnlyStoreError(
                f"the store index {self.path} was opened read-only; "
                "open it with read_only=False to save or delete results"
            )
        connection = self.connection() if conn is None else conn
        if getattr(self._local, "writing", False) and conn is None:
            return operation(connection)  # inside this thread's write: join it
        self._local.writing = True
        try:
            return self._retry(lambda: self._transaction(connection, operation))
        finally:
            self._local.writing = False

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one read transaction: every read sees one state.

        WAL keeps the state the first read saw until the block ends, however
        many commits other connections make meanwhile (the way ``verify``
        judges a store in use). Nothing may be written inside it.
        """
        conn = self.connection()
        if conn.in_transaction:
            yield conn  # already inside one transaction: that is the snapshot
            return
        try:
            conn.execute("BEGIN DEFERRED")
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc
        try:
            yield conn
        finally:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    @staticmethod
    def _transaction(conn: sqlite3.Connection, operation: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = operation(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                # the original error says more than a failed rollback would
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result

    def _retry(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        io_errors = 0
        while True:
            try:
                return attempt()
            except sqlite3.Error as exc:
                if is_transient_io(exc) and io_errors < self.io_retries:
                    io_errors += 1
                elif not is_busy(exc):
                    raise store_error(exc, self.path) from exc
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path} stayed locked by another process for "
                        f"{self.lock_timeout:.0f} s; check for a stuck incgraph process"
                    ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)
