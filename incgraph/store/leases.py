"""Leases: a result one process is computing is waited for, not computed again, by another.

Design note
-----------
Before computing a key, a run *claims* it (`Lessee.claim_many`, one
write transaction for any number of keys). The ledger answers, atomically
with respect to the results:

* ``done``: the result is stored already (someone committed it since our
  lookup): use it, it is a hit;
* ``mine``: we hold the lease (until ``now + ttl``): compute, save, then
  `Lessee.release` it, *after* the result's index row is committed;
* ``theirs``: another claimant holds a live lease: wait
  (`Lessee.wait`, or `Lessee.poll` from a loop that has other
  work), which polls the index with backoff until the result appears (a hit)
  or the lease is gone or expired (then we claim it and compute). A ledger
  that hears news (PostgreSQL's LISTEN/NOTIFY of a save or a release
  elsewhere) wakes the waiter at once instead, which then looks for leases
  that lapsed silently only every `LAPSED_POLL_SECONDS`.

A lease expires ``ttl`` seconds (`LEASE_SECONDS`) after it was taken or
last renewed. While a claimant holds leases, one heartbeat thread per process
renews them every ``ttl / 3`` seconds, so a live process keeps its leases
however long it computes, and a killed one loses them within ``ttl``: its
work is then redone by whoever waits. The thread outlives its last claimant
by `LINGER_SECONDS` (its connections closed), so runs in quick
succession share one thread instead of starting one each. (diskcache's
``Lock`` was not used: a lock held by a killed process is never freed.)

Guarantees and limits:

* exactly once among live claimants: two claimants never both hold a live
  lease on a key, and a released lease always follows a committed result or
  a failure;
* a claimant killed while computing costs its waiters up to ``ttl`` seconds;
* if a heartbeat cannot run for ``2 * ttl / 3`` seconds (a C extension that
  holds the GIL that long, a suspended laptop), the lease may lapse and a
  second process may compute the same key. That wastes work but is never
  wrong: both write the same result under the same key;
* expiry compares wall-clock times of the processes sharing the store, so
  hosts sharing a store on a network disk need synchronised clocks.

Before a run waits for others it must first save (and so release) what it has
computed but not yet written: otherwise two runs could each wait for a result
the other holds back.

Leases where they pay. A claim is one write transaction (~30 µs), so the
decide step (`incgraph.run.decide`) claims every miss except those whose
compute is known to cost about as little (under the ``lease_min_seconds``
setting, 1 ms by default). Two processes may then both compute such a cheap
node; that is harmless, as both store the same result under the same key.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from incgraph.errors import ReadOnlyStoreError, StoreError
from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store.ledger import Ledger
from incgraph.store.runlog import new_owner, owner_is_dead

__all__ = ["LEASE_SECONDS", "LINGER_SECONDS", "Claims", "Lessee"]

LEASE_SECONDS = DEFAULT_SETTINGS.lease_ttl_seconds
"""How long a lease lives without renewal by default (``Settings.lease_ttl_seconds``)."""

LINGER_SECONDS = DEFAULT_SETTINGS.lease_linger_seconds
"""How long the idle heartbeat thread waits by default (``Settings.lease_linger_seconds``)."""

LAPSED_POLL_SECONDS = 1.0
"""How often a waiter that is told of news (PostgreSQL) still looks for lapsed leases."""


@dataclass
class Claims:
    """What a claim or a wait decided, per key.

    Attributes
    ----------
    mine : keys this claimant now holds: compute them, save, release.
    theirs : keys another live claimant holds: wait for them.
    done : key -> data version of keys whose result is stored: hits.
    """

    mine: list[str] = field(default_factory=list)
    theirs: list[str] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)


class Lessee:
    """One claimant (a run): claims keys, renews its leases while it computes, releases them.

    Make one with `incgraph.store.Store.lessee`.

    Parameters
    ----------
    ledger : Ledger
        Where leases live.
    versions : callable
        Keys -> {key: data version} of the stored ones (the index's bulk lookup).
    ttl : float
        Seconds a lease lives without renewal.
    read_only : bool
        Refuse to claim (a read-only store cannot compute anything).

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> store = memory_store()
    >>> a, b = store.lessee(), store.lessee()
    >>> a.claim_many(["k1"]).mine, b.claim_many(["k1"]).theirs
    (['k1'], ['k1'])
    >>> a.release(["k1"])
    >>> b.poll(["k1"]).mine
    ['k1']
    >>> a.close(); b.close()
    """

    def __init__(
        self,
        ledger: Ledger,
        versions: Any,
        *,
        ttl: float = LEASE_SECONDS,
        read_only: bool = False,
        first_poll: float = DEFAULT_SETTINGS.lease_first_poll_seconds,
        max_poll: float = DEFAULT_SETTINGS.lease_max_poll_seconds,
        linger: float = LINGER_SECONDS,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"a lease's ttl must be positive, got {ttl!r} seconds")
        self.ledger = ledger
        self.versions = versions
        self.ttl = ttl
        self.read_only = read_only
        self.first_poll, self.max_poll = first_poll, max_poll  # wait()'s back-off
        self.linger = linger  # how long the heartbeat thread outlives the last claimant
        self.owner = new_owner()
        self.held: set[str] = set()
        self.renewed = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Lessee {self.owner} holding {len(self.held)}>"

    def claim_many(self, keys: Iterable[str], *, take_over: bool = False) -> Claims:
        """Claim ``keys`` in one transaction: each is ``mine``, ``theirs`` or ``done``.

        With ``take_over`` the leases are taken even before they expire (used for
        leases whose holder is a process on this host that has exited).
        """
        keys = list(keys)
        if not keys:
            return Claims()
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot claim {len(keys)} key(s) to compute them: the store was opened "
                "read-only; open it with read_only=False to compute and save results"
            )
        if _UNRELEASED.leases:
            _UNRELEASED.retry()
        now = time.time()
        result = self.ledger.claim(keys, self.owner, now + self.ttl, math.inf if take_over else now)
        if result.mine:
            with self._lock:
                self.held.update(result.mine)
                self.renewed = now
            _HEARTBEAT.add(self)
        return Claims(list(result.mine), list(result.theirs), dict(result.done))

    def poll(self, keys: Iterable[str]) -> Claims:
        """One look at keys others hold: stored ones are ``done``; lapsed ones are claimed.

        Never blocks. Keys still held by a live claimant come back as ``theirs``.
        """
        keys = list(dict.fromkeys(keys))
        done = dict(self.versions(keys)) if keys else {}
        rest = [key for key in keys if key not in done]
        if not rest:
            return Claims([], [], done)
        now = time.time()
        live, orphaned = set(), []
        for key, state in self.ledger.lease_states(rest).items():
            if state.expires >= now and state.owner != self.owner:
                if owner_is_dead(state.owner):  # killed on this host: don't wait out its lease
                    orphaned.append(key)
                else:
                    live.add(key)
        free = [key for key in rest if key not in live and key not in orphaned]
        claims = self.claim_many(free) if free else Claims()
        if orphaned:
            taken = self.claim_many(orphaned, take_over=True)
            claims.mine += taken.mine
            claims.theirs += taken.theirs
            claims.done.update(taken.done)
        claims.done.update(done)
        claims.theirs += [key for key in rest if key in live]
        return claims

    def wait(self, keys: Iterable[str], *, timeout: float | None = None) -> Claims:
        """Poll with backoff until no key is ``theirs`` (or ``timeout`` seconds passed).

        Returns the keys that became ``done`` (stored by their holder) and those
        that became ``mine`` (their holder's lease lapsed: compute them).
        """
        pending = list(dict.fromkeys(keys))
        total = Claims()
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self.first_poll
        while pending:
            step = self.poll(pending)
            total.mine += step.mine
            total.done.update(step.done)
            pending = step.theirs
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            if deadline is not None:
                delay = min(delay, max(deadline - time.monotonic(), 0.0))
            if self.ledger.wait_for_news(delay):
                delay = self.first_poll
            else:
                delay = min(
                    delay * 1.5, LAPSED_POLL_SECONDS if self.ledger.notifies else self.max_poll
                )
        total.theirs = pending
        return total

    def release(self, keys: Iterable[str]) -> None:
        """Give up the leases on ``keys`` (after their results are committed, or on failure).

        A release the store cannot write (its disk is full) does not raise: the
        leases are kept aside and released by this process's next claim on any
        store, so "free space and rerun" does not wait for them to expire.
        """
        with self._lock:
            mine = [key for key in keys if key in self.held]
            self.held.difference_update(mine)
            empty = not self.held
        if mine:
            try:
                self.ledger.release(self.owner, mine)
            except StoreError:
                _UNRELEASED.keep(self.ledger, self.owner, mine)
        if empty:
            _HEARTBEAT.remove(self)

    def held_keys(self) -> list[str]:
        """The keys whose leases this claimant holds now."""
        with self._lock:
            return list(self.held)

    def released(self, keys: Iterable[str]) -> None:
        """Forget leases on ``keys`` that the caller dropped in a transaction of its own.

        For a ledger write that releases them together with other rows
        (`incgraph.store.runlog.RunLog.close`); call it once that committed.
        """
        with self._lock:
            self.held.difference_update(keys)
            empty = not self.held
        if empty:
            _HEARTBEAT.remove(self)

    def renew_due(self, now: float) -> None:
        """Renew every held lease if the last renewal is ``ttl / 3`` old (the heartbeat's call)."""
        with self._lock:
            if not self.held or now - self.renewed < self.ttl / 3:
                return
            keys = list(self.held)
            self.renewed = now
        self.ledger.renew(self.owner, keys, now + self.ttl)

    def close(self) -> None:
        """Release every lease still held and stop renewing."""
        with self._lock:
            keys = list(self.held)
        try:
            if keys:
                self.release(keys)
        finally:
            _HEARTBEAT.remove(self)

    def __enter__(self) -> Lessee:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Heartbeat:
    """One thread per process renewing the leases of every claimant that holds some.

    The thread starts with the first claimant. When no claimant is left it
    closes the database connections it renewed through, then lingers for
    ``linger`` seconds before it exits: the next run's claimant (a flow runs
    one engine run per wave, each with its own claimant) finds it waiting
    instead of paying for a thread start and join. A store closed meanwhile
    drops the thread's connection itself (`SqliteFile.close`).

    Adding a claimant wakes the thread only when it waits longer than the
    claimant's leases allow (it lingers, or the claimant's ``ttl`` is shorter);
    removing one never does: the thread notices at its next beat.
    """

    def __init__(self, linger: float = LINGER_SECONDS) -> None:
        self.linger = linger
        self._lessees: set[Lessee] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._period = math.inf  # how long the thread's current wait is

    def add(self, lessee: Lessee) -> None:
        if lessee in self._lessees:  # the common case: renewals already scheduled
            return
        with self._cond:
            self._lessees.add(lessee)
            self.linger = lessee.linger  # the latest claimant's setting
            if self._thread is None:
                name = "incgraph-lease-heartbeat"
                self._thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._period = math.inf
                self._thread.start()
            elif lessee.ttl / 3 < self._period:
                self._cond.notify()

    def remove(self, lessee: Lessee) -> None:
        with self._cond:
            self._lessees.discard(lessee)

    def _run(self) -> None:
        ledgers: dict[int, Ledger] = {}
        try:
            while True:
                with self._cond:
                    if not self._lessees and not ledgers:
                        self._period = self.linger
                        self._cond.wait(self.linger)
                        if not self._lessees:  # lingered in vain: exit
                            self._thread = None
                            return
                    if self._lessees:
                        self._period = min(lessee.ttl for lessee in self._lessees) / 3
                        self._cond.wait(self._period)
                    current = list(self._lessees)
                if not current:  # idle: close this thread's connections, then linger
                    _end_threads(ledgers)
                    continue
                now = time.time()
                for lessee in current:
                    ledgers[id(lessee.ledger)] = lessee.ledger
                    # a failed renewal is retried next beat; a lapse costs a recompute at worst
                    with suppress(StoreError):
                        lessee.renew_due(now)
        finally:
            _end_threads(ledgers)


def _end_threads(ledgers: dict[int, Ledger]) -> None:
    """Close the calling thread's connection to each ledger, and forget them."""
    for ledger in ledgers.values():
        with suppress(StoreError):
            ledger.end_thread()
    ledgers.clear()


class _Unreleased:
    """Leases this process gave up but could not write as released (the disk was full).

    They are no longer renewed, so other processes may take them over once they
    expire. This process does not wait that long: its next claim (on any store)
    first retries releasing them, and a rerun after freeing space finds them gone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.leases: list[tuple[Ledger, str, list[str]]] = []

    def keep(self, ledger: Ledger, owner: str, keys: list[str]) -> None:
        with self._lock:
            self.leases.append((ledger, owner, keys))

    def retry(self) -> None:
        with self._lock:
            leases, self.leases = self.leases, []
        kept = []
        for ledger, owner, keys in leases:
            try:
                ledger.release(owner, keys)
            except StoreError:
                kept.append((ledger, owner, keys))  # still full: next claim tries again
            except Exception:
                pass
        if kept:
            with self._lock:
                self.leases += kept


_HEARTBEAT = _Heartbeat()
_UNRELEASED = _Unreleased()


def _new_heartbeat_after_fork() -> None:
    global _HEARTBEAT, _UNRELEASED
    _HEARTBEAT = _Heartbeat()
    _UNRELEASED = _Unreleased()  # the parent's leases are the parent's to release


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_heartbeat_after_fork)
