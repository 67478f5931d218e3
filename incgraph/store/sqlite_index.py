"""The SQLite index: cache key -> :class:`~incgraph.store.protocols.Record`.

Design note
-----------
:meth:`SqliteIndex.get` is the engine's hot path (one call per node of a
rerun), so it skips every layer it can: this thread's connection and a reused
cursor come straight from a ``threading.local``, the statement text is a
constant (SQLite's statement cache keeps it prepared), and the row is turned
into a :class:`Record` positionally. Everything else may be slower and clearer.

Bulk writes are one ``BEGIN IMMEDIATE`` transaction per chunk of
:data:`PUT_CHUNK` rows. Random 128-bit keys scatter inserts over every leaf of
the key and data-version indexes, so each commit rewrites most of their pages
into the WAL; a big chunk pays that once per 50k rows instead of once per 1k
(measured: 37k rows/s with 1k-row chunks, 83k with 10k, 127k with 50k). A chunk
holds the write lock for about half a second; readers are never blocked (WAL),
and other writers wait (``busy_timeout``) in between chunks.
Bulk reads use ``IN (...)`` lists of at most :data:`GET_CHUNK` keys (below
SQLite's bound-variable limit).

``records()`` pages through the table by ``(created, rowid)`` instead of holding
one cursor open, so it never pins an old WAL snapshot while the caller works.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any

from incgraph.sentinels import MISSING, Missing
from incgraph.store.failure import store_error
from incgraph.store.protocols import Record
from incgraph.store.sqlite_file import SqliteFile

__all__ = ["GET_CHUNK", "PUT_CHUNK", "SqliteIndex"]

PUT_CHUNK = 50_000
"""Rows written per transaction by :meth:`SqliteIndex.put_many`."""

GET_CHUNK = 500
"""Keys per ``IN (...)`` query in :meth:`SqliteIndex.get_many`."""

_FIELDS = (
    "data_version, node, processor, code_version, init_version, inputs, created, duration, size"
)
_GET = f"SELECT {_FIELDS} FROM results WHERE key = ?"
_GET_VERSION = "SELECT data_version FROM results WHERE key = ?"
_PUT = (
    "INSERT OR REPLACE INTO results (key, data_version, node, processor, code_version, "
    "init_version, inputs, created, duration, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LATEST = (
    f"SELECT key, {_FIELDS} FROM results WHERE node = ? ORDER BY created DESC, rowid DESC LIMIT 1"
)
_LATEST_MANY = (
    "SELECT n.value, r.key, r.data_version, r.duration FROM json_each(?) AS n JOIN results AS r "
    "ON r.rowid = (SELECT rowid FROM results WHERE node = n.value "
    "ORDER BY created DESC, rowid DESC LIMIT 1)"
)
_PAGE = (
    f"SELECT rowid, key, {_FIELDS} FROM results WHERE (created, rowid) > (?, ?) "
    "ORDER BY created, rowid LIMIT ?"
)
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
    """A Record from ``key`` and a row in :data:`_FIELDS` order."""
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


def _execute_many(sql: str, rows: list[Any], conn: sqlite3.Connection) -> None:
    conn.executemany(sql, rows)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class SqliteIndex:
    """An :class:`~incgraph.store.protocols.Index` in the ``results`` table of an SQLite file.

    Parameters
    ----------
    file : SqliteFile or path
        The database (shared with a :class:`~incgraph.store.file_blobs.FileBlobStore`
        in a store made by :func:`~incgraph.store.open_store`), or a path to open.
    read_only : bool
        Only used when ``file`` is a path.

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

    def __init__(self, file: SqliteFile | str | os.PathLike[str], *, read_only: bool = False):
        self.file = file if isinstance(file, SqliteFile) else SqliteFile(file, read_only=read_only)

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
            for chunk in _chunks(unique, GET_CHUNK):
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
            for chunk in _chunks(unique, GET_CHUNK):
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
        """Insert or replace many records: one transaction per :data:`PUT_CHUNK` rows."""
        for chunk in _chunks(map(record_row, records), PUT_CHUNK):
            self.file.write(partial(_execute_many, _PUT, chunk))

    def insert_rows(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert or replace ready-made rows (:func:`record_row` order) in the caller's transaction.

        For a caller that writes other rows of this file in the same transaction
        (:meth:`incgraph.store.Store.save_many` writes blob rows first).
        """
        conn.executemany(_PUT, rows)

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
            for chunk in _chunks(labels, GET_CHUNK):
                for node, key, dv, took in conn.execute(_LATEST_MANY, (json.dumps(chunk),)):
                    found[node] = (key, dv, took)
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc
        return found

    def records(self, *, page: int = 1000) -> Iterator[Record]:
        """Every record in creation order, read ``page`` rows per query."""
        after: tuple[float, int] = (float("-inf"), -1)
        while True:
            try:
                rows = self.file.connection().execute(_PAGE, (*after, page)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.file.path) from exc
            for row in rows:
                yield _record(row[1], row[2:])
            if len(rows) < page:
                return
            last = rows[-1]
            after = (last[8], last[0])

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
        sql = f"SELECT rowid, key, {_FIELDS} FROM results WHERE rowid > ? ORDER BY rowid LIMIT ?"
        after = -1
        while True:
            try:
                rows = self.file.connection().execute(sql, (after, page)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.file.path) from exc
            for row in rows:
                yield row[0], tuple(row[1:])
            if len(rows) < page:
                return
            after = rows[-1][0]

    def delete_raw(self, refs: Iterable[int]) -> None:
        """Delete rows by the rowids :meth:`raw_rows` gave (works whatever the key holds)."""
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
        for chunk in _chunks(((key,) for key in keys), PUT_CHUNK):
            self.file.write(partial(_execute_many, "DELETE FROM results WHERE key = ?", chunk))

    def close(self) -> None:
        """Close this process's connections; using the index again reopens one."""
        self.file.close()
