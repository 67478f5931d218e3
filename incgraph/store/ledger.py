"""The ledger: what a store knows besides results: the run log, pins and leases.

Design note
-----------
The index says what is stored; the ledger says how it is used. It holds
three small tables:

* the **run log** (`incgraph.store.runlog`): one row per run with the
  keys it hit and wrote, packed into blobs;
* **pins**: keys that garbage collection must keep;
* **leases**: which claimant is computing which key, until when
  (`incgraph.store.leases`).

Leases must be decided against the results in the same atomic step: a claim
on a key whose result has just been committed must come back "done", never
"mine" (or the result would be computed twice). The SQLite ledger therefore
lives in the index's database file and checks ``results`` inside the claim's
``BEGIN IMMEDIATE`` transaction; the memory ledger checks the memory index
under its lock. A holder releases its lease only after its result's index row
is committed, so "no live lease and no result" always means "nobody has it".

`SqliteLedger` and
`MemoryLedger` implement `Ledger`; the
store contract suite runs over both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from incgraph.store.runlog import RunEntry, RunInfo

__all__ = ["ClaimResult", "LeaseState", "Ledger"]


@dataclass(frozen=True)
class LeaseState:
    """Who holds the lease on a key, and until when (Unix time)."""

    key: str
    owner: str
    expires: float


@dataclass(frozen=True)
class ClaimResult:
    """The outcome of one claim: keys now ours, keys held by others, keys already stored."""

    mine: list[str]
    theirs: dict[str, LeaseState]
    done: dict[str, str]


@runtime_checkable
class Ledger(Protocol):
    """Run log, pins and leases of one store. Thread-safe and shared between processes."""

    # -- run log ------------------------------------------------------------------------

    def add_run(self, entry: RunEntry) -> int:
        """Insert a finished run; return its id."""
        ...

    def start_run(self, entry: RunEntry) -> int:
        """Insert a run that is starting (status ``"running"``); return its id."""
        ...

    def finish_run(self, run_id: int, entry: RunEntry) -> None:
        """Complete a started run with its status, finish time and keys."""
        ...

    def end_run(self, entry: RunEntry, run_id: int | None, owner: str, keys: Iterable[str]) -> int:
        """Drop ``owner``'s leases on ``keys`` and write the finished run; return its id.

        The run is added (``run_id`` None) or the started run ``run_id`` completed.
        A ledger that can makes it one transaction (what closing a run that still
        holds leases costs); the leases go first, so no result is left without a
        run that names it.
        """
        ...

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first."""
        ...

    def run_keys(self, run_ids: Iterable[int]) -> dict[int, tuple[list[str], list[str]]]:
        """Run id -> (keys hit, keys written), for the ids that exist."""
        ...

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs from the log."""
        ...

    # -- pins -----------------------------------------------------------------------------

    def pin(self, keys: Iterable[str], now: float) -> None:
        """Pin keys (pinning a pinned key keeps its first time)."""
        ...

    def unpin(self, keys: Iterable[str]) -> None:
        """Unpin keys (absent ones are ignored)."""
        ...

    def pins(self) -> dict[str, float]:
        """Pinned key -> when it was pinned."""
        ...

    # -- leases -----------------------------------------------------------------------------

    def claim(self, keys: Iterable[str], owner: str, expires: float, now: float) -> ClaimResult:
        """Atomically take the leases on ``keys`` that are free, expired or already ``owner``'s.

        Keys whose result is stored are ``done`` (key -> data version) and get no lease.
        """
        ...

    def renew(self, owner: str, keys: Iterable[str], expires: float) -> None:
        """Push back the expiry of ``owner``'s leases on ``keys``."""
        ...

    def release(self, owner: str, keys: Iterable[str]) -> None:
        """Drop ``owner``'s leases on ``keys`` (others' leases are left alone)."""
        ...

    def lease_states(self, keys: Iterable[str] | None = None) -> dict[str, LeaseState]:
        """The current leases on ``keys`` (every lease when None)."""
        ...

    def drop_expired(self, now: float) -> int:
        """Delete leases that expired before ``now``; return how many."""
        ...

    notifies: bool
    """Whether `wait_for_news` wakes when news arrives (else it just sleeps: waiters poll)."""

    def wait_for_news(self, timeout: float) -> bool:
        """Block until a result may have been saved or a lease released, or ``timeout`` passed.

        Returns whether news arrived. A ledger that cannot hear news sleeps for
        ``timeout`` and returns False; its waiters poll.
        """
        ...

    # -- the rest ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the run log, pins and leases."""
        ...

    def end_thread(self) -> None:
        """Close the calling thread's handles: a helper thread is about to exit."""
        ...

    def close(self) -> None:
        """Release this process's handles. The ledger may be used again."""
        ...
