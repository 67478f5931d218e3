"""Run many calls of one function in worker processes, in chunks (the ``mpc`` target).

Policy
------
Workers come from joblib's loky executor (``get_reusable_executor``): it is
shared with joblib, survives between actions (workers start once, not per call),
restarts workers that crashed, and pickles with cloudpickle, so a function
defined in ``__main__``, in a notebook or as a closure can be sent. Its arguments
and return values must be picklable.

As with threads, calls travel in chunks (about four per worker), which turns
thousands of tiny round trips into a few dozen. Each worker runs its chunk in a
loop and catches exceptions per call, so one failure does not lose the rest of
the chunk.

Tracebacks
----------
A traceback object cannot cross a process boundary. The worker formats it and
attaches the text to the exception as a note (``add_note``; it is printed under
the exception's message), so the failing line in the worker is visible in the
parent. An exception that cannot be pickled back is replaced by a
``ParallelError`` holding its type, message and traceback text.

If a whole chunk fails (a worker died, or a return value could not be
pickled), every call of that chunk gets that chunk's exception, with a note naming
the calls it covered. Workers exit when the process that started them dies.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from incgraph.errors import ParallelError
from incgraph.executors.processes import is_pickling_error, unsendable
from incgraph.parallel.entries import Call
from incgraph.parallel.threads import CHUNKS_PER_WORKER, chunk_bounds

__all__ = ["default_process_workers", "run_in_processes"]


def default_process_workers() -> int:
    """Return the default number of worker processes: one per CPU."""
    return os.cpu_count() or 1


def run_in_processes(fn: Callable[..., Any], calls: Sequence[Call], n_workers: int) -> list[Any]:
    """Call ``fn(*args, **kwargs)`` for every call in up to ``n_workers`` processes.

    Returns the results in call order; a call that raised contributes its
    exception instance.

    Examples
    --------
    >>> run_in_processes(divmod, [((7, 2), {}), ((1, 0), {})], 2)
    [(3, 1), ZeroDivisionError('integer division or modulo by zero')]
    """
    if not calls:
        return []
    from joblib.externals.loky import get_reusable_executor  # joblib loads lazily

    executor = get_reusable_executor(max_workers=n_workers)
    bounds = chunk_bounds(len(calls), n_workers * CHUNKS_PER_WORKER)
    futures = [
        executor.submit(run_chunk_in_worker, fn, list(calls[start:stop])) for start, stop in bounds
    ]
    results: list[Any] = []
    for future, (start, stop) in zip(futures, bounds, strict=True):
        try:
            results.extend(future.result())
        except Exception as exc:
            if is_pickling_error(exc):
                exc = _naming_what_cannot_be_sent(fn, calls, start, stop, exc)
            _add_note(exc, f"calls {start}..{stop - 1} failed together in the worker pool")
            results.extend([exc] * (stop - start))
    return results


def _naming_what_cannot_be_sent(
    fn: Callable[..., Any], calls: Sequence[Call], start: int, stop: int, exc: Exception
) -> Exception:
    """A PicklingError naming the function or argument that could not be pickled (else ``exc``)."""
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    candidates: list[tuple[str, str, Any]] = [(f"the function {name}", name, fn)]
    for i in range(start, stop):
        args, kwargs = calls[i]
        candidates += [(f"argument {j} of call {i}", f"args[{j}]", a) for j, a in enumerate(args)]
        candidates += [(f"argument {k!r} of call {i}", k, v) for k, v in kwargs.items()]
    found = unsendable(candidates)
    if found is None:
        return exc
    what, named = found
    error = pickle.PicklingError(
        f"{what} cannot be sent to a worker process: {named}; make it picklable (open files, "
        "locks and connections inside the function, not at module level) or use "
        "target='threads'"
    )
    error.__cause__ = named
    return error


def run_chunk_in_worker(fn: Callable[..., Any], calls: list[Call]) -> list[Any]:
    """Run one chunk inside a worker process, catching exceptions per call.

    The worker's first chunk starts its watchdog: it exits if the process that
    started it dies (`incgraph.executors.watchdog`).
    """
    from incgraph.executors.watchdog import watch_parent

    watch_parent()
    results: list[Any] = []
    for args, kwargs in calls:
        try:
            results.append(fn(*args, **kwargs))
        except Exception as exc:
            results.append(_sendable(exc))
    return results


def _sendable(exc: Exception) -> Exception:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    note = f"raised in worker process {os.getpid()}:\n{text.rstrip()}"
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception as pickling_error:
        return ParallelError(
            f"{type(exc).__qualname__}: {exc} (this exception cannot be pickled back from "
            f"the worker process: {pickling_error}; make it picklable to get the "
            f"original)\n{note}",
            [],
        )
    _add_note(exc, note)
    return exc


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:  # Python 3.10: keep the note where 3.11's traceback printing looks for it
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]
