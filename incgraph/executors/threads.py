"""The threads executor: a ``ThreadPoolExecutor`` in this process.

Design note
-----------
Jobs run in this process (``in_process = True``), so they use each node's own
processor instance; ``release`` has nothing to drop on the workers' side.
Independent ready nodes of a graph run, and the items of a batch pass, run
concurrently. Threads help when ``process`` releases the GIL (numpy, I/O,
native libraries, network calls); for pure-Python CPU work use ``processes``.

In a batch, the threads computing one node for different items share that
node's instance (constructed once, under a lock), so its ``process`` must be
safe to call from several threads at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["ThreadExecutor"]

T = TypeVar("T")


class ThreadExecutor:
    """Run jobs in a pool of threads.

    Parameters
    ----------
    max_workers : int, optional
        Number of threads; defaults to ``ThreadPoolExecutor``'s (CPUs + 4, at most 32).

    Examples
    --------
    >>> ex = ThreadExecutor(max_workers=2)
    >>> ex.submit(pow, 2, 8).result()
    256
    >>> ex.shutdown()
    """

    in_process = True
    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        self.workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<ThreadExecutor workers={self.workers}>"

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``fn(*args)`` on a pool thread (the pool starts on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="incgraph")
        return self._pool.submit(fn, *args)

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Nothing to release: in-process instances live on their nodes."""

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads (after the queued jobs when ``wait``)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)
