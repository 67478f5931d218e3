"""One PostgreSQL database shared by a team: connections, transactions, errors, schema.

Design note
-----------
The PostgreSQL index and ledger (`incgraph.store.postgres_index`,
`incgraph.store.postgres_ledger`) share one `PostgresDatabase`, as the
SQLite ones share one `incgraph.store.sqlite_file.SqliteFile`. It owns:

* **Connections.** One psycopg 3 connection per thread, in autocommit mode
  (a read is one statement, never an idle open transaction); writes that must
  be atomic run in `PostgresDatabase.write`, one transaction retried on a
  deadlock or serialization failure. psycopg prepares a statement the fifth
  time it runs, so the hot look-ups are prepared on the server. A forked child
  never touches its parent's connections (closing one would end the parent's
  session): they are kept aside, unused, and the child opens its own.
* **Errors.** psycopg's errors become the store's: a full disk
  (``53100``) is `incgraph.errors.StoreFullError`, a read-only transaction
  `incgraph.errors.ReadOnlyStoreError`, anything else
  `incgraph.errors.StoreError`, each naming the database (never its
  password) and what to do.
* **Schema versions.** The tables carry a version in ``incgraph_meta``.
  Opening checks it and never migrates on its own: a database without
  incgraph's tables is created only with explicit consent
  (``open_store(url, create=True)`` or ``incgraph migrate URL``), and one with
  an older schema is refused with the command that migrates it. A shared
  database may be in use by other machines running the older incgraph; the
  person who upgrades it decides when. Migrations run in one transaction
  holding an advisory lock, so two migrators never interleave.
* **Clocks.** Lease expiry is decided by the server's clock. Callers pass
  times of their own clock; `PostgresDatabase.clock_offset` (server minus
  this host, measured on connect, rounded to 1/1024 s so adding and removing
  it is exact) translates them, so hosts with skewed clocks still agree.

Credentials come from the URL, the environment (``PGPASSWORD``, ``PGUSER``,
``PGHOST``...) or libpq's files (``~/.pgpass``, ``pg_service.conf``); none is
stored in the store.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from incgraph.errors import (
    ReadOnlyStoreError,
    StoreError,
    StoreFullError,
    require_extra,
)

__all__ = [
    "PG_CHUNK",
    "PG_SCHEMA_VERSION",
    "PostgresDatabase",
    "is_postgres_url",
    "migrate_postgres",
    "safe_url",
    "split_blobs",
]

T = TypeVar("T")

PG_CHUNK = 10_000
"""Keys or rows per statement of a bulk look-up, save or delete."""

PG_SCHEMA_VERSION = 1
"""The version of incgraph's tables in PostgreSQL that this incgraph reads and writes."""

NEWS_CHANNEL = "incgraph_news"
"""The LISTEN/NOTIFY channel told when results are saved or leases released."""

_MIGRATION_LOCK = 0x1C6_0A7  # pg_advisory_xact_lock key held while the schema changes
_RETRIES = 20
_TABLES = ("incgraph_meta", "results", "refs", "runs", "pins", "leases")

# MIGRATIONS[i] takes the tables from version i to i + 1; never edit a released one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE incgraph_meta (name text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE results (seq bigserial NOT NULL, key text PRIMARY KEY, "
        "data_version text NOT NULL, node text NOT NULL, processor text NOT NULL, "
        "code_version text NOT NULL, init_version text NOT NULL, inputs text NOT NULL, "
        "created double precision NOT NULL, duration double precision NOT NULL, "
        "size bigint NOT NULL)",
        "CREATE INDEX results_node ON results (node, created DESC, seq DESC)",
        "CREATE INDEX results_data_version ON results (data_version)",
        "CREATE TABLE refs (data_version text NOT NULL, ref text NOT NULL, "
        "PRIMARY KEY (data_version, ref))",
        "CREATE INDEX refs_ref ON refs (ref)",
        "CREATE TABLE runs (id bigserial PRIMARY KEY, kind text NOT NULL, label text NOT NULL, "
        "owner text NOT NULL, started double precision NOT NULL, finished double precision, "
        "status text NOT NULL, hits bigint NOT NULL, computed bigint NOT NULL, "
        "hit_keys bytea NOT NULL, written_keys bytea NOT NULL)",
        "CREATE TABLE pins (key text PRIMARY KEY, created double precision NOT NULL)",
        "CREATE TABLE leases (key text PRIMARY KEY, owner text NOT NULL, "
        "expires double precision NOT NULL)",
        "INSERT INTO incgraph_meta (name, value) VALUES ('id', md5(random()::text))",
    ),
)
if len(MIGRATIONS) != PG_SCHEMA_VERSION:  # pragma: no cover - a guard
    raise RuntimeError("PG_SCHEMA_VERSION must equal the number of MIGRATIONS")

_INHERITED: list[Any] = []  # a fork's parent connections: never used, never closed
_DATABASES: weakref.WeakSet[PostgresDatabase] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for database in list(_DATABASES):
        database._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def is_postgres_url(location: object) -> bool:
    """Whether ``location`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``).

    Examples
    --------
    >>> is_postgres_url("postgresql://me@db.example.org/cache"), is_postgres_url("/data/cache")
    (True, False)
    """
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages).

    Examples
    --------
    >>> safe_url("postgresql://me:secret@db:5432/cache")
    'postgresql://me:***@db:5432/cache'
    """
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at or ":" not in auth:
        return url
    return f"{scheme}{sep}{auth.split(':', 1)[0]}:***@{host}"


def split_blobs(url: str) -> tuple[str, str | None]:
    """``url`` without its ``blobs=`` query parameter, and that parameter (None if absent).

    ``blobs`` is incgraph's, not libpq's: it says where the store's results' bytes
    live, so one string names the whole store (for ``ProcessGraph(store=...)``,
    ``$INCGRAPH_STORE`` or ``incgraph --store``).

    Examples
    --------
    >>> split_blobs("postgresql://me@db/cache?blobs=/shared/blobs&sslmode=require")
    ('postgresql://me@db/cache?sslmode=require', '/shared/blobs')
    >>> split_blobs("postgresql://me@db/cache")
    ('postgresql://me@db/cache', None)
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    blobs = [value for name, value in pairs if name == "blobs"]
    if not blobs:
        return url, None
    rest = urlencode([(name, value) for name, value in pairs if name != "blobs"])
    return urlunsplit(parts._replace(query=rest)), blobs[-1]


def psycopg_module() -> Any:
    """psycopg 3, or an error saying ``pip install "incgraph[postgres]"``."""
    return require_extra("psycopg", "postgres")


class PostgresDatabase:
    """The PostgreSQL database holding a store's index and ledger.

    Parameters
    ----------
    url : str
        A libpq URL, ``postgresql://user@host:port/dbname`` (libpq's
        environment variables and files fill in what it leaves out).
    read_only : bool
        Every transaction is read-only (``default_transaction_read_only``).
    create : bool
        Create incgraph's tables in a database that has none of them. Without
        it, such a database is refused with the command that creates them.
    check : bool
        Check the schema version now (`check_schema`); only `migrate_postgres`
        opens without.

    Raises
    ------
    ExtraNotInstalledError
        psycopg is not installed.
    StoreError
        The server cannot be reached, the database holds no incgraph tables
        (and not ``create``), holds an older or newer schema, or holds tables of
        the same names that are not incgraph's.
    """

    def __init__(
        self, url: str, *, read_only: bool = False, create: bool = False, check: bool = True
    ) -> None:
        self.psycopg = psycopg_module()
        self.url = url
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self.clock_offset = 0.0
        _DATABASES.add(self)
        if check:
            self.check_schema(create=create)

    def __repr__(self) -> str:
        return f"PostgresDatabase({safe_url(self.url)!r})"

    # -- connections ----------------------------------------------------------------------

    def connection(self) -> Any:
        """This thread's connection (autocommit), opened on first use."""
        try:
            return self._local.conn
        except AttributeError:
            return self._open()

    def _open(self) -> Any:
        try:
            conn = self.psycopg.connect(self.url, autocommit=True)
            if self.read_only:  # not options=: that would replace the URL's own options
                conn.execute("SET default_transaction_read_only = on")
        except self.psycopg.Error as exc:
            raise self.error(exc, "connect to") from exc
        self.clock_offset = self._measure_offset(conn)
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def _measure_offset(self, conn: Any) -> float:
        """Server clock minus this host's, in 1/1024 s (exact to add and subtract)."""
        before = time.time()
        (server,) = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        after = time.time()
        return float(round((server - (before + after) / 2) * 1024) / 1024)

    def listener(self) -> Any:
        """A new connection of its own (autocommit), for LISTEN."""
        try:
            return self.psycopg.connect(self.url, autocommit=True)
        except self.psycopg.Error as exc:
            raise self.error(exc, "connect to") from exc

    def close(self) -> None:
        """Close this thread's connection; the other threads' close when they next let go."""
        with self._lock:
            mine = getattr(self._local, "conn", None)
            others = [conn for conn in self._connections if conn is not mine]
            self._connections = []
            self._local = threading.local()
        for conn in [mine, *others]:
            if conn is not None and not conn.info.transaction_status:  # idle: safe to close
                with suppress(Exception):
                    conn.close()

    def end_thread(self) -> None:
        """Close the calling thread's connection, if it has one (it is about to exit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        del self._local.conn
        with suppress(Exception):
            conn.close()

    def _after_fork(self) -> None:
        _INHERITED.extend(self._connections)
        self._connections = []
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- statements -----------------------------------------------------------------------

    def read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        """The rows of one statement (its own implicit transaction)."""
        try:
            return list(self.connection().execute(sql, params).fetchall())
        except self.psycopg.Error as exc:
            raise self.error(exc, "read") from exc

    def read_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of one statement, or None."""
        try:
            return self.connection().execute(sql, params).fetchone()
        except self.psycopg.Error as exc:
            raise self.error(exc, "read") from exc

    def write(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(connection)`` in one transaction, retried on deadlock or conflict."""
        errors = self.psycopg.errors
        for attempt in range(_RETRIES):
            conn = self.connection()
            try:
                with conn.transaction():
                    return operation(conn)
            except (errors.DeadlockDetected, errors.SerializationFailure):
                time.sleep(0.001 * (attempt + 1))
            except self.psycopg.Error as exc:
                raise self.error(exc, "write") from exc
        raise StoreError(
            f"{self!r}: a write kept conflicting with other writers ({_RETRIES} attempts); rerun"
        )

    def error(self, exc: BaseException, action: str) -> StoreError:
        """``exc`` (from psycopg) as a store error naming the database and the fix.

        A connection the failure broke (the server restarted, the network went)
        is dropped, so the next use connects again.
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn.broken or conn.closed):
            self.end_thread()
        where = safe_url(self.url)
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate == "53100":
            import errno

            return StoreFullError(
                errno.ENOSPC,
                f"the PostgreSQL server of {where} is out of disk space ({exc}); "
                "free space on the server and rerun: nothing already stored was lost",
            )
        if sqlstate == "25006":
            return ReadOnlyStoreError(
                f"cannot write to {where}: it was opened read-only; "
                "open it with read_only=False to change it"
            )
        if isinstance(exc, self.psycopg.OperationalError):
            return StoreError(
                f"cannot {action} the store database {where}: {exc}; check that the server "
                "runs and that the URL, PGPASSWORD or ~/.pgpass give access"
            )
        return StoreError(f"cannot {action} the store database {where}: {exc}")

    # -- schema ---------------------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The version of incgraph's tables here, or None when there are none."""
        found = self.read(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            (list(_TABLES),),
        )
        names = {name for (name,) in found}
        if "incgraph_meta" not in names:
            if names:
                raise StoreError(
                    f"{safe_url(self.url)} holds tables named {sorted(names)} that are not "
                    "incgraph's (no incgraph_meta table): refusing to use it as a store; "
                    "use another database or schema (e.g. ?options=-csearch_path=incgraph)"
                )
            return None
        row = self.read_one("SELECT value FROM incgraph_meta WHERE name = 'schema_version'")
        return 0 if row is None else int(row[0])

    def check_schema(self, *, create: bool) -> None:
        """Refuse a database whose schema this incgraph cannot use (see the module note)."""
        version = self.schema_version()
        if version == PG_SCHEMA_VERSION:
            return
        where = safe_url(self.url)
        if version is None and create and not self.read_only:
            self.migrate()
            return
        if version is None:
            raise StoreError(
                f"{where} holds no incgraph store yet; create one with "
                f"`incgraph migrate {where}` or open_store(url, create=True)"
            )
        if version > PG_SCHEMA_VERSION:
            raise StoreError(
                f"{where} holds an incgraph store of schema version {version}, newer than "
                f"this incgraph understands ({PG_SCHEMA_VERSION}); upgrade incgraph"
            )
        raise StoreError(
            f"{where} holds an incgraph store of schema version {version}; this incgraph "
            f"needs version {PG_SCHEMA_VERSION}: run `incgraph migrate {where}` once every "
            "machine using it runs this incgraph"
        )

    def migrate(self) -> tuple[int, int]:
        """Bring incgraph's tables to `PG_SCHEMA_VERSION`; return (version before, after).

        One transaction under an advisory lock: a concurrent migrator waits,
        then finds the work done.
        """
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot migrate {safe_url(self.url)}: it was opened read-only"
            )

        def run(conn: Any) -> tuple[int, int]:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            before = _version_in(conn) or 0
            if before > PG_SCHEMA_VERSION:
                raise StoreError(
                    f"{safe_url(self.url)} holds schema version {before}, newer than this "
                    f"incgraph understands ({PG_SCHEMA_VERSION}); upgrade incgraph"
                )
            for statements in MIGRATIONS[before:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO incgraph_meta (name, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(PG_SCHEMA_VERSION),),
            )
            return before, PG_SCHEMA_VERSION

        return self.write(run)


def _version_in(conn: Any) -> int | None:
    """The schema version seen inside ``conn``'s transaction (None: no incgraph_meta)."""
    exists = conn.execute(
        "SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = 'incgraph_meta'"
    ).fetchone()
    if exists is None:
        return None
    row = conn.execute("SELECT value FROM incgraph_meta WHERE name = 'schema_version'").fetchone()
    return 0 if row is None else int(row[0])


def migrate_postgres(url: str) -> tuple[int, int]:
    """Create or upgrade incgraph's tables in the PostgreSQL database at ``url``.

    What ``incgraph migrate URL`` runs. Returns the schema version before (0 for
    a database without incgraph's tables) and after. Upgrade every machine
    that uses the store before migrating it: an older incgraph refuses a newer
    schema.

    Raises
    ------
    StoreError
        The server cannot be reached, the database holds tables of incgraph's
        names that are not incgraph's, or a newer schema than this incgraph knows.
    """
    database = PostgresDatabase(url, check=False)
    try:
        database.schema_version()  # refuses foreign tables before anything is written
        return database.migrate()
    finally:
        database.close()
