"""Worker pools of tasks, and the function every worker runs on a chunk of items.

Design note
-----------
Each task gets its *own* pool for the run: an `InlinePool` (the calling
thread) for one thread worker, a `ThreadPoolExecutor` for more, or a loky
``ProcessPoolExecutor`` from joblib (cloudpickle, so functions defined in
``__main__``, notebooks and closures can be sent). Pools are shut down when
their stage ends, normally or not, and worker processes exit if the process
that started them dies (`incgraph.executors.watchdog`).

Work is handed over a chunk at a time (`apply_chunk`): the worker loops
over the items, catching each item's exception so one failure does not lose
the rest of the chunk, and returns results, errors by position and (when the
task caches) each item's duration. A ``BaseException`` that is not an
``Exception`` (``KeyboardInterrupt``, ``SystemExit``) is not caught: it stops
the run. From worker processes, exceptions that cannot be pickled back are
replaced by a `PipelineError` carrying their text.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from incgraph.errors import PipelineError
from incgraph.queues.task import Task

__all__ = ["ChunkResult", "InlinePool", "apply_chunk", "make_pool", "shutdown_pool"]

ChunkResult = tuple[list[Any], dict[int, tuple[BaseException, str]], list[float] | None, float]
"""(results, {position: (exception, traceback text)}, durations or None, seconds for the chunk)."""


def apply_chunk(
    fn: Callable[[Any], Any], items: list[Any], timed: bool = False, portable: bool = False
) -> ChunkResult:
    """Apply ``fn`` to each item, catching each item's exception.

    Examples
    --------
    >>> results, errors, durations, _ = apply_chunk(lambda x: 10 // x, [5, 0, 2])
    >>> results, sorted(errors), durations
    ([2, None, 5], [1], None)
    """
    out: list[Any] = []
    append = out.append
    errors: dict[int, tuple[BaseException, str]] = {}
    start = time.perf_counter()
    if timed:
        durations: list[float] | None = []
        assert durations is not None
        clock = time.perf_counter
        for item in items:
            t0 = clock()
            try:
                append(fn(item))
            except Exception as exc:
                errors[len(out)] = _caught(exc, portable)
                append(None)
            durations.append(clock() - t0)
    else:
        durations = None
        for item in items:
            try:
                append(fn(item))
            except Exception as exc:
                errors[len(out)] = _caught(exc, portable)
                append(None)
    return out, errors, durations, time.perf_counter() - start


def _caught(exc: Exception, portable: bool) -> tuple[BaseException, str]:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if not portable:
        return exc, text
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception as pickling_error:
        return (
            PipelineError(
                f"{type(exc).__qualname__}: {exc} (cannot be pickled back from the worker "
                f"process: {pickling_error}; make the exception picklable to get the original)"
            ),
            text,
        )
    exc.__traceback__ = None
    return exc, text


class InlinePool(Executor):
    """The pool of a task with one thread worker: ``submit`` runs the call at once.

    Its futures are done when ``submit`` returns, so the stage's one loop needs
    no special path for it, and a chunk costs no hand-off to another thread.

    Examples
    --------
    >>> InlinePool().submit(pow, 2, 10).result()
    1024
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Call ``fn(*args, **kwargs)`` now; its result (or exception) is in the future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def make_pool(t: Task, stage_name: str) -> Executor:
    """The worker pool of task ``t`` for one run (`InlinePool` for one thread worker)."""
    if t.max_workers == 1 and t.backend == "threads":
        return InlinePool()
    if t.backend == "processes":
        from joblib.externals.loky import ProcessPoolExecutor  # joblib loads lazily

        from incgraph.executors.watchdog import watch_parent

        # each worker exits if this process dies
        pool: Executor = ProcessPoolExecutor(
            max_workers=t.max_workers, initializer=watch_parent, initargs=(os.getpid(),)
        )
        return pool
    return ThreadPoolExecutor(
        max_workers=t.max_workers, thread_name_prefix=f"incgraph-queues-{stage_name}"
    )


def shutdown_pool(pool: Executor, *, aborted: bool) -> None:
    """Stop ``pool``: queued work is cancelled; waits for the items being computed."""
    if isinstance(pool, (ThreadPoolExecutor, InlinePool)):
        pool.shutdown(wait=True, cancel_futures=True)
    else:  # loky: no cancel_futures; kill the workers when the run was aborted
        pool.shutdown(wait=True, kill_workers=aborted)  # type: ignore[call-arg]
