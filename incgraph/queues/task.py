"""Tasks: the user's functions, with how many workers run them, where, and whether to cache.

Design note
-----------
``@task`` wraps a function of one item in a `Task`; the function stays
callable as before. A task carries its *worker pool* settings (``max_workers``
and ``backend``: ``"threads"``, the default, or ``"processes"`` for CPU-bound
work in joblib/loky worker processes) and its caching switch. Plain functions
given to ``map``/``chain`` are wrapped by `as_task` with the defaults.

A task's *code version* is ``hashing.code_version(function)`` (with the task's
``version`` when one is declared), so editing the function body invalidates its
cached results while editing comments does not -- exactly as for a processor.
A pipeline reads it once per task and run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, overload

from incgraph import hashing
from incgraph.errors import ConfigurationError, HashingError, PipelineError

__all__ = ["BACKENDS", "Task", "as_task", "task"]

BACKENDS = ("threads", "processes")
"""Where a task's workers run: a thread pool (default) or loky worker processes."""


class Task:
    """A function of one item, ready to be mapped over a queue.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``.
    name : str, optional
        Shown in reports and drawings; defaults to the function's name.
    max_workers : int
        Size of the task's own worker pool. With 1 (the default) the task runs
        inline in its stage's thread.
    backend : {"threads", "processes"}
        ``"processes"`` runs the function in joblib/loky worker processes (it and
        its items must be picklable; cloudpickle is used, so closures work).
    cache : bool
        ``False`` always computes and stores nothing.
    version : optional
        Bump to invalidate every cached result of this task.

    Examples
    --------
    >>> double = Task(lambda x: 2 * x, name="double", max_workers=2)
    >>> double(21), double.name, double.max_workers
    (42, 'double', 2)
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        max_workers: int = 1,
        backend: str = "threads",
        cache: bool = True,
        version: object = None,
    ) -> None:
        if not callable(fn):
            raise PipelineError(f"task: {fn!r} is not callable; pass a function of one item")
        self.fn = fn
        self.name: str = str(name or getattr(fn, "__name__", type(fn).__name__))
        self.max_workers = _check_workers(self.name, max_workers)
        self.backend = _check_backend(self.name, backend)
        self.cache = bool(cache)
        self.version = version
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<Task {self.name} max_workers={self.max_workers} backend={self.backend} "
            f"cache={self.cache}>"
        )

    @property
    def code_version(self) -> str:
        """``hashing.code_version(fn)`` (with ``version`` if declared).

        Computed on each call (a few microseconds: `incgraph.hashing` keeps
        its own memo and re-checks it), so a helper redefined in a notebook is seen
        by the next run; a pipeline reads it once per task per run.
        """
        try:
            if self.version is None:
                return hashing.code_version(self.fn)
            return hashing.code_version(self.fn, self.version)
        except HashingError as exc:
            raise HashingError(
                f"task {self.name!r}: its code cannot be fingerprinted ({exc}); "
                "declare it with @task(cache=False) or wrap it in a Python function"
            ) from exc

    @property
    def qualified_name(self) -> str:
        """``module.qualname`` of the function, recorded with each cached result."""
        fn = self.fn
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', self.name)}"


def _check_workers(name: str, max_workers: object) -> int:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigurationError(
            f"task {name!r}: max_workers={max_workers!r}; pass a whole number >= 1"
        )
    return max_workers


def _check_backend(name: str, backend: object) -> str:
    if backend not in BACKENDS:
        raise ConfigurationError(
            f"task {name!r}: unknown backend {backend!r}; use one of {', '.join(BACKENDS)}"
        )
    return str(backend)


@overload
def task(fn: Callable[[Any], Any], /) -> Task: ...


@overload
def task(
    *,
    max_workers: int = 1,
    name: str | None = None,
    backend: str = "threads",
    cache: bool = True,
    version: object = None,
) -> Callable[[Callable[[Any], Any]], Task]: ...


def task(
    fn: Callable[[Any], Any] | None = None,
    /,
    *,
    max_workers: int = 1,
    name: str | None = None,
    backend: str = "threads",
    cache: bool = True,
    version: object = None,
) -> Task | Callable[[Callable[[Any], Any]], Task]:
    """Turn a function of one item into a `Task`; use bare or with options.

    Parameters
    ----------
    max_workers, name, backend, cache, version
        See `Task`.

    Examples
    --------
    >>> @task
    ... def unzip_file(fname):
    ...     return fname.removesuffix(".zip")
    >>> @task(max_workers=4, name="download")
    ... def download_file(fname):
    ...     return fname
    >>> unzip_file.name, download_file.name, download_file.max_workers
    ('unzip_file', 'download', 4)
    >>> unzip_file("cat.zip")
    'cat'
    """

    def wrap(f: Callable[[Any], Any]) -> Task:
        return Task(
            f, name=name, max_workers=max_workers, backend=backend, cache=cache, version=version
        )

    if fn is not None:
        return wrap(fn)
    return wrap


def as_task(fn: Task | Callable[[Any], Any]) -> Task:
    """``fn`` itself if it is a `Task`, else ``fn`` wrapped with the default options.

    Examples
    --------
    >>> as_task(len).name
    'len'
    """
    return fn if isinstance(fn, Task) else Task(fn)
