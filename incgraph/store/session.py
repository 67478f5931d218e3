"""A run's session with the store: its run log and its leases, behind four calls.

Design note
-----------
The engine loop and the batch loop need the same two services from the store
for every run: remember which keys were hit and written (the run log,
`incgraph.store.runlog`) and compute each missing key exactly once
across processes (leases, `incgraph.store.leases`). A
`StoreSession` bundles them so each loop has one object to call:

==========================  ============================================================
call                        when
==========================  ============================================================
``session.hits.append(k)``  a key was a hit (a list append: the cache-hit path stays cheap)
``session.claim(keys)``     before computing misses: ``Claims(mine, theirs, done)``, one
                            transaction for all keys; compute ``mine``, treat ``done`` as
                            hits, wait for ``theirs``
``session.poll(keys)``      a loop with other work: one non-blocking look at ``theirs``
``session.acquire(key)``    a loop with nothing else to do: block until ``key`` is done
                            (its data version) or ours (None)
``session.saved(keys)``     right after ``Store.save_many`` committed their rows: logs them
                            as written and releases their leases
``session.release(keys)``   keys claimed but not saved (their computation failed)
``session.commit()``        before waiting for another claimant: commit what was saved
                            (a no-op here; a store that buffers writes flushes them)
``session.close(ok)``       at the end, always (``finally``): releases every lease still
                            held and writes the run log's one row, in one transaction;
                            then, after a run that wrote, enforces the store's byte
                            budget (`incgraph.store.budget`, kept in ``budget``)
==========================  ============================================================

The lessee is created on the first claim, so a fully cached run costs one
list append per hit and one insert at the end, and starts no thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING

from incgraph.errors import StoreError
from incgraph.store.budget import enforce_budget
from incgraph.store.leases import Claims, Lessee
from incgraph.store.runlog import RunLog

if TYPE_CHECKING:
    from incgraph.store.garbage import GcReport
    from incgraph.store.store import Store

__all__ = ["StoreSession"]


class StoreSession:
    """One run's run log and leases. Make one with `incgraph.store.Store.session`.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> with store.session("batch", "demo") as session:
    ...     claims = session.claim(["a" * 32])
    ...     saved = store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i"), 1)
    ...     session.saved([saved.key])
    >>> claims.mine == ["a" * 32], store.runs()[-1].computed
    (True, 1)
    """

    def __init__(
        self,
        store: Store,
        kind: str = "run",
        label: str = "",
        *,
        announce: bool = False,
        log: RunLog | None = None,
    ):
        self.store = store
        # a shared ``log`` belongs to a larger run (a flow's waves are one user run): its
        # owner closes it, this session only adds its keys to it
        self._owns_log = log is None
        self.log: RunLog = store.run_log(kind, label, announce=announce) if log is None else log
        self.hits: list[str] = self.log.hits
        self._lessee: Lessee | None = None
        self.budget: GcReport | None = None
        """What the store's byte budget removed when this session closed (None: nothing ran)."""

    def __repr__(self) -> str:
        return f"<StoreSession {self.log!r}>"

    @property
    def lessee(self) -> Lessee:
        """This run's claimant (created on first use)."""
        if self._lessee is None:
            self._lessee = self.store.lessee()
        return self._lessee

    def claim(self, keys: Iterable[str]) -> Claims:
        """Claim the keys about to be computed, in one transaction."""
        return self.lessee.claim_many(keys)

    def poll(self, keys: Iterable[str]) -> Claims:
        """One non-blocking look at keys others hold (lapsed ones are claimed)."""
        return self.lessee.poll(keys)

    def acquire(self, key: str, *, before_wait: Callable[[], None] | None = None) -> str | None:
        """Block until ``key`` is stored (return its data version) or ours to compute (None).

        ``before_wait`` runs once before waiting for another claimant: save what
        you computed and hold, so no two runs wait for each other.
        """
        claims = self.claim([key])
        if claims.theirs:
            if before_wait is not None:
                before_wait()
            claims = self.lessee.wait([key])
        if key in claims.done:
            return claims.done[key]
        return None

    def release(self, keys: Iterable[str]) -> None:
        """Give up keys this run claimed but will not save (their computation failed)."""
        if self._lessee is not None:
            self._lessee.release(keys)

    def saved(self, keys: Iterable[str]) -> None:
        """Keys whose index rows were just committed: log them as written, release their leases."""
        keys = list(keys)
        self.log.written.extend(keys)
        if self._lessee is not None:
            self._lessee.release(keys)

    def commit(self) -> None:
        """Make sure every result saved in this run is committed; call before waiting for others.

        Results saved to a `Store` are committed when
        ``save_many`` returns, so this does nothing; the session of a store that
        buffers writes (``incgraph.flow.writeback``) commits them here.
        """

    def close(self, ok: bool = True) -> None:
        """Release every lease still held and write the run log (once).

        When the run failed (``ok=False``) a store error while doing so is
        swallowed, so it cannot hide the run's own error.
        """
        if not self._owns_log:
            if self._lessee is not None:
                self._lessee.close()
            return
        try:
            self.log.close("ok" if ok else "failed", lessee=self._lessee)
        except StoreError:
            if ok:
                raise
        finally:
            if self._lessee is not None:
                with suppress(StoreError):
                    self._lessee.close()
        if ok:
            self.budget = enforce_budget(self.store, bool(self.log.written), self.log.started)

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(exc_type is None)
