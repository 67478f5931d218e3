"""The asyncio executor: one event loop in a background thread.

Design note
-----------
Processors whose ``process`` is ``async def`` (HTTP calls to a model server,
database queries) spend their time waiting. This executor runs them as
coroutines on one event loop, so independent nodes of a graph run and the
items of a batch pass wait concurrently, in one thread.

Jobs run in this process (``in_process = True``). The engine's job functions
carry an ``asynchronous`` twin (see `incgraph.run.jobs`); `submit`
awaits the twin on the loop. A plain function (or a processor with a
synchronous ``process``) runs in the loop's default thread pool via
``asyncio.to_thread``, so it never blocks the coroutines.

The loop lives in its own daemon thread, started on the first job, so it works
the same from a script and from Jupyter (whose own loop is never touched).
``shutdown`` cancels what is still pending, stops the loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["AsyncioExecutor"]

T = TypeVar("T")


class AsyncioExecutor:
    """Run jobs as coroutines on an event loop in a background thread.

    Parameters
    ----------
    max_concurrency : int
        How many jobs a batch keeps in flight at once (each may gather many items).

    Examples
    --------
    >>> async def double(x):
    ...     return 2 * x
    >>> ex = AsyncioExecutor()
    >>> ex.submit(double, 21).result()
    42
    >>> ex.shutdown()
    """

    in_process = True
    name = "asyncio"

    def __init__(self, max_concurrency: int = 64) -> None:
        self.workers = max_concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<AsyncioExecutor running={self._loop is not None}>"

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, ready), name="incgraph-asyncio", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Await ``fn``'s asynchronous twin (or ``fn`` itself if it is async) on the loop."""
        twin = getattr(fn, "asynchronous", None)
        coro: Coroutine[Any, Any, T]
        if twin is not None:
            coro = twin(*args)
        elif inspect.iscoroutinefunction(fn):
            coro = fn(*args)
        else:
            coro = asyncio.to_thread(fn, *args)
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop())

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Nothing to release: in-process instances live on their nodes."""

    def shutdown(self, wait: bool = True) -> None:
        """Cancel pending jobs, stop the loop and join its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if wait:
            thread.join()


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
