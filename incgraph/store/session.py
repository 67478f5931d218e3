"""A run's session with the store: its run log, its leases and its one writer.

Design note
-----------
Every front-end's run needs the same three services from the store: remember
which keys were hit and written (the run log, `incgraph.store.runlog`),
compute each missing key exactly once across processes (leases,
`incgraph.store.leases`), and write what it computed in batches (the writer,
`incgraph.store.writer`). A `StoreSession` bundles them so each loop has one
object to call:

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
``session.writer``          the run's one `incgraph.store.writer.Writer`: computed
                            results are queued with ``writer.add`` and written in
                            batches; each flush calls ``saved`` after its commit
``session.flush()``         the writer's flush, if the run made one: the results that
                            could not be stored (the caller fails their nodes)
``session.commit()``        before waiting for another claimant: flushes the writer
``session.close(ok)``       at the end, always (``finally``): flushes the writer,
                            releases every lease still held and writes the run log's
                            one row, in one transaction; then, after a run that wrote,
                            enforces the store's byte budget (`incgraph.store.budget`,
                            kept in ``budget``)
==========================  ============================================================

The lessee is created on the first claim and the writer on first use, so a
fully cached run costs one list append per hit and one insert at the end, and
starts no thread.

One user run, one session. A front-end whose run is made of several runs
(a flow runs a graph once per wave) opens its session and makes it current
(`StoreSession.as_current`): a session opened on the same store inside that
block (`open_session`, what `incgraph.store.Store.session` calls) is a *part*
of it. A part shares the run log, the leases and the writer; closing it
flushes the writer (what the part computed is committed when it ends) and
writes no run-log row: the enclosing session writes the one row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING

from incgraph.errors import StoreError
from incgraph.store.budget import enforce_budget
from incgraph.store.leases import Claims, Lessee
from incgraph.store.runlog import RunLog
from incgraph.store.writer import Unstorable, Writer

if TYPE_CHECKING:
    from incgraph.settings import Settings
    from incgraph.store.garbage import GcReport
    from incgraph.store.store import Store

__all__ = ["StoreSession", "open_session"]


_MAKING = threading.Lock()
"""Held while a session makes its writer, so threads asking at once get the same one."""

_CURRENT: ContextVar[StoreSession | None] = ContextVar("incgraph_store_session", default=None)
"""The session runs opened here are part of (`StoreSession.as_current`), if any."""


def open_session(
    store: Store,
    kind: str = "run",
    label: str = "",
    *,
    announce: bool = False,
    settings: Settings | None = None,
) -> StoreSession:
    """A new session of ``store``, or a part of the current one when it is ``store``'s.

    A new session follows ``settings`` (default: the store's); a part follows
    the settings of the session it is part of, whose writer it shares.

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> store = memory_store()
    >>> with store.session("flow", "demo") as run, run.as_current():
    ...     part = open_session(store, "run", "wave 1")
    ...     part.log is run.log and part.writer is run.writer
    True
    """
    current = _CURRENT.get()
    if current is not None and current.store is store:
        return StoreSession(store, kind, label, part_of=current)
    return StoreSession(store, kind, label, announce=announce, settings=settings)


class StoreSession:
    """One run's run log, leases and writer. Make one with `incgraph.store.Store.session`.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> with store.session("batch", "demo") as session:
    ...     claims = session.claim(["a" * 32])
    ...     record = Record("a" * 32, "b" * 32, "n", "p", "c", "i")
    ...     session.writer.add(record, store.capture(1))
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
        part_of: StoreSession | None = None,
        settings: Settings | None = None,
    ):
        self.store = store
        if part_of is not None:
            settings = part_of.settings
        self.settings: Settings = store.settings if settings is None else settings
        """The tuning this run's writer and leases follow (`incgraph.settings`)."""
        # a part of a larger run shares its log, leases and writer; its owner closes them
        self._owner: StoreSession = self if part_of is None else part_of._owner
        if part_of is None:
            self.log: RunLog = store.run_log(kind, label, announce=announce)
        else:
            self.log = self._owner.log
        self.hits: list[str] = self.log.hits
        self._lessee: Lessee | None = None
        self._writer: Writer | None = None
        self.budget: GcReport | None = None
        """What the store's byte budget removed when this session closed (None: nothing ran)."""

    def __repr__(self) -> str:
        return f"<StoreSession {self.log!r}>"

    @property
    def lessee(self) -> Lessee:
        """This run's claimant (created on first use)."""
        owner = self._owner
        if owner._lessee is None:
            owner._lessee = self.store.lessee(
                ttl=owner.settings.lease_ttl_seconds, settings=owner.settings
            )
        return owner._lessee

    @property
    def writer(self) -> Writer:
        """This run's one writer (created on first use); see `incgraph.store.writer`."""
        owner = self._owner
        if owner._writer is None:
            with _MAKING:  # queue stages and flow tasks may ask from worker threads
                if owner._writer is None:
                    owner._writer = Writer(owner)
        return owner._writer

    @contextmanager
    def as_current(self) -> Iterator[StoreSession]:
        """Within the block, sessions opened on this store (`open_session`) are parts of this one.

        For a front-end whose one run is several engine runs (a flow's waves):
        they all go in this session's one run-log row and share its writer.
        """
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

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
        lessee = self._owner._lessee
        if lessee is not None:
            lessee.release(keys)

    def saved(self, keys: Iterable[str]) -> None:
        """Keys whose index rows were just committed: log them as written, release their leases."""
        keys = list(keys)
        self.log.written.extend(keys)
        self.release(keys)

    def flush(self) -> list[Unstorable]:
        """Flush the writer (if this run made one): the results that could not be stored."""
        writer = self._owner._writer
        return [] if writer is None else writer.flush()

    def commit(self) -> None:
        """Commit every result queued in this run's writer; call before waiting for others.

        Results that turn out unstorable are returned by the writer's next
        ``flush()``.
        """
        writer = self._owner._writer
        if writer is not None:
            writer.commit()

    def close(self, ok: bool = True) -> None:
        """Flush the writer, release every lease still held and write the run log (once).

        A part of a larger run (`as_current`) only flushes the writer. When the
        run failed (``ok=False``) a store error while doing so is swallowed, so
        it cannot hide the run's own error; the leases are released and the run
        log written even when the flush fails.
        """
        try:
            self.commit()
        except StoreError:
            if self._owner is self:
                self._close(ok=False)
            if ok:
                raise
            return
        if self._owner is self:
            self._close(ok)

    def _close(self, ok: bool) -> None:
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
