"""The ``inbatch_parallel`` decorator: init -> parallel calls -> post.

A decorated method is called once by the user; the decorator turns that into
many calls::

    entries = init(*call_args, **hook_kwargs)          # one entry per call
    results = [method(self, *entry_args, *call_args, **entry_kwargs, **call_kwargs)
               for each entry, in parallel]            # exceptions kept in place
    return post(results, *call_args, **hook_kwargs)    # or the results themselves

where ``hook_kwargs`` is the decorator's extra keywords updated with the call's
keywords (so a keyword given at call time overrides a decorator default).

Targets decide where the calls run:

========  ===============================================================
threads   the method itself, per entry, in a shared thread pool (default)
async     the method is ``async def``; all entries gathered in one event loop
nogil     the method is called once and returns a function (e.g. numba
          ``@njit(nogil=True)``), which is called per entry in threads
mpc       as nogil, but the function runs in worker processes (joblib/loky)
========  ===============================================================

For nogil and mpc the returned function gets exactly what the method would
have got, without ``self``: the entry's arguments, then the call's.

Failures are data: a call that raised leaves its exception (with its
traceback) at its position in ``results``. Without a ``post`` function a failure
raises `incgraph.errors.ParallelError` carrying every exception; it is
never swallowed.

``init`` and ``post`` are either method names, looked up on ``self`` at call
time (so subclasses can override them), or plain functions called with ``self``
first. ``n_workers`` is the one reserved decorator keyword: it sets the number
of threads or processes (or, for async, the number of calls in flight) and is
not passed on to init and post.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from incgraph.errors import ConfigurationError, ParallelError
from incgraph.parallel.coroutines import run_coroutines
from incgraph.parallel.entries import Call, calls_from_entries
from incgraph.parallel.processes import default_process_workers, run_in_processes
from incgraph.parallel.threads import default_thread_workers, run_in_threads
from incgraph.sentinels import MISSING

__all__ = ["TARGETS", "any_action_failed", "inbatch_parallel"]

TARGETS = ("threads", "nogil", "async", "mpc")
"""The valid ``target=`` values of `inbatch_parallel`."""

_F = TypeVar("_F", bound=Callable[..., Any])
Hook = str | Callable[..., Any]


def any_action_failed(results: list[Any]) -> bool:
    """Return whether any parallel call failed, i.e. any result is an exception.

    Examples
    --------
    >>> any_action_failed([1, 2]), any_action_failed([1, ValueError("bad")])
    (False, True)
    """
    return any(isinstance(result, BaseException) for result in results)


def inbatch_parallel(
    *,
    init: Hook,
    post: Hook | None = None,
    target: str = "threads",
    n_workers: int | None = None,
    **kwargs: Any,
) -> Callable[[_F], _F]:
    """Run a method once per entry returned by ``init``, in parallel, then ``post``.

    Parameters
    ----------
    init : str or callable
        Makes the entries, one per call. A name is looked up on ``self`` and called
        as ``self.init(*call_args, **hook_kwargs)``; a function is called as
        ``init(self, *call_args, **hook_kwargs)``. An entry that is a dict gives
        keyword arguments, a 2-tuple ``(args, kwargs)`` both, another sequence
        positional arguments, anything else one argument.
    post : str or callable, optional
        Receives the results in init order, a failed call's entry being its
        exception: ``self.post(results, *call_args, **hook_kwargs)`` (or
        ``post(self, results, ...)``). Its return value is the method's. Without
        it the method returns the results list, or raises ``ParallelError`` if any
        call failed.
    target : {"threads", "nogil", "async", "mpc"}
        Where the calls run; see the module notes. An unknown target raises
        ``ValueError`` when the method is decorated.
    n_workers : int, optional
        Threads (threads, nogil; default ``min(32, cpus + 4)`` for threads and the
        CPU count for nogil), processes (mpc; default the CPU count) or calls in
        flight at once (async; default all). Reserved: not passed to init or post.
    **kwargs
        Passed to ``init`` and ``post`` (not to the method), updated with the
        call's keyword arguments.

    Examples
    --------
    >>> from incgraph.parallel import Batch, action
    >>> class Numbers(Batch):
    ...     def _init(self, *args, **kwargs):
    ...         return self.indices
    ...     def _post(self, results, *args, **kwargs):
    ...         self.data = results
    ...         return self
    ...     @action
    ...     @inbatch_parallel(init="_init", post="_post")
    ...     def scale(self, index, factor):
    ...         return self.data[index] * factor
    >>> Numbers([1, 2, 3]).scale(10).data
    [10, 20, 30]
    """
    _check_hook("init", init, required=True)
    _check_hook("post", post, required=False)
    if n_workers is not None and (
        isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
    ):
        raise ConfigurationError(
            f"inbatch_parallel: n_workers must be a positive int, got {n_workers!r}"
        )

    def decorate(method: _F) -> _F:
        if target not in TARGETS:
            raise ConfigurationError(
                f"unknown target {target!r} for {method.__qualname__}: "
                f"valid targets are {', '.join(TARGETS)}"
            )
        if target != "async" and inspect.iscoroutinefunction(method):
            raise TypeError(
                f"{method.__qualname__} is `async def` but has target={target!r}; "
                "use target='async' (or make it a plain def)"
            )
        plan = _Plan(method, init, post, target, n_workers, kwargs)

        @functools.wraps(method)
        def run_parallel(self: Any, *args: Any, **call_kwargs: Any) -> Any:
            return plan.run(self, args, call_kwargs)

        return run_parallel  # type: ignore[return-value]

    return decorate


def _check_hook(role: str, hook: Any, *, required: bool) -> None:
    if hook is None and not required:
        return
    if not isinstance(hook, str) and not callable(hook):
        raise TypeError(
            f"inbatch_parallel: {role} must be a method name (str) or a function, "
            f"got {type(hook).__name__}"
        )


class _Plan:
    """Everything one decoration fixed: the method, hooks, target and extra keywords."""

    def __init__(
        self,
        method: Callable[..., Any],
        init: Hook,
        post: Hook | None,
        target: str,
        n_workers: int | None,
        hook_kwargs: Mapping[str, Any],
    ) -> None:
        self.method = method
        self.init = init
        self.post = post
        self.target = target
        self.n_workers = n_workers
        self.hook_kwargs = dict(hook_kwargs)

    def run(self, owner: Any, args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> Any:
        """Run init, the parallel calls and post for one call of the decorated method."""
        hook_kwargs = {**self.hook_kwargs, **call_kwargs}
        entries = self._call_hook("init", self.init, owner, args, hook_kwargs)
        where = f"init {_hook_name(self.init)} of {self._label(owner)}"
        calls = calls_from_entries(entries, args, call_kwargs, where)
        results = self._run_calls(owner, args, call_kwargs, calls)
        if self.post is None:
            return _results_or_raise(results, self._label(owner))
        return self._call_hook("post", self.post, owner, (results, *args), hook_kwargs)

    def _run_calls(
        self, owner: Any, args: tuple[Any, ...], call_kwargs: dict[str, Any], calls: list[Call]
    ) -> list[Any]:
        if self.target == "threads":
            bound = functools.partial(self.method, owner)
            return run_in_threads(bound, calls, self.n_workers or default_thread_workers())
        if self.target == "async":
            return run_coroutines(functools.partial(self.method, owner), calls, self.n_workers)
        fn = self._function_to_run(owner, args, call_kwargs)
        if self.target == "nogil":
            return run_in_threads(fn, calls, self.n_workers or default_process_workers())
        return run_in_processes(fn, calls, self.n_workers or default_process_workers())

    def _function_to_run(
        self, owner: Any, args: tuple[Any, ...], call_kwargs: dict[str, Any]
    ) -> Callable[..., Any]:
        fn: Callable[..., Any] = self.method(owner, *args, **call_kwargs)
        if not callable(fn):
            raise TypeError(
                f"{self._label(owner)} has target={self.target!r}, so it must return the "
                f"function to run for each entry, but it returned {type(fn).__name__}; "
                "return the function (e.g. a numba @njit(nogil=True) function) instead "
                "of calling it"
            )
        return fn

    def _call_hook(
        self, role: str, hook: Hook, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not isinstance(hook, str):
            return hook(owner, *args, **kwargs)
        bound = getattr(owner, hook, MISSING)
        if bound is MISSING:
            raise AttributeError(
                f"{self._label(owner)}: {role} method {hook!r} not found on "
                f"{type(owner).__name__}; define it or pass {role}= a function"
            )
        return bound(*args, **kwargs)

    def _label(self, owner: Any) -> str:
        return f"{type(owner).__name__}.{self.method.__name__}"


def _hook_name(hook: Hook) -> str:
    return repr(hook) if isinstance(hook, str) else getattr(hook, "__qualname__", repr(hook))


def _results_or_raise(results: list[Any], label: str) -> list[Any]:
    failures = [
        (pos, result) for pos, result in enumerate(results) if isinstance(result, BaseException)
    ]
    if not failures:
        return results
    first_pos, first = failures[0]
    raise ParallelError(
        f"{len(failures)} of {len(results)} parallel calls of {label} failed; call "
        f"{first_pos} raised {type(first).__name__}: {first}. Pass post= to handle failures "
        "item by item; every exception is in .exceptions",
        [exc for _, exc in failures],
    ) from first
