"""The ledger (run log, pins, leases) in the index's SQLite file.

Design note
-----------
Every write is one `write`
transaction (``BEGIN IMMEDIATE``, retried while busy). A run costs one
``INSERT`` with two blobs, in the same transaction as the release of the
leases it still holds (`SqliteLedger.end_run`); a claim costs one
transaction for any number of keys: a set-based look at ``results`` first
(stored keys are "done"), then an upsert per remaining key that only
succeeds when the lease is free, expired, or already the claimant's::

    INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
    WHERE leases.expires < :now OR leases.owner = excluded.owner

``changes()`` of that statement says whether the lease is now ours. Both
steps run inside the same write transaction, so no other process can commit
a result or take the lease in between.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from typing import Any

from incgraph.store.failure import store_error
from incgraph.store.ledger import ClaimResult, LeaseState
from incgraph.store.runlog import RunEntry, RunInfo, unpack_keys
from incgraph.store.sqlite_file import SqliteFile

__all__ = ["SqliteLedger"]

_CHUNK = 500
_RUN_FIELDS = "id, kind, label, owner, started, finished, status, hits, computed"
_INSERT_RUN = (
    "INSERT INTO runs (kind, label, owner, started, finished, status, hits, computed, "
    "hit_keys, written_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FINISH_RUN = (
    "UPDATE runs SET finished = ?, status = ?, hits = ?, computed = ?, hit_keys = ?, "
    "written_keys = ? WHERE id = ?"
)
_STORED = "SELECT data_version FROM results WHERE key = ?"
_UPSERT_LEASE = (
    "INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
    "WHERE leases.expires < ? OR leases.owner = excluded.owner"
)


_RELEASE = "DELETE FROM leases WHERE owner = ? AND key IN ({})"


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(items))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _marks(chunk: list[Any]) -> str:
    return ",".join("?" * len(chunk))


def _write_run(conn: sqlite3.Connection, entry: RunEntry, run_id: int | None) -> int:
    """Insert the run (``run_id`` None) or complete the started one; return its id."""
    if run_id is None:
        new_id = conn.execute(_INSERT_RUN, entry.row()).lastrowid
        assert new_id is not None  # an INSERT into a rowid table always sets it
        return new_id
    conn.execute(_FINISH_RUN, entry.finish_row(run_id))
    return run_id


class SqliteLedger:
    """A `Ledger` in the ``runs``, ``pins`` and ``leases`` tables.

    Parameters
    ----------
    file : SqliteFile
        The store's database (the one holding ``results``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ledger = SqliteLedger(SqliteFile(pathlib.Path(tempfile.mkdtemp()) / "index.sqlite"))
    >>> ledger.claim(["k"], "me", expires=2e9, now=1e9).mine
    ['k']
    >>> sorted(ledger.claim(["k"], "you", expires=2e9, now=1e9).theirs)
    ['k']
    >>> ledger.close()
    """

    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.file.path)!r})"

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self.file.connection().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc, self.file.path) from exc

    # -- run log ------------------------------------------------------------------------

    def add_run(self, entry: RunEntry) -> int:
        """Insert a finished run; return its id."""
        return self.file.write(lambda conn: _write_run(conn, entry, None))

    def start_run(self, entry: RunEntry) -> int:
        """Insert a run that is starting; return its id."""
        return self.add_run(entry)

    def finish_run(self, run_id: int, entry: RunEntry) -> None:
        """Complete a started run."""
        self.file.write(lambda conn: _write_run(conn, entry, run_id))

    def end_run(self, entry: RunEntry, run_id: int | None, owner: str, keys: Iterable[str]) -> int:
        """Drop ``owner``'s leases on ``keys`` and write the finished run, in ONE transaction.

        The run is added (``run_id`` None) or the started run ``run_id``
        completed; returns its id. One commit where ``release`` and
        ``add_run`` take two: what closing a run that still holds leases costs.
        """
        chunks = list(_chunks(keys))

        def write(conn: sqlite3.Connection) -> int:
            for chunk in chunks:
                conn.execute(_RELEASE.format(_marks(chunk)), (owner, *chunk))
            return _write_run(conn, entry, run_id)

        return self.file.write(write)

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first."""
        return [RunInfo(*row) for row in self._read(f"SELECT {_RUN_FIELDS} FROM runs ORDER BY id")]

    def run_keys(self, run_ids: Iterable[int]) -> dict[int, tuple[list[str], list[str]]]:
        """Run id -> (keys hit, keys written)."""
        ids = list(dict.fromkeys(run_ids))
        found: dict[int, tuple[list[str], list[str]]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            sql = f"SELECT id, hit_keys, written_keys FROM runs WHERE id IN ({_marks(chunk)})"
            for run_id, hits, written in self._read(sql, chunk):
                found[run_id] = (unpack_keys(hits), unpack_keys(written))
        return found

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs from the log."""
        rows = [(run_id,) for run_id in run_ids]
        if rows:
            self.file.write(lambda conn: conn.executemany("DELETE FROM runs WHERE id = ?", rows))

    # -- pins -----------------------------------------------------------------------------

    def pin(self, keys: Iterable[str], now: float) -> None:
        """Pin keys; a key pinned before keeps its first time."""
        rows = [(key, now) for key in dict.fromkeys(keys)]
        sql = "INSERT INTO pins (key, created) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
        self.file.write(lambda conn: conn.executemany(sql, rows))

    def unpin(self, keys: Iterable[str]) -> None:
        """Unpin keys; absent ones are ignored."""
        rows = [(key,) for key in keys]
        self.file.write(lambda conn: conn.executemany("DELETE FROM pins WHERE key = ?", rows))

    def pins(self) -> dict[str, float]:
        """Pinned key -> when it was pinned."""
        return dict(self._read("SELECT key, created FROM pins ORDER BY created, key"))

    # -- leases -----------------------------------------------------------------------------

    def claim(self, keys: Iterable[str], owner: str, expires: float, now: float) -> ClaimResult:
        """Take the free, expired or own leases on ``keys``; stored keys are ``done``."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return ClaimResult([], {}, {})
        return self.file.write(lambda conn: self._claim(conn, wanted, owner, expires, now))

    @staticmethod
    def _claim(
        conn: sqlite3.Connection, keys: list[str], owner: str, expires: float, now: float
    ) -> ClaimResult:
        done: dict[str, str] = {}
        if len(keys) == 1:  # the serial walk's case: skip building an IN list
            row = conn.execute(_STORED, keys).fetchone()
            if row is not None:
                return ClaimResult([], {}, {keys[0]: row[0]})
        for start in range(0, len(keys) if len(keys) > 1 else 0, _CHUNK):
            chunk = keys[start : start + _CHUNK]
            sql = f"SELECT key, data_version FROM results WHERE key IN ({_marks(chunk)})"
            done.update(conn.execute(sql, chunk).fetchall())
        wanted = [key for key in keys if key not in done]
        # One statement for every upsert; inside this write transaction the leases
        # read back right after say exactly which keys are now ours.
        conn.executemany(_UPSERT_LEASE, [(key, owner, expires, now) for key in wanted])
        ours: set[str] = set()
        theirs = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            sql = f"SELECT key, owner, expires FROM leases WHERE key IN ({_marks(chunk)})"
            for key, holder, until in conn.execute(sql, chunk):
                if holder == owner:
                    ours.add(key)
                else:
                    theirs[key] = LeaseState(key, holder, until)
        return ClaimResult([key for key in wanted if key in ours], theirs, done)

    def renew(self, owner: str, keys: Iterable[str], expires: float) -> None:
        """Push back the expiry of ``owner``'s leases on ``keys``."""
        sql = "UPDATE leases SET expires = ? WHERE owner = ? AND key IN ({})"
        self._write_per_chunk(sql, (expires, owner), keys)

    def release(self, owner: str, keys: Iterable[str]) -> None:
        """Drop ``owner``'s leases on ``keys``."""
        self._write_per_chunk(_RELEASE, (owner,), keys)

    def _write_per_chunk(self, sql: str, params: tuple[Any, ...], keys: Iterable[str]) -> None:
        """Run ``sql`` (``{}`` takes the placeholders) per chunk of keys, in one transaction."""
        chunks = list(_chunks(keys))
        if not chunks:
            return

        def write(conn: sqlite3.Connection) -> None:
            for chunk in chunks:
                conn.execute(sql.format(_marks(chunk)), (*params, *chunk))

        self.file.write(write)

    def lease_states(self, keys: Iterable[str] | None = None) -> dict[str, LeaseState]:
        """The current leases on ``keys`` (every lease when None)."""
        if keys is None:
            rows = self._read("SELECT key, owner, expires FROM leases ORDER BY key")
        else:
            rows = []
            for chunk in _chunks(keys):
                sql = f"SELECT key, owner, expires FROM leases WHERE key IN ({_marks(chunk)})"
                rows += self._read(sql, chunk)
        return {key: LeaseState(key, owner, expires) for key, owner, expires in rows}

    def drop_expired(self, now: float) -> int:
        """Delete leases that expired before ``now``; return how many."""
        sql = "DELETE FROM leases WHERE expires < ?"
        return int(self.file.write(lambda conn: conn.execute(sql, (now,)).rowcount))

    notifies = False
    """Waiters poll: `wait_for_news` only sleeps."""

    def wait_for_news(self, timeout: float) -> bool:
        """Sleep ``timeout`` seconds (nothing here tells of news); return False."""
        time.sleep(timeout)
        return False

    # -- the rest ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the run log, pins and leases."""

        def clear(conn: sqlite3.Connection) -> None:
            for table in ("runs", "pins", "leases"):
                conn.execute(f"DELETE FROM {table}")

        self.file.write(clear)

    def end_thread(self) -> None:
        """Close the calling thread's connection (a helper thread that is about to exit)."""
        self.file.end_thread()

    def close(self) -> None:
        """Close this process's connections (shared with the index)."""
        self.file.close()
