"""Run many small calls in threads, in chunks, with the caller helping.

Policy
------
Submitting one future per call costs about 20 µs a call in CPython (a future, a
queue hand-off and a wake-up each), which dominates trivial per-item work. So the
calls are split into contiguous chunks (about four per worker, for load balance)
and each worker runs a chunk in a plain loop, catching exceptions per call.

The calling thread is one of the workers: it pulls chunks from the same shared
cursor as the pool threads. That has two consequences we rely on:

* **No nested deadlock.** An action called from inside another action's worker
  (or from any pool thread) never waits on pool threads that may all be busy
  waiting themselves: in the worst case the caller runs every chunk alone.
* **Cheap small runs.** One call, or ``n_workers=1``, runs inline in the caller
  with no thread hand-off at all.

State
-----
Pools are shared per size (``n_workers - 1`` helper threads) in a module-level
registry, created lazily and never per call, so repeated actions do not create
threads. ``ThreadPoolExecutor`` joins its idle threads at interpreter exit. After
``os.fork`` the child forgets the parent's pools (their threads do not exist in
the child) and creates fresh ones on demand.

Invariants
----------
* ``results[i]`` is the return value of call ``i`` or the ``Exception`` it raised,
  with its ``__traceback__`` intact, whichever thread ran it.
* A ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
  ``SystemExit``) stops the run: no further chunks start and it is re-raised in
  the caller.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from incgraph.parallel.entries import Call

__all__ = ["CHUNKS_PER_WORKER", "chunk_bounds", "default_thread_workers", "run_in_threads"]

CHUNKS_PER_WORKER = 4
"""Chunks per worker: enough to balance uneven calls, few enough to stay cheap."""

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def default_thread_workers() -> int:
    """Return the default thread count, the same as ``ThreadPoolExecutor``'s."""
    return min(32, (os.cpu_count() or 1) + 4)


def chunk_bounds(n_calls: int, n_chunks: int) -> list[tuple[int, int]]:
    """Split ``range(n_calls)`` into at most ``n_chunks`` contiguous, near-equal slices.

    Examples
    --------
    >>> chunk_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    >>> chunk_bounds(2, 8)
    [(0, 1), (1, 2)]
    """
    n_chunks = max(1, min(n_calls, n_chunks))
    size, extra = divmod(n_calls, n_chunks)
    bounds, start = [], 0
    for chunk in range(n_chunks):
        stop = start + size + (1 if chunk < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def run_in_threads(fn: Callable[..., Any], calls: Sequence[Call], n_workers: int) -> list[Any]:
    """Call ``fn(*args, **kwargs)`` for every call, using up to ``n_workers`` threads.

    Returns the results in call order; a call that raised contributes its
    exception instance.

    Examples
    --------
    >>> run_in_threads(lambda x: 10 // x, [((1,), {}), ((0,), {}), ((5,), {})], 2)
    [10, ZeroDivisionError('integer division or modulo by zero'), 2]
    """
    run = _ChunkedRun(fn, calls, chunk_bounds(len(calls), n_workers * CHUNKS_PER_WORKER))
    n_helpers = min(n_workers, run.n_chunks) - 1
    if n_helpers > 0:
        _start_helpers(run, n_helpers)
    run.work()
    return run.wait()


class _ChunkedRun:
    """The shared state of one ``run_in_threads`` call: a chunk cursor and the results."""

    def __init__(
        self, fn: Callable[..., Any], calls: Sequence[Call], bounds: list[tuple[int, int]]
    ) -> None:
        self.fn = fn
        self.calls = calls
        self.results: list[Any] = [None] * len(calls)
        self.n_chunks = len(bounds) if calls else 0
        self._bounds: Iterator[tuple[int, int]] = iter(bounds if calls else [])
        self._lock = threading.Lock()
        self._pending = self.n_chunks
        self._done = threading.Event()
        self._fatal: BaseException | None = None
        if self._pending == 0:
            self._done.set()

    def work(self) -> None:
        """Run chunks until none is left; a fatal ``BaseException`` propagates."""
        while (bounds := self._take()) is not None:
            try:
                self._run_chunk(*bounds)
            except BaseException as exc:
                self._abort(exc)
                raise
            self._finish_chunk()

    def help(self) -> None:
        """Run chunks in a pool thread; a fatal exception is handed to the caller."""
        try:
            self.work()
        except BaseException:
            return  # recorded by _abort; the caller re-raises it from wait()

    def wait(self) -> list[Any]:
        """Block until every chunk has finished, then return the results."""
        self._done.wait()
        if self._fatal is not None:
            raise self._fatal
        return self.results

    def _take(self) -> tuple[int, int] | None:
        with self._lock:
            if self._fatal is not None:
                return None
            return next(self._bounds, None)

    def _run_chunk(self, start: int, stop: int) -> None:
        fn, calls, results = self.fn, self.calls, self.results
        for pos in range(start, stop):
            args, kwargs = calls[pos]
            try:
                results[pos] = fn(*args, **kwargs)
            except Exception as exc:
                results[pos] = exc

    def _finish_chunk(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self._done.set()

    def _abort(self, exc: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = exc
        self._done.set()


def _start_helpers(run: _ChunkedRun, n_helpers: int) -> None:
    pool = _pool(n_helpers)
    for _ in range(n_helpers):
        try:
            pool.submit(run.help)
        except RuntimeError:  # interpreter shutting down: the caller runs every chunk
            return


def _pool(n_threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = ThreadPoolExecutor(n_threads, thread_name_prefix=f"incgraph-inbatch-{n_threads}")
            _pools[n_threads] = pool
        return pool


def _forget_pools_after_fork() -> None:
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)
