"""The processes executor: worker processes from joblib's loky.

Design note
-----------
Jobs run in other processes (``in_process = False``): the engine sends a
picklable :class:`~incgraph.run.jobs.WorkerJob` and each worker keeps one
processor instance per instance key, constructed on its first job. loky
pickles with cloudpickle, so processors defined in ``__main__``, in a notebook
or inside a function can be sent; their inputs and results must be picklable.

The pool is this executor's own (not joblib's shared reusable one), started
on the first job and kept for the executor's lifetime, so workers import
incgraph and construct processors once, not per job.

Release policy: **recycle the pool.** ``release(keys)`` shuts the workers
down when any of ``keys`` was ever sent to them (``None``: always); the next
job starts fresh ones. Exiting the process is the only way to be sure a
worker gave back everything a model held (CUDA contexts, memory-mapped
weights, allocator arenas); the price is a worker start per release, paid
only when a batch switches resources. Instances that did not need releasing
are dropped too and reconstructed on their next job.

A pool whose worker died (killed, out of memory, segfault) is replaced on the
next submit; the jobs that were running on it fail with loky's
``TerminatedWorkerError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future
from typing import Any, TypeVar

__all__ = ["ProcessExecutor"]

T = TypeVar("T")


class ProcessExecutor:
    """Run jobs in loky worker processes.

    Parameters
    ----------
    max_workers : int, optional
        Number of worker processes; defaults to the number of CPUs.

    Examples
    --------
    >>> ex = ProcessExecutor(max_workers=1)
    >>> ex.submit(pow, 3, 4).result()
    81
    >>> ex.shutdown()
    """

    in_process = False
    name = "processes"

    def __init__(self, max_workers: int | None = None) -> None:
        self.workers = max_workers or os.cpu_count() or 1
        self._pool: Any = None
        self._sent: set[str] = set()

    def __repr__(self) -> str:
        return f"<ProcessExecutor workers={self.workers}>"

    def _live_pool(self) -> Any:
        if self._pool is None:
            from joblib.externals.loky import ProcessPoolExecutor  # joblib loads lazily

            self._pool = ProcessPoolExecutor(self.workers)
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
        """Recycle the workers if they may hold any of ``instance_keys`` (all when ``None``)."""
        if self._pool is None:
            return
        if instance_keys is None or self._sent & instance_keys:
            self._drop_pool(wait=True)

    def _drop_pool(self, *, wait: bool) -> None:
        pool, self._pool = self._pool, None
        self._sent.clear()
        if pool is not None:
            pool.shutdown(wait=wait)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the worker processes."""
        self._drop_pool(wait=wait)
