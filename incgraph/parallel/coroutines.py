"""Run one coroutine per call with ``asyncio.gather``, from synchronous code.

Policy
------
An ``async``-target action is called like any other action, synchronously, and
blocks until every coroutine has finished. The coroutines run concurrently in
one event loop, gathered with ``return_exceptions=True`` so that a failing call
becomes its entry in the results instead of cancelling the others.

Which loop:

* no loop running in this thread (a script, a worker thread): a fresh loop via
  ``asyncio.run`` in the calling thread;
* a loop already running in this thread (Jupyter, or the action called from a
  coroutine): the running loop cannot be re-entered, so a fresh loop runs in a
  short-lived helper thread and the caller blocks until it is done. The caller's
  ``contextvars`` are copied into it. The caller's loop is blocked meanwhile, so
  the coroutines must not await futures or locks that belong to it.

``n_workers``, when given, caps how many calls are in flight at once (a
semaphore); by default all run at once, as ``asyncio.gather`` would.

A sync callable that returns an awaitable is accepted too; a call that returns a
plain value just contributes that value.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

from incgraph.parallel.entries import Call

__all__ = ["run_coroutines"]


def run_coroutines(
    fn: Callable[..., Any], calls: Sequence[Call], n_workers: int | None = None
) -> list[Any]:
    """Await ``fn(*args, **kwargs)`` for every call concurrently; return results in order.

    Examples
    --------
    >>> async def half(x):
    ...     return 1 / x
    >>> run_coroutines(half, [((2,), {}), ((0,), {})])
    [0.5, ZeroDivisionError('division by zero')]
    """

    async def gather_all() -> list[Any]:
        limit = asyncio.Semaphore(n_workers) if n_workers else None
        return await asyncio.gather(
            *(_one_call(fn, args, kwargs, limit) for args, kwargs in calls),
            return_exceptions=True,
        )

    if not calls:
        return []
    if _loop_is_running():
        results: list[Any] = _run_in_helper_thread(gather_all)
    else:
        results = asyncio.run(gather_all())
    return results


async def _one_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Any,
    limit: asyncio.Semaphore | None,
) -> Any:
    if limit is None:
        return await _await_result(fn(*args, **kwargs))
    async with limit:
        return await _await_result(fn(*args, **kwargs))


async def _await_result(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_helper_thread(main: Callable[[], Any]) -> Any:
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run_loop() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, main())
        except BaseException as exc:
            outcome["error"] = exc

    helper = threading.Thread(target=run_loop, name="incgraph-inbatch-async", daemon=True)
    helper.start()
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
