"""The processes executor: worker processes from joblib's loky.

Design note
-----------
Jobs run in other processes (``in_process = False``): the engine sends a
picklable `WorkerJob` and each worker keeps one
processor instance per instance key, constructed on its first job. loky
pickles with cloudpickle, so processors defined in ``__main__``, in a notebook
or inside a function can be sent; their inputs and results must be picklable.

The pool is this executor's own (not joblib's shared reusable one), started
on the first job and kept for the executor's lifetime, so workers import
incgraph and construct processors once, not per job.

Release policy: **a release job on every worker.** ``release(keys)`` sends
one job per worker process; each calls ``release()`` on the instances it
holds (those in ``keys``), drops them, then waits until every worker has
started its release job. A worker busy waiting cannot take a second job, so
the jobs land on distinct workers and all of them have released when
``release`` returns; the workers stay warm for the next pass. If the jobs do
not all meet within the ``process_rendezvous_seconds`` setting (5 s by
default) because a worker is busy, hung or dead, the executor
falls back to recycling the pool: the workers are stopped (killed if they do not
stop) and the next job starts fresh ones. ``release`` is a no-op when none of
``keys`` was ever sent.

A pool whose worker died (killed, out of memory, segfault) is replaced on the
next submit; the jobs that were running on it fail with loky's
``TerminatedWorkerError``. The other way round, workers never outlive this
process: each runs a watchdog (`incgraph.executors.watchdog`) that ends
it when the process that started the pool dies, even in the middle of a job.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future
from typing import Any, TypeVar

from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.picklability import unpicklable_part

__all__ = ["ProcessExecutor", "is_pickling_error", "unsendable"]

T = TypeVar("T")


class ProcessExecutor:
    """Run jobs in loky worker processes.

    Parameters
    ----------
    max_workers : int, optional
        Number of worker processes; defaults to the number of CPUs.
    settings : Settings
        ``process_rendezvous_seconds`` (how long release jobs wait to meet on
        every worker before the pool is recycled instead) and
        ``watchdog_poll_seconds`` (`incgraph.settings`).

    Examples
    --------
    >>> ex = ProcessExecutor(max_workers=1)
    >>> ex.submit(pow, 3, 4).result()
    81
    >>> ex.shutdown()
    """

    in_process = False
    name = "processes"

    def __init__(
        self, max_workers: int | None = None, *, settings: Settings = DEFAULT_SETTINGS
    ) -> None:
        self.workers = max_workers or os.cpu_count() or 1
        self._pool: Any = None
        self._sent: set[str] = set()
        self.settings = settings
        self.rendezvous_seconds = settings.process_rendezvous_seconds

    def __repr__(self) -> str:
        return f"<ProcessExecutor workers={self.workers}>"

    def _live_pool(self) -> Any:
        if self._pool is None:
            from joblib.externals.loky import ProcessPoolExecutor  # joblib loads lazily

            from incgraph.executors.watchdog import watch_parent

            # each worker exits if this process dies (it may hold a loaded model)
            poll = self.settings.watchdog_poll_seconds
            self._pool = ProcessPoolExecutor(
                self.workers, initializer=watch_parent, initargs=(os.getpid(), poll)
            )
        return self._pool

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``fn(*args)`` on a worker process."""
        for arg in args:
            key = getattr(arg, "instance_key", None)
            if isinstance(key, str):
                self._sent.add(key)
        try:
            fut: Future[T] = self._live_pool().submit(fn, *args)
        except BrokenExecutor:  # a worker died earlier: start a fresh pool and retry once
            self._drop_pool(wait=False)
            fut = self._live_pool().submit(fn, *args)
        return fut

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Release ``instance_keys`` (all when ``None``) on every worker that may hold them."""
        if self._pool is None or not (instance_keys is None or self._sent & instance_keys):
            return
        if self._everyone_released(instance_keys):
            self._sent = set() if instance_keys is None else self._sent - instance_keys
        else:  # a worker is busy, hung or dead: recycling releases everything
            self._drop_pool(wait=True, kill=True)

    def _everyone_released(self, instance_keys: frozenset[str] | None) -> bool:
        """Send one release job per worker; whether every worker ran one and met the others."""
        with tempfile.TemporaryDirectory(prefix="incgraph-release-") as meeting:
            try:
                futures = [
                    self._pool.submit(
                        _release_here, instance_keys, meeting, self.workers, self.rendezvous_seconds
                    )
                    for _ in range(self.workers)
                ]
                pids = [f.result(timeout=self.rendezvous_seconds + 30) for f in futures]
            except Exception:
                return False
        return len({pid for pid in pids if pid is not None}) == self.workers

    def _drop_pool(self, *, wait: bool, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        self._sent.clear()
        if pool is not None:
            pool.shutdown(wait=wait, kill_workers=kill)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the worker processes."""
        self._drop_pool(wait=wait)


def _release_here(
    keys: frozenset[str] | None, meeting: str, parties: int, patience: float
) -> int | None:
    """In a worker: release ``keys``, then wait for ``parties`` workers to have done so.

    Returns this worker's pid once all have met, ``None`` if they did not in time.
    """
    from incgraph.run.jobs import release_worker_instances

    release_worker_instances(keys)
    pid = os.getpid()
    with open(os.path.join(meeting, str(pid)), "w"):
        pass
    deadline = time.monotonic() + patience
    while len(os.listdir(meeting)) < parties:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)
    return pid


def is_pickling_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that something could not be pickled (to reach a worker).

    Examples
    --------
    >>> is_pickling_error(TypeError("cannot pickle '_thread.lock' object"))
    True
    >>> is_pickling_error(TypeError("Could not serialize object of type HighLevelGraph"))
    True
    >>> is_pickling_error(TypeError("unsupported operand"))
    False
    """
    text = str(exc)
    return isinstance(exc, pickle.PicklingError) or (
        isinstance(exc, TypeError) and ("pickle" in text or "serialize" in text)
    )


def unsendable(candidates: list[tuple[str, str, Any]]) -> tuple[str, Exception] | None:
    """The first of ``candidates`` loky cannot pickle, and an error naming the part that fails.

    ``candidates`` are ``(what, root, value)``: ``what`` describes the value for
    a message (``"input 'x'"``), ``root`` starts the part's path. Values are
    pickled as loky pickles a job (with cloudpickle, so a processor or function
    defined in ``__main__`` is followed into the globals its code reads).
    Returns ``(what, error)`` (a ``PicklingError`` whose message names the part,
    chained to the original), or ``None`` when every candidate pickles.

    Examples
    --------
    >>> import threading
    >>> what, error = unsendable([("input 'a'", "a", 1), ("input 'b'", "b", [threading.Lock()])])
    >>> what, str(error).split(" (")[0]
    ("input 'b'", 'cannot pickle b[0]: _thread.lock')
    """
    from joblib.externals.loky.backend.reduction import dumps  # what loky pickles jobs with

    def error_of(value: Any) -> Exception | None:
        try:
            dumps(value)
        except Exception as problem:
            return problem
        return None

    for what, root, value in candidates:
        problem = error_of(value)
        if problem is not None:
            part = unpicklable_part(value, root, error_of=error_of)
            named = pickle.PicklingError(
                f"cannot pickle {part} ({type(problem).__name__}: {problem})"
            )
            named.__cause__ = problem
            return what, named
    return None
