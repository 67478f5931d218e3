"""The PostgreSQL index: cache key -> `Record`, shared by every machine of a team.

Design note
-----------
The same ``results`` and ``refs`` tables as the SQLite index
(`incgraph.store.sqlite_index`), the same rows (`record_row` builds
both), so the same keys give the same hits whichever index holds them.

A round trip to a server costs far more than an SQLite call, so everything
that can be asked in bulk is one statement per chunk of `PG_CHUNK` keys:
look-ups pass the keys as one array (``key = ANY(%s)``), saves pass each
column as one array and insert them with ``unnest`` (one statement for
thousands of rows), deletes likewise. A cached rerun of a large graph then
costs a few round trips, not one per node. The single-key look-up
(`PostgresIndex.data_version_of`) is one prepared primary-key query.

``seq`` (a sequence) orders rows by insertion: it breaks ties of ``created``
and is renewed when a row is replaced, as SQLite's ``INSERT OR REPLACE`` gives
a replaced row a new ``rowid``. Every transaction that saves rows also sends
``NOTIFY incgraph_news`` (delivered at commit), which wakes claimants waiting
for those keys on other machines (`incgraph.store.postgres_ledger`).

Blobs beside writers. The results' bytes live in another database (the
blob folder's SQLite file) than their rows, so the one transaction that makes
a folder store's saves and garbage collection safe beside each other is not
available. An advisory lock takes its place: a save commits its rows holding
it shared, after checking that their blobs are still there; garbage collection
deletes blobs holding it exclusively (`hold`), after asking which of them
some result names (`names`). A blob is therefore never deleted between the
check of a save and its commit, and a save whose blobs went before its check
writes them again (`BlobsVanished`, caught by `PostgresIndex.save_with`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from incgraph.errors import StoreError
from incgraph.sentinels import MISSING, Missing
from incgraph.store.postgres_database import NEWS_CHANNEL, PG_CHUNK, PostgresDatabase
from incgraph.store.postgres_ledger import PostgresLedger
from incgraph.store.protocols import BlobStore, Record, RowsWithoutData, chunks, save_apart
from incgraph.store.sqlite_index import record_row

__all__ = ["PG_CHUNK", "SAVE_ATTEMPTS", "BlobsVanished", "PostgresIndex", "open_postgres"]

T = TypeVar("T")


_FIELDS = (
    "data_version, node, processor, code_version, init_version, inputs, created, duration, size"
)
_COLUMNS = f"key, {_FIELDS}"
_GET = f"SELECT {_FIELDS} FROM results WHERE key = %s"
_GET_VERSION = "SELECT data_version FROM results WHERE key = %s"
_TYPES = ("text", "text", "text", "text", "text", "text", "text", "float8", "float8", "int8")
_UPSERT = (
    f"INSERT INTO results ({_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in _TYPES)
    + ") ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _FIELDS.split(", "))
    + ", seq = excluded.seq"
)
_NOTIFY = f"NOTIFY {NEWS_CHANNEL}"
_BLOB_LOCK = 0x1C6_0B1  # advisory lock: saves hold it shared, blob deletion exclusive
_REFS_OF = "SELECT DISTINCT ref FROM refs WHERE data_version = ANY(%s)"
_NAMES = (
    "SELECT data_version FROM results WHERE data_version = ANY(%(dvs)s) UNION "
    "SELECT refs.ref FROM refs JOIN results ON results.data_version = refs.data_version "
    "WHERE refs.ref = ANY(%(dvs)s)"
)
_loads = json.loads

SAVE_ATTEMPTS = 5
"""A save whose blobs a garbage collection deleted meanwhile writes them again, this often."""


class BlobsVanished(StoreError):
    """Blobs of results about to be committed were deleted meanwhile; write them again."""

    def __init__(self, data_versions: list[str], refs: list[str]) -> None:
        super().__init__(
            f"{len(data_versions)} blob(s) of results being saved were deleted by a garbage "
            f"collection meanwhile (first: {data_versions[0]}); nothing was committed: rerun, "
            "and give gc a grace period longer than a run's write"
        )
        self.data_versions = data_versions
        self.missing_refs = refs
        """The vanished blobs that the results reference (not their own): only their writer
        has them, to write again."""


def _record(key: str, row: Sequence[Any]) -> Record:
    """A Record from ``key`` and a row in `_FIELDS` order."""
    return Record(key, row[0], row[1], row[2], row[3], row[4], _loads(row[5]), *row[6:9])


_ROW_FIELDS = (
    "key",
    "data version",
    "node label",
    "processor name",
    "code version",
    "init version",
)


def _storable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` itself, once no text field holds a NUL character (PostgreSQL text cannot).

    Raises
    ------
    StoreError
        Naming the node and the field, and what to do.
    """
    for name, field in zip(_ROW_FIELDS, row, strict=False):
        if "\x00" in field:
            raise StoreError(
                f"node {row[2]!r}: its {name} holds a NUL character ('\\x00'), which a "
                "PostgreSQL text column cannot store; use a name without it (a SQLite store "
                "accepts it)"
            )
        if not field.isascii() and not _is_utf8(field):
            raise StoreError(
                f"node {row[2]!r}: its {name} holds a lone surrogate, which is not UTF-8 and "
                "which PostgreSQL cannot store; use a name without it"
            )
    return row


def _is_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows -> one list per column (what ``unnest`` takes)."""
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresIndex(RowsWithoutData):
    """An `Index` in the ``results`` table of a PostgreSQL database.

    Parameters
    ----------
    database : PostgresDatabase
        The store's database (shared with its `PostgresLedger`).

    Examples
    --------
    Made by `open_store` for a ``postgresql://`` URL::

        store = open_store("postgresql://me@db.example.org/cache", blobs="/shared/blobs")
        store.index  # PostgresIndex('postgresql://me@db.example.org/cache')
    """

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        self.blobs_present: Callable[[list[str]], set[str]] | None = None
        """Which of some data versions have a blob (the store's blob store, once opened):
        `put_many` checks it under the blob lock, so no row commits naming a deleted blob."""

    def __repr__(self) -> str:
        return f"PostgresIndex({self.database.url!r})"

    # -- look-ups -------------------------------------------------------------------------

    def get(self, key: str) -> Record | Missing:
        """The record stored under ``key``, or ``MISSING`` (one primary-key query)."""
        row = self.database.read_one(_GET, (key,))
        return MISSING if row is None else _record(key, row)

    def data_version_of(self, key: str) -> str | Missing:
        """Just the data version under ``key``: the single cache-hit query."""
        row = self.database.read_one(_GET_VERSION, (key,))
        return MISSING if row is None else str(row[0])

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys``; one query per `PG_CHUNK` keys."""
        found: dict[str, Record] = {}
        sql = f"SELECT {_COLUMNS} FROM results WHERE key = ANY(%s)"
        for chunk in chunks(dict.fromkeys(keys), PG_CHUNK):
            for row in self.database.read(sql, (chunk,)):
                found[row[0]] = _record(row[0], row[1:])
        return found

    def data_versions_of(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> data version of the stored ``keys``; one query per `PG_CHUNK` keys."""
        found: dict[str, str] = {}
        sql = "SELECT key, data_version FROM results WHERE key = ANY(%s)"
        for chunk in chunks(dict.fromkeys(keys), PG_CHUNK):
            found.update(self.database.read(sql, (chunk,)))
        return found

    def keys_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` stored keys that start with ``prefix``, in key order."""
        sql = 'SELECT key FROM results WHERE left(key, %s) = %s ORDER BY key COLLATE "C" LIMIT %s'
        return [key for (key,) in self.database.read(sql, (len(prefix), prefix, limit))]

    def latest_for_node(self, node: str) -> Record | Missing:
        """The most recently created record of ``node`` (the later insert wins a tie)."""
        sql = (
            f"SELECT {_COLUMNS} FROM results WHERE node = %s "
            "ORDER BY created DESC, seq DESC LIMIT 1"
        )
        row = self.database.read_one(sql, (node,))
        return MISSING if row is None else _record(row[0], row[1:])

    def latest_versions(self, nodes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Node label -> (key, data version) of its latest record, in bulk."""
        return {node: (key, dv) for node, (key, dv, _) in self.latest_entries(nodes).items()}

    def latest_entries(self, nodes: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Node label -> (key, data version, duration) of its latest record, in bulk."""
        sql = (
            "SELECT DISTINCT ON (node) node, key, data_version, duration FROM results "
            "WHERE node = ANY(%s) ORDER BY node, created DESC, seq DESC"
        )
        found: dict[str, tuple[str, str, float]] = {}
        for chunk in chunks(dict.fromkeys(nodes), PG_CHUNK):
            for node, key, dv, took in self.database.read(sql, (chunk,)):
                found[node] = (key, dv, took)
        return found

    def records(self) -> Iterator[Record]:
        """Every record in creation order (ties in insertion order)."""
        sql = f"SELECT {_COLUMNS} FROM results ORDER BY created, seq"
        for row in self.database.read(sql):
            yield _record(row[0], row[1:])

    def keys_for_data_version(self, data_version: str) -> list[str]:
        """The keys whose result is ``data_version``."""
        sql = "SELECT key FROM results WHERE data_version = %s ORDER BY seq"
        return [key for (key,) in self.database.read(sql, (data_version,))]

    def raw_rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(seq, row) of every row as stored, unchecked: what ``verify`` inspects."""
        for row in self.database.read(f"SELECT seq, {_COLUMNS} FROM results ORDER BY seq"):
            yield row[0], tuple(row[1:])

    def __len__(self) -> int:
        return int(self.database.read_one("SELECT count(*) FROM results")[0])

    # -- writes ---------------------------------------------------------------------------

    def put(self, record: Record) -> None:
        """Insert or replace the record under ``record.key``."""
        self.put_many([record])

    def put_many(self, records: Iterable[Record]) -> None:
        """Insert or replace many records: one statement per `PG_CHUNK`, then one NOTIFY."""
        self._put(records, None)

    def put_saved(self, records: Iterable[Record]) -> None:
        """Commit the rows of results whose blobs were just written (what a save commits).

        As `put_many`, holding the blob lock shared, and only once
        `blobs_present` confirms the records' blobs (and those they reference)
        are there: garbage collection beside this save (which holds the lock
        exclusively while it deletes blobs no result names) cannot delete a
        blob between that check and this commit.

        Raises
        ------
        BlobsVanished
            Some records' blobs were deleted since they were written (a garbage
            collection beside this save); nothing was committed, the caller
            writes them again.
        """
        self._put(records, self.blobs_present)

    def _put(
        self, records: Iterable[Record], present: Callable[[list[str]], set[str]] | None
    ) -> None:
        rows = [_storable(record_row(record)) for record in records]
        if not rows:
            return

        def write(conn: Any) -> None:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_BLOB_LOCK,))
            if present is not None:
                own = list(dict.fromkeys(row[1] for row in rows))
                refs = [ref for (ref,) in conn.execute(_REFS_OF, (own,))]
                gone = set(own + refs) - present(own + refs)
                if gone:
                    raise BlobsVanished(sorted(gone), sorted(gone.intersection(refs)))
            for chunk in chunks(rows, PG_CHUNK):
                conn.execute(_UPSERT, _columns(chunk))
            conn.execute(_NOTIFY)

        self.database.write(write)

    def names(self, data_versions: list[str]) -> set[str]:
        """Which of ``data_versions`` a stored result names or references now."""
        found: set[str] = set()
        for chunk in chunks(dict.fromkeys(data_versions), PG_CHUNK):
            found.update(dv for (dv,) in self.database.read(_NAMES, {"dvs": chunk}))
        return found

    def hold(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` holding the blob lock exclusively: no save commits meanwhile."""

        def run(conn: Any) -> T:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_BLOB_LOCK,))
            return operation()

        return self.database.write(run)

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under ``keys``; absent keys are ignored."""
        self._delete_where("key = ANY(%s)", list(dict.fromkeys(keys)))

    def delete_raw(self, refs: Iterable[int]) -> None:
        """Delete rows by the ``seq`` values `raw_rows` gave."""
        self._delete_where("seq = ANY(%s)", list(refs))

    def _delete_where(self, condition: str, values: list[Any]) -> None:
        if not values:
            return

        def write(conn: Any) -> None:
            for chunk in chunks(values, PG_CHUNK):
                conn.execute(f"DELETE FROM results WHERE {condition}", (chunk,))

        self.database.write(write)

    def delete_unchanged(self, records: Iterable[Record]) -> None:
        """Remove these records, each only if its row is still the one read (same ``created``)."""
        pairs = [(rec.key, rec.created) for rec in records]
        if not pairs:
            return
        sql = (
            "DELETE FROM results AS r USING unnest(%s::text[], %s::float8[]) AS d(key, created) "
            "WHERE r.key = d.key AND r.created = d.created"
        )

        def write(conn: Any) -> None:
            for chunk in chunks(pairs, PG_CHUNK):
                conn.execute(sql, _columns(chunk))

        self.database.write(write)

    # -- references -----------------------------------------------------------------------

    def put_refs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (result data version, referenced blob) pairs."""
        rows = list(dict.fromkeys(pairs))
        if not rows:
            return
        sql = (
            "INSERT INTO refs (data_version, ref) SELECT * FROM unnest(%s::text[], %s::text[]) "
            "ON CONFLICT DO NOTHING"
        )

        def write(conn: Any) -> None:
            for chunk in chunks(rows, PG_CHUNK):
                conn.execute(sql, _columns(chunk))

        self.database.write(write)

    def refs(self) -> dict[str, set[str]]:
        """Result data version -> the blobs it references."""
        found: dict[str, set[str]] = {}
        for dv, ref in self.database.read("SELECT data_version, ref FROM refs"):
            found.setdefault(dv, set()).add(ref)
        return found

    def referencing(self, ref: str) -> list[str]:
        """The keys of the results that reference the blob ``ref``."""
        sql = (
            "SELECT key FROM results WHERE data_version IN "
            "(SELECT data_version FROM refs WHERE ref = %s) ORDER BY seq"
        )
        return [key for (key,) in self.database.read(sql, (ref,))]

    def drop_unused_refs(self) -> None:
        """Forget the references of data versions no result has any more."""
        sql = (
            "DELETE FROM refs WHERE NOT EXISTS "
            "(SELECT 1 FROM results WHERE results.data_version = refs.data_version)"
        )
        self.database.write(lambda conn: conn.execute(sql))

    # -- what this index does not do: rows hold no result bytes, no local file --------------

    def put_sharing_data(self, records: Iterable[Record]) -> None:
        """Insert records naming stored results: `put_many` (rows hold no result bytes)."""
        self.put_many(records)

    def save_with(
        self, blobs: BlobStore, items: list[tuple[Record, Any]], now: float
    ) -> list[Record]:
        """Blobs first, then the rows (`save_apart`): the blobs live outside this database.

        The rows commit through `put_saved`, which checks under the blob lock that
        their blobs are still there; blobs a garbage collection deleted meanwhile
        are written again (`SAVE_ATTEMPTS` times at most). Referenced blobs only
        their writer can put back: `BlobsVanished` naming them goes to the caller
        (the session writer).
        """
        for attempt in range(SAVE_ATTEMPTS):
            try:
                return save_apart(self, blobs, items, now, commit=self.put_saved)
            except BlobsVanished as exc:
                if exc.missing_refs or attempt == SAVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def snapshot(self) -> AbstractContextManager[None]:
        """A block with nothing to hold: each read is its own statement."""
        return nullcontext()

    def locked(self, operation: Callable[[], T]) -> T:
        """``operation()``: each write it makes is its own transaction, and deletes re-check
        what they remove in that transaction (`delete_unchanged`)."""
        return operation()

    def integrity_problem(self) -> tuple[str, str] | None:
        """None: the server checks its own storage."""
        return None

    def disk_bytes(self) -> int:
        """0: the tables live on the server, not in local files."""
        return 0

    def make_ledger(self) -> PostgresLedger:
        """The `PostgresLedger` in this index's database (claims check ``results``)."""
        return PostgresLedger(self.database)

    def close(self) -> None:
        """Close this process's connections; using the index again reopens one."""
        self.database.close()


def open_postgres(
    url: str, *, read_only: bool = False, create: bool = False
) -> tuple[PostgresIndex, PostgresLedger]:
    """The index and ledger of the store in the PostgreSQL database at ``url``.

    See `PostgresDatabase` for ``read_only``, ``create`` and what is refused.
    """
    index = PostgresIndex(PostgresDatabase(url, read_only=read_only, create=create))
    return index, index.make_ledger()
