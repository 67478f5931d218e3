"""Executor objects that implement only ``submit``: a user's own, or a standard library pool.

The engine asks every executor for ``in_process``, ``name``, ``release`` and
``shutdown`` besides ``submit``. An object that has ``submit`` but not the rest
(a `concurrent.futures.ThreadPoolExecutor`, a class of a user's that runs the
function and returns a done future) is wrapped: its own members are used where
it has them, and the missing ones get these defaults. Its ``shutdown`` is never
called: whoever made the object shuts it down.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["AdaptedExecutor"]

T = TypeVar("T")


class AdaptedExecutor:
    """An object with ``submit`` seen through the executor protocol.

    ``in_process`` is the object's own if it has one, else true unless it is a
    `concurrent.futures.ProcessPoolExecutor` (whose jobs run in other processes
    and so get a picklable job).

    Examples
    --------
    >>> from concurrent.futures import Future
    >>> class Inline:
    ...     def submit(self, fn, *args):
    ...         done = Future()
    ...         done.set_result(fn(*args))
    ...         return done
    >>> ex = AdaptedExecutor(Inline())
    >>> ex.in_process, ex.name, ex.submit(pow, 2, 3).result()
    (True, 'Inline', 8)
    """

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        default = not isinstance(wrapped, ProcessPoolExecutor)
        self.in_process: bool = bool(getattr(wrapped, "in_process", default))
        self.name: str = str(getattr(wrapped, "name", type(wrapped).__name__))
        self._submit: Callable[..., Future[Any]] = wrapped.submit

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """The wrapped object's ``submit``."""
        return self._submit(fn, *args)

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """The wrapped object's ``release`` if it has one; else nothing to release."""
        release = getattr(self.wrapped, "release", None)
        if callable(release):
            release(instance_keys)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing: the object belongs to whoever made it, who shuts it down."""
