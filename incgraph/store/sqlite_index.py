"""The SQLite index: cache key -> `Record`.

Design note
-----------
`SqliteIndex.get` is the engine's hot path (one call per node of a
rerun), so it skips every layer it can: this thread's connection and a reused
cursor come straight from a ``threading.local``, the statement text is a
constant (SQLite's statement cache keeps it prepared), and the row is turned
into a `Record` positionally. Everything else may be slower and clearer.

Bulk writes are one ``BEGIN IMMEDIATE`` transaction per chunk of
``settings.index_put_chunk`` rows (`incgraph.settings`). Random 128-bit keys
scatter inserts over every leaf of the key and data-version indexes, so each
commit rewrites most of their pages into the WAL; a big chunk pays that once per
50k rows instead of once per 1k (measured: 37k rows/s with 1k-row chunks, 83k
with 10k, 127k with 50k). A chunk holds the write lock for about half a second;
readers are never blocked (WAL), and other writers wait (``busy_timeout``) in
between chunks.
Bulk reads use ``IN (...)`` lists of at most ``settings.index_get_chunk`` keys (below
SQLite's bound-variable limit).

``records()`` pages through the table by ``rowid`` instead of holding one
cursor open, so it never pins an old WAL snapshot while the caller works, and
sorts the rows by ``(created, rowid)`` in memory: there is no index on
``created`` (schema version 3 dropped it; one index less to update per insert),
and every caller reads the whole table anyway.

Results kept in their row (schema version 3). A result whose pickle is at most
``settings.row_inline_limit_bytes`` is written by
`save_many` into its ``results`` row (``checksum``
and ``data`` columns) instead of a ``blobs`` row: one row per small result
instead of two. The row and its bytes are one insert, so a row never names
partial bytes. Every row naming such a data version carries its own copy
(`SqliteIndex.put_sharing_data` copies it for a second key), so dropping
one row never takes another's value with it. `SqliteIndex.row_value`
reads one back the way an inline blob is read: checksum first, never served
when it fails, then unpickled.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from itertools import groupby
from typing import Any, TypeVar

from incgraph.errors import ExtraNotInstalledError, StoreCorruptError, StoreError
from incgraph.sentinels import MISSING, Missing
from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.codecs import checksum_of, decode
from incgraph.store.failure import corrupt_index_error, store_error
from incgraph.store.file_blobs import FileBlobStore
from incgraph.store.protocols import BlobStore, Record, chunks, refs_of, save_apart, with_size
from incgraph.store.schema import REFS_SINCE, ROW_DATA_SINCE
from incgraph.store.sqlite_file import SqliteFile
from incgraph.store.sqlite_ledger import SqliteLedger

__all__ = ["SqliteIndex"]

T = TypeVar("T")

_FIELDS = (
    "data_version, node, processor, code_version, init_version, inputs, created, duration, size"
)
_GET = f"SELECT {_FIELDS} FROM results WHERE key = ?"
_GET_VERSION = "SELECT data_version FROM results WHERE key = ?"
_COLUMNS = (
    "key, data_version, node, processor, code_version, init_version, inputs, created, duration, "
    "size"
)
_PUT = f"INSERT OR REPLACE INTO results ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# a row holding its result's bytes; the other rows leave checksum and data to their
# default (NULL): binding None costs sqlite3 an adapter look-up per parameter
_PUT_DATA = (
    f"INSERT OR REPLACE INTO results ({_COLUMNS}, checksum, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# a row copying the bytes of a row with the same data version, if one has them
_PUT_SHARING = (
    f"INSERT OR REPLACE INTO results ({_COLUMNS}, checksum, data) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, s.checksum, s.data FROM (SELECT 1) "
    "LEFT JOIN (SELECT checksum, data FROM results WHERE data_version = ?2 "
    "AND data IS NOT NULL LIMIT 1) AS s ON 1"
)
_ROW_DATA = "SELECT checksum, data FROM results WHERE data_version = ? AND data IS NOT NULL LIMIT 1"
_LATEST = (
    f"SELECT key, {_FIELDS} FROM results WHERE node = ? ORDER BY created DESC, rowid DESC LIMIT 1"
)
_LATEST_MANY = (
    "SELECT n.value, r.key, r.data_version, r.duration FROM json_each(?) AS n JOIN results AS r "
    "ON r.rowid = (SELECT rowid FROM results WHERE node = n.value "
    "ORDER BY created DESC, rowid DESC LIMIT 1)"
)
_PAGE = f"SELECT rowid, key, {_FIELDS} FROM results WHERE rowid > ? ORDER BY rowid LIMIT ?"
_loads = json.loads


def _not_json(value: Any) -> Any:
    raise TypeError(f"an input data version must be a str, got {type(value).__name__}")


def _json_dumps() -> Any:
    """Compact JSON of an inputs dict (str -> str): CPython's C encoder, made once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs
    as much as the encoding of a small dict itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # not CPython: the pure-Python encoder
        return json.JSONEncoder(separators=(",", ":")).encode
    encoder = make(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return lambda obj: "".join(encoder(obj, 0))


_dumps = _json_dumps()


def _record(key: str, row: Sequence[Any]) -> Record:
    """A Record from ``key`` and a row in `_FIELDS` order."""
    inputs = _loads(row[5])
    return Record(key, row[0], row[1], row[2], row[3], row[4], inputs, row[6], row[7], row[8])


def record_row(
    record: Record, size: int | None = None, created: float | None = None
) -> tuple[Any, ...]:
    """The ``results`` row of ``record``, optionally with another ``size`` and ``created``."""
    inputs = record.inputs
    return (
        record.key,
        record.data_version,
        record.node,
        record.processor,
        record.code_version,
        record.init_version,
        _dumps(inputs if type(inputs) is dict else dict(inputs)),
        record.created if created is None else created,
        record.duration,
        record.size if size is None else size,
    )


def stored_row(record: Record, checksum: str, data: bytearray) -> tuple[Any, ...]:
    """The ``results`` row of ``record`` holding its result's bytes ``data`` (xxh3-64 ``checksum``).

    Examples
    --------
    >>> row = stored_row(Record("k", "dv", "n", "p", "c", "i", size=2), "ab" * 8, bytearray(b"xy"))
    >>> len(row), row[-1]
    (12, bytearray(b'xy'))
    """
    return (*record_row(record), checksum, data)


def _by_created(row: Sequence[Any]) -> tuple[float, int]:
    return row[8], row[0]


def _by_created_any_type(row: Sequence[Any]) -> tuple[int, Any, int]:
    """SQLite's order (NULL, numbers, text, blobs) for a ``created`` that is not a number."""
    created = row[8]
    if created is None:
        return 0, 0, row[0]
    if isinstance(created, (int, float)):
        return 1, created, row[0]
    return (2, created, row[0]) if isinstance(created, str) else (3, bytes(created), row[0])


_PUT_REF = "INSERT OR IGNORE INTO refs (data_version, ref) VALUES (?, ?)"


def _execute_many(sql: str, rows: list[Any], conn: sqlite3.Connection) -> None:
    conn.executemany(sql, rows)


class SqliteIndex:
    """An `Index` in the ``results`` table of an SQLite file.

    Parameters
    ----------
    file : SqliteFile or path
        The database (shared with a `FileBlobStore`
        in a store made by `open_store`), or a path to open.
    read_only : bool
        Only used when ``file`` is a path.
    settings : Settings
        Where its chunk sizes come from (``index_put_chunk``, ``index_get_chunk``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> index = SqliteIndex(pathlib.Path(tempfile.mkdtemp()) / "index.sqlite")
    >>> index.put(Record("k1", "dv1", node="2", processor="m.Add", code_version="c",
    ...                  init_version="i", inputs={"a": "dv0"}, created=1.0))
    >>> index.get("k1").inputs
    {'a': 'dv0'}
    >>> index.get("nope")
    MISSING
    >>> index.close()
    """

    def __init__(
        self,
        file: SqliteFile | str | os.PathLike[str],
        *,
        read_only: bool = False,
        settings: Settings = DEFAULT_SETTINGS,
    ):
        self.file = (
            file
            if isinstance(file, SqliteFile)
            else SqliteFile(file, read_only=read_only, settings=settings)
        )
        self.settings = settings

    def __repr__(self) -> str:
        return f"SqliteIndex({str(self.file.path)!r})"

    def get(self, key: str) -> Record | Missing:
        """The record stored under ``key``, or ``MISSING`` (one indexed query)."""
        try:
            cur = self.file._local.cursor
        except AttributeError:
            cur = self.file.cursor()
        try:
            row = cur.execute(_GET, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if row is None:
            return MISSING
        data_version, node, processor, code_version, init_version, inputs, created, took, size = row
        return Record(
            key,
            data_version,
            node,
            processor,
            code_version,
            init_version,
            _loads(inputs),
            created,
            took,
            size,
        )

    def data_version_of(self, key: str) -> str | Missing:
        """Just the data version under ``key`` (no JSON, no Record): the cache-hit hot path."""
        try:
            cur = self.file._local.cursor
        except AttributeError:
            cur = self.file.cursor()
        try:
            row = cur.execute(_GET_VERSION, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return MISSING if row is None else str(row[0])

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys``; absent keys are left out."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, Record] = {}
        conn = self.file.connection()
        try:
            for chunk in chunks(unique, self.settings.index_get_chunk):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT key, {_FIELDS} FROM results WHERE key IN ({marks})"
                for key, dv, node, proc, code, init, inputs, created, took, size in conn.execute(
                    sql, chunk
                ):
                    inputs = _loads(inputs)
                    found[key] = Record(
                        key, dv, node, proc, code, init, inputs, created, took, size
                    )
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return found

    def data_versions_of(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> data version of the stored ``keys`` (no JSON, no Record), in bulk."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        conn = self.file.connection()
        try:
            for chunk in chunks(unique, self.settings.index_get_chunk):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT key, data_version FROM results WHERE key IN ({marks})"
                found.update(conn.execute(sql, chunk).fetchall())
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return found

    def keys_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` stored keys that start with ``prefix``, in key order."""
        sql = (
            "SELECT key FROM results WHERE key >= ? AND key < ? AND substr(key, 1, ?) = ? "
            "ORDER BY key LIMIT ?"
        )
        params = (prefix, prefix + "\U0010ffff", len(prefix), prefix, limit)
        try:
            rows = self.file.connection().execute(sql, params)
            return [key for (key,) in rows]
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def put(self, record: Record) -> None:
        """Insert or replace the record under ``record.key``."""
        row = record_row(record)
        self.file.write(lambda conn: conn.execute(_PUT, row))

    def put_many(self, records: Iterable[Record]) -> None:
        """Insert or replace many records: one transaction per ``index_put_chunk`` rows."""
        for chunk in chunks(map(record_row, records), self.settings.index_put_chunk):
            self.file.write(partial(_execute_many, _PUT, chunk))

    def insert_rows(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert or replace ready-made rows in the caller's transaction, in order.

        Each row is a `record_row` (10 values) or a `stored_row`
        (12: with its result's bytes). For a caller that writes other rows of
        this file in the same transaction (`incgraph.store.Store.save_many`
        writes blob rows first). One ``executemany`` per run of rows of one kind.
        """
        for width, run in groupby(rows, len):
            conn.executemany(_PUT_DATA if width == 12 else _PUT, run)

    def put_sharing_data(self, records: Iterable[Record]) -> None:
        """Insert or replace records, each copying the bytes a row of its data version holds.

        For a second key of a stored result (the flow's ForEach memo): when the
        result is kept in its row, the new row gets its own copy (one statement
        per record, no round trip through Python), so it stays loadable when
        the first row is dropped. A result kept as a blob is shared as usual.
        """
        for chunk in chunks(map(record_row, records), self.settings.index_put_chunk):
            self.file.write(partial(_execute_many, _PUT_SHARING, chunk))

    def row_value(self, data_version: str, *, signed: bool = False) -> Any:
        """The value a row holds for ``data_version``, or ``MISSING`` if no row holds one.

        Read like an inline blob: the bytes must match their xxh3-64 checksum,
        then they are unpickled. Served by the ``data_version`` index.

        Parameters
        ----------
        data_version : str
        signed : bool
            The store signs its blobs: a row's bytes carry no signature, so
            they are refused (rows hold bytes only in unsigned stores).

        Raises
        ------
        StoreCorruptError
            The bytes fail their checksum, cannot be unpickled, or ``signed``.
            They are not served; the caller drops the rows naming them.
        """
        if self.file.read_only and self.file.schema_version < ROW_DATA_SINCE:
            return MISSING
        try:
            found = self.file.cursor().execute(_ROW_DATA, (data_version,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        if found is None:
            return MISSING
        digest, data = found
        if signed:
            raise self._corrupt(
                data_version, "it has no HMAC signature (kept in its row, which is never signed)"
            )
        if not isinstance(data, bytes) or checksum_of(data) != digest:
            raise self._corrupt(data_version, "its bytes do not match their checksum")
        try:
            return decode("pickle", data)
        except ExtraNotInstalledError:  # the bytes are sound: this Python lacks a library
            raise
        except Exception as exc:
            raise self._corrupt(data_version, f"it cannot be decoded ({exc!r})") from exc

    def _corrupt(self, data_version: str, reason: str) -> StoreCorruptError:
        if self.file.read_only:
            action = (
                "it is not served; run `incgraph verify` (or open the store writable) "
                "to drop it, so it is recomputed"
            )
        else:
            action = "its rows are dropped and it will be recomputed"
        return StoreCorruptError(
            f"result {data_version} (kept in its row of {self.file.path}) is corrupt: "
            f"{reason}; {action}"
        )

    def row_data(self, *, page: int = 1000) -> Iterator[tuple[int, str, Any, Any, Any]]:
        """(rowid, key, data version, checksum, bytes) of every row holding its result's bytes.

        Unchecked, as SQLite holds them (for ``verify``), in rowid order.
        """
        if self.file.schema_version < ROW_DATA_SINCE:
            return
        sql = (
            "SELECT rowid, key, data_version, checksum, data FROM results "
            "WHERE rowid > ? AND data IS NOT NULL ORDER BY rowid LIMIT ?"
        )
        for rows in self._pages(sql, page):
            yield from rows

    def row_bytes(self) -> dict[str, int]:
        """Key -> bytes of the result kept in its row, for every row holding one."""
        if self.file.schema_version < ROW_DATA_SINCE:
            return {}
        sql = "SELECT key, length(data) FROM results WHERE data IS NOT NULL"
        try:
            return dict(self.file.connection().execute(sql).fetchall())
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def holds_data(self, key: str) -> bool:
        """Whether the row of ``key`` holds its result's bytes (False when there is no row)."""
        if self.file.schema_version < ROW_DATA_SINCE:
            return False
        sql = "SELECT data IS NOT NULL FROM results WHERE key = ?"
        try:
            found = self.file.cursor().execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return bool(found and found[0])

    def latest_for_node(self, node: str) -> Record | Missing:
        """The most recently created record of ``node`` (the later insert wins a tie)."""
        try:
            row = self.file.cursor().execute(_LATEST, (node,)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return MISSING if row is None else _record(row[0], row[1:])

    def latest_versions(self, nodes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Node label -> (key, data version) of its latest record (one query per 500 labels)."""
        return {node: (key, dv) for node, (key, dv, _) in self.latest_entries(nodes).items()}

    def latest_entries(self, nodes: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Node label -> (key, data version, duration) of its latest record, in bulk."""
        labels = list(dict.fromkeys(nodes))
        found: dict[str, tuple[str, str, float]] = {}
        conn = self.file.connection()
        try:
            for chunk in chunks(labels, self.settings.index_get_chunk):
                for node, key, dv, took in conn.execute(_LATEST_MANY, (json.dumps(chunk),)):
                    found[node] = (key, dv, took)
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return found

    def records(self, *, page: int = 1000) -> Iterator[Record]:
        """Every record in creation order (ties in insertion order).

        The table is read ``page`` rows per query in rowid order, then sorted by
        ``(created, rowid)`` in memory: no index serves creation order (see the
        module note), and every caller reads all records anyway.
        """
        rows = [row for chunk in self._pages(_PAGE, page) for row in chunk]
        try:
            rows.sort(key=_by_created)
        except TypeError:  # a damaged row's created is not a number: SQLite's order
            rows.sort(key=_by_created_any_type)
        for row in rows:
            yield _record(row[1], row[2:])

    def keys_for_data_version(self, data_version: str) -> list[str]:
        """The keys whose result is ``data_version`` (uses the ``data_version`` index)."""
        sql = "SELECT key FROM results WHERE data_version = ? ORDER BY rowid"
        try:
            return [key for (key,) in self.file.connection().execute(sql, (data_version,))]
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def raw_rows(self, *, page: int = 1000) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(rowid, row) of every row as SQLite holds it, unchecked: what ``verify`` inspects.

        ``row`` is (key, data_version, node, processor, code_version, init_version,
        inputs JSON text, created, duration, size), whatever their types turned out to be.
        """
        for rows in self._pages(_PAGE, page):
            for row in rows:
                yield row[0], tuple(row[1:])

    def _pages(self, sql: str, page: int) -> Iterator[list[Any]]:
        """The rows of ``sql`` a page at a time (``rowid`` first; parameters: after, limit)."""
        after = -1
        while True:
            try:
                rows = self.file.connection().execute(sql, (after, page)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.file.path) from exc
            if rows:
                yield rows
            if len(rows) < page:
                return
            after = rows[-1][0]

    def delete_raw(self, refs: Iterable[int]) -> None:
        """Delete rows by the rowids `raw_rows` gave (works whatever the key holds)."""
        rows = [(ref,) for ref in refs]
        if rows:
            self.file.write(partial(_execute_many, "DELETE FROM results WHERE rowid = ?", rows))

    def __len__(self) -> int:
        try:
            return int(self.file.cursor().execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under ``keys``; absent keys are ignored."""
        for chunk in chunks(((key,) for key in keys), self.settings.index_put_chunk):
            self.file.write(partial(_execute_many, "DELETE FROM results WHERE key = ?", chunk))

    def delete_unchanged(self, records: Iterable[Record]) -> None:
        """Remove these records, each only if its row is still the one read (same creation
        time): a result saved again under the same key meanwhile stays."""
        rows = ((rec.key, rec.created) for rec in records)
        sql = "DELETE FROM results WHERE key = ? AND created = ?"
        for chunk in chunks(rows, self.settings.index_put_chunk):
            self.file.write(partial(_execute_many, sql, chunk))

    # -- references (schema version 4) ----------------------------------------------------

    def insert_refs(self, conn: sqlite3.Connection, pairs: list[tuple[str, str]]) -> None:
        """Record (result data version, referenced blob) pairs in the caller's transaction."""
        if pairs:
            conn.executemany(_PUT_REF, pairs)

    def put_refs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (result data version, referenced blob) pairs."""
        for chunk in chunks(pairs, self.settings.index_put_chunk):
            self.file.write(partial(_execute_many, _PUT_REF, chunk))

    def refs(self) -> dict[str, set[str]]:
        """Result data version -> the blobs it references (files before version 4: none)."""
        if self.file.schema_version < REFS_SINCE:
            return {}
        found: dict[str, set[str]] = {}
        try:
            for dv, ref in self.file.connection().execute("SELECT data_version, ref FROM refs"):
                found.setdefault(dv, set()).add(ref)
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return found

    def referencing(self, ref: str) -> list[str]:
        """The keys of the results that reference the blob ``ref``."""
        if self.file.schema_version < REFS_SINCE:
            return []
        sql = (
            "SELECT key FROM results WHERE data_version IN "
            "(SELECT data_version FROM refs WHERE ref = ?)"
        )
        try:
            return [key for (key,) in self.file.connection().execute(sql, (ref,))]
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    def drop_unused_refs(self) -> None:
        """Forget the references of data versions no result has any more."""
        sql = (
            "DELETE FROM refs WHERE NOT EXISTS "
            "(SELECT 1 FROM results WHERE results.data_version = refs.data_version)"
        )
        self.file.write(lambda conn: conn.execute(sql))

    # -- saving, transactions, the file ----------------------------------------------------

    def save_with(
        self, blobs: BlobStore, items: list[tuple[Record, Any]], now: float
    ) -> list[Record]:
        """Store results: with the blob store of this file in one transaction per chunk.

        When ``blobs`` is the `FileBlobStore` of this very database (every store
        `open_store` makes), the blob rows and the result rows of up to
        ``settings.index_put_chunk`` results commit together, blob rows first (blob files are
        renamed into place before): a crash leaves both or neither. A result whose
        pickle is at most ``settings.row_inline_limit_bytes`` (no signer) gets no blob row:
        its bytes and checksum go into its own row. With any other blob store,
        `save_apart`.
        """
        if not (isinstance(blobs, FileBlobStore) and blobs.file is self.file):
            return save_apart(self, blobs, items, now)
        saved: list[Record] = []
        step = self.settings.index_put_chunk
        for start in range(0, len(items), step):
            saved += self._save_chunk(blobs, items[start : start + step], now)
        return saved

    def _save_chunk(
        self, blobs: FileBlobStore, items: list[tuple[Record, Any]], now: float
    ) -> list[Record]:
        """Blob rows, then result rows, of ``items`` in one transaction of the shared file."""
        saved: list[Record] = []

        def write_index(
            conn: sqlite3.Connection, sizes: list[int], held: Mapping[str, tuple[str, bytearray]]
        ) -> None:
            pairs = zip(items, sizes, strict=True)
            saved[:] = [
                with_size(record, size, record.created or now) for (record, _), size in pairs
            ]
            rows = []
            for record in saved:
                data = held.get(record.data_version) if held else None
                rows.append(record_row(record) if data is None else stored_row(record, *data))
            self.insert_rows(conn, rows)
            refs = refs_of(items)
            if refs:
                self.insert_refs(conn, refs)
                _check_refs_stored(conn, items, refs)

        blobs.put_many(
            [(record.data_version, value) for record, value in items],
            also=write_index,
            row_limit=self.settings.row_inline_limit_bytes,
        )
        return saved

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction of this thread: every read inside sees one state (WAL)."""
        with self.file.snapshot():
            yield

    def locked(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` inside one write transaction (directly when read-only)."""
        if self.file.read_only:
            return operation()
        return self.file.write(lambda conn: operation())

    def integrity_problem(self) -> tuple[str, str] | None:
        """(the file, what is wrong) if ``PRAGMA quick_check`` fails on it, else None."""
        try:
            rows = self.file.connection().execute("PRAGMA quick_check").fetchall()
        except sqlite3.Error as exc:
            detail: object = store_error(exc, self.file.path)
        except StoreError as exc:
            detail = exc
        else:
            messages = [str(row[0]) for row in rows]
            if messages == ["ok"]:
                return None
            detail = corrupt_index_error(self.file.path, "; ".join(messages[:5]))
        return str(self.file.path), str(detail)

    def disk_bytes(self) -> int:
        """Bytes of the database file and its ``-wal`` and ``-shm`` companions."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                total += os.stat(f"{self.file.path}{suffix}").st_size
        return total

    def make_ledger(self) -> SqliteLedger:
        """The `SqliteLedger` in this index's file (claims check results in one transaction)."""
        return SqliteLedger(self.file)

    def close(self) -> None:
        """Close this process's connections; using the index again reopens one."""
        self.file.close()


def _check_refs_stored(
    conn: sqlite3.Connection, items: list[tuple[Record, Any]], refs: list[tuple[str, str]]
) -> None:
    """Refuse to commit results that reference blobs which are not stored (any more)."""
    wanted = list(dict.fromkeys(ref for _, ref in refs))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        sql = f"SELECT data_version FROM blobs WHERE data_version IN ({','.join('?' * len(chunk))})"
        found.update(dv for (dv,) in conn.execute(sql, chunk))
    missing = [ref for ref in wanted if ref not in found]
    if missing:
        owner = {ref: dv for dv, ref in refs}
        nodes = {rec.data_version: rec.node for rec, _ in items}
        error = StoreError(
            f"the result of node {nodes.get(owner[missing[0]], '?')!r} references blob "
            f"{missing[0]}, which is not stored (a garbage collection with --grace 0 beside "
            "this run can delete a blob written moments before its result); nothing was "
            "saved: rerun, and give gc a grace period longer than a run's write"
        )
        error.missing_refs = missing  # type: ignore[attr-defined]  # a writer may put them again
        raise error
