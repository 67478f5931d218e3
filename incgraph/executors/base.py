"""The executor protocol and the serial executor.

Design note
-----------
Executors only *submit*: the engine loop (``incgraph.run.engine``) decides
what runs, in what order, what is a hit and what is recorded. An executor
takes a callable and its arguments and returns a
`concurrent.futures.Future`.

``in_process`` tells the engine whether jobs run in this process (they may
use a node's own processor instance) or elsewhere (they get a picklable
`WorkerJob` and keep instances per worker).

The serial executor runs each job at once in the caller's thread and returns
an already-done future: it is the default and the debugging path (breakpoints
and tracebacks work as usual). The engine treats it like any other executor:
it submits every job it computes, and records a future that is already done
at once, so an executor that finishes jobs inside ``submit`` needs nothing
special.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["DoneFuture", "Executor", "SerialExecutor"]

T = TypeVar("T")


@runtime_checkable
class Executor(Protocol):
    """Runs jobs handed over by the engine loop."""

    in_process: bool
    name: str

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``fn(*args)``; return its future."""
        ...

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Drop processor instances held by out-of-process workers (no-op in process)."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Stop workers; no job may be submitted afterwards."""
        ...


_DONE_CONDITION = threading.Condition()  # what concurrent.futures.wait() takes of a done future


class DoneFuture(Future[T]):
    """A future finished when it is made: reading it takes no lock.

    What the serial executor returns. A plain `Future` makes a lock and takes it
    on every read; for a result that never changes that costs more than the
    engine's own work per node. It behaves as a finished `Future` (``done()``,
    ``result()``, ``exception()``, callbacks, `concurrent.futures.wait`).

    Examples
    --------
    >>> DoneFuture(3).result(), DoneFuture(exception=ValueError("no")).exception()
    (3, ValueError('no'))
    """

    def __init__(self, result: Any = None, exception: BaseException | None = None) -> None:
        # not Future.__init__: nothing here changes after construction, so no lock of its own
        self._condition = _DONE_CONDITION
        self._state = "FINISHED"
        self._result = result
        self._exception = exception
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> T:
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        fn(self)


class SerialExecutor:
    """Run every job immediately in the calling thread.

    Examples
    --------
    >>> SerialExecutor().submit(pow, 2, 10).result()
    1024
    """

    in_process = True
    name = "serial"

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` now; the returned future is already done."""
        try:
            return DoneFuture(fn(*args))
        except BaseException as exc:  # delivered through the future, like a pool would
            return DoneFuture(exception=exc)

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Nothing to release: in-process instances live on their nodes."""

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop."""
