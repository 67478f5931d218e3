"""The ledger (run log, pins, leases) in PostgreSQL: exactly once across machines.

Design note
-----------
The SQLite ledger decides a claim inside one write transaction that locks
the whole file. PostgreSQL has no such lock, and needs none: a claim is

1. an upsert of the leases that succeeds only on free, expired or own rows::

       INSERT INTO leases (key, owner, expires) SELECT ... ORDER BY key
       ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
       WHERE leases.expires < :now OR leases.owner = excluded.owner
       RETURNING key

   whose ``RETURNING`` rows are the keys now ours (a row another claimant is
   inserting is waited for, then re-checked: the row locks serialize claims);
2. then, in a NEW statement (so a new snapshot, taken after the upsert got
   its locks), a look at ``results`` for the same keys: stored keys are
   ``done``, and the leases just taken on them are dropped again.

A holder releases its lease only after its result's row is committed. So if
step 1 took a lease its holder had released, step 2 sees that holder's
result: a key is never ``mine`` once its result is stored, the guarantee the
SQLite ledger gets from its file lock. Keys are upserted in key order, so two
claimants never wait for each other in a cycle (a deadlock is retried anyway).

Times. Expiry compares times on the server's clock: a caller's times (its own
clock) are shifted by the measured offset between the two
(`PostgresDatabase.clock_offset`) going in, and back coming out, so machines
whose clocks disagree still agree on who holds a lease.

Waking waiters. Saves and releases send ``NOTIFY incgraph_news`` in their
transaction; `PostgresLedger.wait_for_news` blocks on a LISTEN connection of
its own until one arrives or its timeout passes, so a waiter wakes when a
result lands instead of polling. Only a lease that lapses (its holder was
killed) sends nothing: the timeout (a slow poll) finds those.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from incgraph.store.ledger import ClaimResult, LeaseState
from incgraph.store.postgres_database import _INHERITED, NEWS_CHANNEL, PG_CHUNK, PostgresDatabase
from incgraph.store.protocols import chunks
from incgraph.store.runlog import RunEntry, RunInfo, unpack_keys

__all__ = ["PostgresLedger"]

_RUN_FIELDS = "id, kind, label, owner, started, finished, status, hits, computed"
_INSERT_RUN = (
    "INSERT INTO runs (kind, label, owner, started, finished, status, hits, computed, "
    "hit_keys, written_keys) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_FINISH_RUN = (
    "UPDATE runs SET finished = %s, status = %s, hits = %s, computed = %s, hit_keys = %s, "
    "written_keys = %s WHERE id = %s"
)
_UPSERT_LEASES = (
    "INSERT INTO leases (key, owner, expires) "
    "SELECT k, %(owner)s, %(expires)s FROM unnest(%(keys)s::text[]) AS k ORDER BY k "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
    "WHERE leases.expires < %(now)s OR leases.owner = excluded.owner RETURNING key"
)
_DONE_AND_UNLEASE = (
    "WITH done AS (SELECT key, data_version FROM results WHERE key = ANY(%(keys)s)), "
    "dropped AS (DELETE FROM leases WHERE owner = %(owner)s AND key IN (SELECT key FROM done)) "
    "SELECT key, data_version FROM done"
)
_HOLDERS = "SELECT key, owner, expires FROM leases WHERE key = ANY(%s)"
_RELEASE = "DELETE FROM leases WHERE owner = %s AND key = ANY(%s)"
_NOTIFY = f"NOTIFY {NEWS_CHANNEL}"


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A new run's row, a NUL or lone surrogate in its label escaped: PostgreSQL text has none."""
    label = row[1].replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
    return (row[0], label, *row[2:])


def _write_run(conn: Any, entry: RunEntry, run_id: int | None) -> int:
    """Insert the run (``run_id`` None) or complete the started one; return its id."""
    if run_id is None:
        return int(conn.execute(_INSERT_RUN, _without_nul(entry.row())).fetchone()[0])
    conn.execute(_FINISH_RUN, entry.finish_row(run_id))
    return run_id


class PostgresLedger:
    """A `Ledger` in the ``runs``, ``pins`` and ``leases`` tables of PostgreSQL.

    Parameters
    ----------
    database : PostgresDatabase
        The store's database (the one holding ``results``).

    Examples
    --------
    Made by `open_store` for a ``postgresql://`` URL; a claim then works across
    machines::

        store = open_store("postgresql://me@db.example.org/cache", blobs="/shared/blobs")
        store.lessee().claim_many(["k"]).mine  # ['k'] on one machine, [] on the others
    """

    notifies = True
    """`wait_for_news` wakes when a result is saved or a lease released elsewhere."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        self._listen_lock = threading.Lock()
        self._listener: Any = None
        self._listener_pid = os.getpid()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.database.url!r})"

    # -- run log ------------------------------------------------------------------------

    def add_run(self, entry: RunEntry) -> int:
        """Insert a finished run; return its id."""
        return self.database.write(lambda conn: _write_run(conn, entry, None))

    def start_run(self, entry: RunEntry) -> int:
        """Insert a run that is starting; return its id."""
        return self.add_run(entry)

    def finish_run(self, run_id: int, entry: RunEntry) -> None:
        """Complete a started run."""
        self.database.write(lambda conn: _write_run(conn, entry, run_id))

    def end_run(self, entry: RunEntry, run_id: int | None, owner: str, keys: Iterable[str]) -> int:
        """Drop ``owner``'s leases on ``keys`` and write the finished run, in ONE transaction."""
        held = list(dict.fromkeys(keys))

        def write(conn: Any) -> int:
            if held:
                conn.execute(_RELEASE, (owner, held))
                conn.execute(_NOTIFY)
            return _write_run(conn, entry, run_id)

        return self.database.write(write)

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first."""
        rows = self.database.read(f"SELECT {_RUN_FIELDS} FROM runs ORDER BY id")
        return [RunInfo(*row) for row in rows]

    def run_keys(self, run_ids: Iterable[int]) -> dict[int, tuple[list[str], list[str]]]:
        """Run id -> (keys hit, keys written)."""
        found: dict[int, tuple[list[str], list[str]]] = {}
        sql = "SELECT id, hit_keys, written_keys FROM runs WHERE id = ANY(%s)"
        for chunk in chunks(dict.fromkeys(run_ids), PG_CHUNK):
            for run_id, hits, written in self.database.read(sql, (chunk,)):
                found[run_id] = (unpack_keys(bytes(hits)), unpack_keys(bytes(written)))
        return found

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs from the log."""
        ids = list(run_ids)
        if ids:
            self.database.write(
                lambda conn: conn.execute("DELETE FROM runs WHERE id = ANY(%s)", (ids,))
            )

    # -- pins -----------------------------------------------------------------------------

    def pin(self, keys: Iterable[str], now: float) -> None:
        """Pin keys; a key pinned before keeps its first time."""
        wanted = list(dict.fromkeys(keys))
        sql = (
            "INSERT INTO pins (key, created) SELECT k, %s FROM unnest(%s::text[]) AS k "
            "ON CONFLICT (key) DO NOTHING"
        )
        if wanted:
            self.database.write(lambda conn: conn.execute(sql, (now, wanted)))

    def unpin(self, keys: Iterable[str]) -> None:
        """Unpin keys; absent ones are ignored."""
        wanted = list(keys)
        if wanted:
            sql = "DELETE FROM pins WHERE key = ANY(%s)"
            self.database.write(lambda conn: conn.execute(sql, (wanted,)))

    def pins(self) -> dict[str, float]:
        """Pinned key -> when it was pinned."""
        return dict(self.database.read("SELECT key, created FROM pins ORDER BY created, key"))

    # -- leases -----------------------------------------------------------------------------

    def claim(self, keys: Iterable[str], owner: str, expires: float, now: float) -> ClaimResult:
        """Take the free, expired or own leases on ``keys``; stored keys are ``done``."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return ClaimResult([], {}, {})
        return self.database.write(lambda conn: self._claim(conn, wanted, owner, expires, now))

    def _claim(
        self, conn: Any, keys: list[str], owner: str, expires: float, now: float
    ) -> ClaimResult:
        shift = self.database.clock_offset
        ours: set[str] = set()
        done: dict[str, str] = {}
        for chunk in chunks(keys, PG_CHUNK):
            params = {"owner": owner, "expires": expires + shift, "now": now + shift}
            taken = conn.execute(_UPSERT_LEASES, {**params, "keys": chunk}).fetchall()
            ours.update(key for (key,) in taken)
            # a new statement, so a new snapshot: results committed before a lease we just
            # took was released are seen here
            done.update(conn.execute(_DONE_AND_UNLEASE, {"keys": chunk, "owner": owner}))
        others = [key for key in keys if key not in ours and key not in done]
        theirs = {}
        for chunk in chunks(others, PG_CHUNK):
            for key, holder, until in conn.execute(_HOLDERS, (chunk,)):
                theirs[key] = LeaseState(key, holder, until - shift)
        mine = [key for key in keys if key in ours and key not in done]
        return ClaimResult(mine, theirs, done)

    def renew(self, owner: str, keys: Iterable[str], expires: float) -> None:
        """Push back the expiry of ``owner``'s leases on ``keys``."""
        held = list(dict.fromkeys(keys))
        if not held:
            return
        sql = "UPDATE leases SET expires = %s WHERE owner = %s AND key = ANY(%s)"
        until = expires + self.database.clock_offset
        self.database.write(lambda conn: conn.execute(sql, (until, owner, held)))

    def release(self, owner: str, keys: Iterable[str]) -> None:
        """Drop ``owner``'s leases on ``keys``, and tell waiters."""
        held = list(dict.fromkeys(keys))
        if not held:
            return

        def write(conn: Any) -> None:
            conn.execute(_RELEASE, (owner, held))
            conn.execute(_NOTIFY)

        self.database.write(write)

    def lease_states(self, keys: Iterable[str] | None = None) -> dict[str, LeaseState]:
        """The current leases on ``keys`` (every lease when None), in this host's clock."""
        if keys is None:
            rows = self.database.read("SELECT key, owner, expires FROM leases ORDER BY key")
        else:
            rows = []
            for chunk in chunks(dict.fromkeys(keys), PG_CHUNK):
                rows += self.database.read(_HOLDERS, (chunk,))
        shift = self.database.clock_offset
        return {key: LeaseState(key, owner, until - shift) for key, owner, until in rows}

    def drop_expired(self, now: float) -> int:
        """Delete leases that expired before ``now``; return how many."""
        sql = "DELETE FROM leases WHERE expires < %s"
        until = now + self.database.clock_offset
        return int(self.database.write(lambda conn: conn.execute(sql, (until,)).rowcount))

    def wait_for_news(self, timeout: float) -> bool:
        """Block until a result is saved or a lease released anywhere, or ``timeout`` passes.

        Returns whether news arrived. The first call only starts listening and
        returns True at once: news sent before it could not be heard, so the
        caller looks again.
        """
        with self._listen_lock:
            if self._listener_pid != os.getpid():  # forked: the parent's socket is not ours
                _INHERITED.append(self._listener)
                self._listener, self._listener_pid = None, os.getpid()
            if self._listener is None or self._listener.closed:
                self._listener = self.database.listener()
                self._listener.execute(f"LISTEN {NEWS_CHANNEL}")
                return True
            listener = self._listener
            try:
                heard = any(True for _ in listener.notifies(timeout=timeout, stop_after=1))
                while any(True for _ in listener.notifies(timeout=0, stop_after=1)):
                    pass  # drain what else arrived: one look covers it all
            except self.database.psycopg.Error as exc:
                self._drop_listener()
                raise self.database.error(exc, "listen to") from exc
            return heard

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if self._listener_pid != os.getpid():  # the parent's: leave it be
            _INHERITED.append(listener)
        elif listener is not None:
            with suppress(Exception):
                listener.close()

    # -- the rest ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the run log, pins and leases."""

        def clear(conn: Any) -> None:
            for table in ("runs", "pins", "leases"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute(_NOTIFY)

        self.database.write(clear)

    def end_thread(self) -> None:
        """Close the calling thread's connection (a helper thread that is about to exit)."""
        self.database.end_thread()

    def close(self) -> None:
        """Close this process's connections (shared with the index)."""
        with self._listen_lock:
            self._drop_listener()
        self.database.close()
