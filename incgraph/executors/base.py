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

The serial executor runs each job at once in the caller's thread: it is the
default and the debugging path (breakpoints and tracebacks work as usual).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Executor", "SerialExecutor"]

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


class SerialExecutor:
    """Run every job immediately in the calling thread.

    Examples
    --------
    >>> SerialExecutor().submit(pow, 2, 10).result()
    1024
    """

    in_process = True
    inline = True  # jobs are finished inside submit(): the engine walks topological order
    name = "serial"

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` now; the returned future is already done."""
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # delivered through the future, like a pool would
            fut.set_exception(exc)
        return fut

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Nothing to release: in-process instances live on their nodes."""

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop."""
