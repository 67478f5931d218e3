"""The SQLite schema of a store, as a list of migrations.

Design note
-----------
The schema version is SQLite's ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes
a database from version ``i`` to ``i + 1``; opening a store applies the missing
ones in order, inside one ``BEGIN IMMEDIATE`` transaction, so two processes that
open a fresh store at once cannot both migrate it (the second waits, then finds
the work done). A later version adds a function to the list and never edits the
earlier ones.

Version 1 tables (one file, ``index.sqlite``):

``results``
    cache key -> `Record`. ``inputs`` is JSON
    text (input name -> data version). Indexed on ``(node, created)`` for
    "latest result of a node", on ``data_version`` to find the keys that
    point at a blob, and on ``created`` to list records in creation order.
    A rowid table: inserts append, and ``rowid`` breaks ties between equal
    ``created`` times.
``blobs``
    data version -> codec, xxh3-64 checksum (16 hex chars) and size; ``data``
    holds the bytes of small values inline and is NULL for values kept as files.

Version 2 adds what lets people trust and inspect a store:

``runs``
    the run log: one row per engine run or batch (kind, label, owner,
    started/finished times, status, hit and computed counts) with the cache
    keys it read (``hit_keys``) and wrote (``written_keys``) packed into one
    blob each (`incgraph.store.runlog`). Garbage collection keeps what the
    last runs used; ``incgraph ls`` counts hits from it.
``pins``
    cache keys garbage collection never drops.
``leases``
    cache key -> owner and expiry time of the process computing it, so that
    other processes wait instead of computing it again (`incgraph.store.leases`).
``blobs.tag``
    the HMAC-SHA256 tag of a blob when signing is on (`incgraph.store.signing`).

Version 3 lets a small result live in its own ``results`` row:

``results.checksum``, ``results.data``
    the pickled bytes of a result of at most
    ``settings.row_inline_limit_bytes`` (1 KiB by default) and
    their xxh3-64 checksum, as an inline blob holds them; NULL when the value
    is a blob (a ``blobs`` row, inline or a file) as before. Every row naming
    such a data version carries its own copy, so no row depends on another.
    Writing one row instead of a ``blobs`` row plus a ``results`` row is what
    it buys (measured, SQLite alone: 14 -> 11 us per small result).
``results_created`` is dropped
    listing records in creation order reads the table in rowid pages and
    sorts in memory (every caller reads the whole table anyway), so one index
    less is updated per insert (11 -> 9.5 us per small result).

Version 4 makes what a result references visible to maintenance:

``refs``
    data version of a stored result -> data version of a blob it references
    besides its own (a Flow manifest's artifacts, a ForEach join's), from
    the value's ``__incgraph_refs__()`` when it is saved. Garbage collection
    keeps the blobs the kept results reference, ``verify`` checks they
    exist, and a load that finds one missing drops the results naming it.
    Keyed by data version, so every row of that data version (a ForEach
    memo row shares its join's) references the same blobs.

A version 3 file is readable as it is (it has no ``refs``: a reader then
sees no references). A version 2 file holds no row data, so it is readable
as it is too: opened
read-only it is served without migrating (`READABLE_SINCE`). An
incgraph that knows only version 2 refuses a version 3 file ("newer than
this incgraph understands"): it would not see the results kept in rows, and
would drop their rows as results whose blob is missing.

Each migration is a tuple of plain SQL statements, run inside the caller's
open transaction, which is what makes a migration atomic. (The statements
keep the exact text an earlier version generated with ``sqlite-utils``, so
``sqlite_master`` reads the same whichever version created a file.)

A new file. Creating a store's file the ordinary way - ``PRAGMA journal_mode
= WAL`` on the empty file, then the migrations in a transaction - costs a
rollback-journal transaction with three fsyncs, the migrations' statements
and a checkpoint of a dozen schema pages at close. A new
file needs no history, so `NEW_FILE_SQL` holds the schema the
migrations build as the statements that create it in one go (the ``sql``
column of a migrated file's ``sqlite_master``), and `new_file_image`
runs them once per process on an in-memory database and returns its bytes
(``Connection.serialize``) with the header marked as a WAL database (bytes 18
and 19, the file format write and read versions, are 2 in WAL mode: what
``PRAGMA journal_mode = WAL`` itself writes).
`SqliteFile` writes the image to a
temporary file, fsyncs it once and links it into place, so a new store is
either absent or complete. ``tests/store/test_new_file.py`` checks that the
image's ``sqlite_master`` (names and SQL text), ``user_version`` and journal
mode equal those of a file migrated from version 0 step by step: a
new migration must extend `NEW_FILE_SQL` too, and that test prints
what to put there.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = [
    "MIGRATIONS",
    "NEW_FILE_SQL",
    "READABLE_SINCE",
    "REFS_SINCE",
    "ROW_DATA_SINCE",
    "SCHEMA_VERSION",
    "migrate",
    "new_file_image",
]

_RESULTS_V1 = (
    'CREATE TABLE "results" (\n'
    '   "key" TEXT PRIMARY KEY,\n'
    '   "data_version" TEXT NOT NULL,\n'
    '   "node" TEXT NOT NULL,\n'
    '   "processor" TEXT NOT NULL,\n'
    '   "code_version" TEXT NOT NULL,\n'
    '   "init_version" TEXT NOT NULL,\n'
    "   \"inputs\" TEXT NOT NULL DEFAULT '{}',\n"
    '   "created" REAL NOT NULL,\n'
    '   "duration" REAL NOT NULL DEFAULT 0.0,\n'
    '   "size" INTEGER NOT NULL DEFAULT 0\n'
    ")"
)
_BLOBS_V1 = (
    'CREATE TABLE "blobs" (\n'
    '   "data_version" TEXT PRIMARY KEY,\n'
    '   "codec" TEXT NOT NULL,\n'
    '   "checksum" TEXT NOT NULL,\n'
    '   "size" INTEGER NOT NULL,\n'
    '   "created" REAL NOT NULL,\n'
    '   "data" BLOB\n'
    ")"
)
_RUNS = (
    'CREATE TABLE "runs" (\n'
    '   "id" INTEGER PRIMARY KEY,\n'
    '   "kind" TEXT NOT NULL,\n'
    "   \"label\" TEXT NOT NULL DEFAULT '',\n"
    '   "owner" TEXT NOT NULL,\n'
    '   "started" REAL NOT NULL,\n'
    '   "finished" REAL,\n'
    '   "status" TEXT NOT NULL,\n'
    '   "hits" INTEGER NOT NULL DEFAULT 0,\n'
    '   "computed" INTEGER NOT NULL DEFAULT 0,\n'
    '   "hit_keys" BLOB,\n'
    '   "written_keys" BLOB\n'
    ")"
)
_PINS = 'CREATE TABLE "pins" (\n   "key" TEXT PRIMARY KEY,\n   "created" REAL NOT NULL\n)'
# WITHOUT ROWID: a claim rewrites one b-tree page instead of a table page plus its key
# index (measured: 36 -> 22 us per single-key claim transaction)
_LEASES = (
    "CREATE TABLE leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "expires REAL NOT NULL) WITHOUT ROWID"
)
_NODE_CREATED = 'CREATE INDEX "results_node_created"\n    ON "results" ("node", "created")'
_REFS = (
    "CREATE TABLE refs (data_version TEXT NOT NULL, ref TEXT NOT NULL, "
    "PRIMARY KEY (data_version, ref)) WITHOUT ROWID"
)
_REFS_REF = "CREATE INDEX refs_ref ON refs (ref)"
_DATA_VERSION = 'CREATE INDEX "results_data_version"\n    ON "results" ("data_version")'

MIGRATIONS: list[tuple[str, ...]] = [
    # 0 -> 1: ``results`` and ``blobs`` with their indexes
    (
        _RESULTS_V1,
        _NODE_CREATED,
        _DATA_VERSION,
        'CREATE INDEX "results_created"\n    ON "results" ("created")',
        _BLOBS_V1,
    ),
    # 1 -> 2: the run log, pins, leases, and a signature column for blobs
    (_RUNS, _PINS, _LEASES, 'ALTER TABLE "blobs" ADD COLUMN "tag" TEXT'),
    # 2 -> 3: small results' bytes in their ``results`` row; no ``results_created``
    (
        'ALTER TABLE "results" ADD COLUMN "checksum" TEXT',
        'ALTER TABLE "results" ADD COLUMN "data" BLOB',
        "DROP INDEX IF EXISTS results_created",
    ),
    # 3 -> 4: ``refs``, the blobs a stored result references besides its own
    (_REFS, _REFS_REF),
]
"""``MIGRATIONS[i]``: the SQL statements taking a store from schema version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this incgraph writes."""

ROW_DATA_SINCE = 3
"""The first schema version whose ``results`` rows may hold their result's bytes."""

READABLE_SINCE = 2
"""The oldest schema version read as it is when a store is opened read-only.

Version 2 differs from 3 only by columns that are NULL in every row it has and
an index the reader does not need, and 3 from 4 by a table readers may do
without; older files must be opened writable once to migrate them.
"""

REFS_SINCE = 4
"""The first schema version with the ``refs`` table."""


NEW_FILE_SQL: tuple[str, ...] = (
    _RESULTS_V1[:-1] + ', "checksum" TEXT, "data" BLOB)',
    _NODE_CREATED,
    _DATA_VERSION,
    _REFS,
    _BLOBS_V1[:-1] + ', "tag" TEXT)',
    _RUNS,
    _PINS,
    _LEASES,
    _REFS_REF,
)
"""The schema `MIGRATIONS` build, as the statements creating it in one go (new files).

Exactly the ``sql`` of a migrated file's ``sqlite_master`` rows, in creation
order (``blobs.tag`` and ``results.checksum``/``data`` are where ``ALTER TABLE
... ADD COLUMN`` put them; ``refs`` where its root page lands in a migrated
file, the page the dropped ``results_created`` freed). Tested equal to the
migrations' result; extend it
with every new migration. Root pages may differ: a migrated file keeps the
free page of the index version 3 drops, a new file never had it.
"""

# Offsets 18 and 19 of the database header: the file format write and read versions,
# 1 for rollback journals and 2 for WAL (https://sqlite.org/fileformat2.html#database_header).
_FORMAT_VERSIONS = slice(18, 20)
_WAL_FORMAT = b"\x02\x02"

_image: bytes | None = None
_image_lock = threading.Lock()


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations ``conn``'s database lacks, then set its ``user_version``.

    Call it inside a write transaction: the DDL runs in the caller's
    transaction, so the migration is all or nothing.

    Examples
    --------
    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> migrate(conn)
    >>> conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    True
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for migration in MIGRATIONS[version:]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def new_file_image() -> bytes | None:
    """The bytes of a database file at `SCHEMA_VERSION`, in WAL mode, holding no rows.

    Built once per process from `NEW_FILE_SQL` on an in-memory
    database. None where this Python's ``sqlite3`` cannot serialize a database
    (then stores are created the ordinary way).

    Examples
    --------
    >>> image = new_file_image()
    >>> image is None or (image[:16], image[18:20]) == (b"SQLite format 3\\x00", b"\\x02\\x02")
    True
    """
    global _image
    if _image is None:
        with _image_lock:
            if _image is None:
                _image = _build_image()
    return _image or None


def _build_image() -> bytes:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        if not hasattr(conn, "serialize"):  # SQLite built without it
            return b""
        conn.execute("BEGIN IMMEDIATE")
        for statement in NEW_FILE_SQL:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        image = bytearray(conn.serialize())
    finally:
        conn.close()
    image[_FORMAT_VERSIONS] = _WAL_FORMAT
    return bytes(image)
