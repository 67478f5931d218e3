"""The default pipeline behind the module-level functions (``incgraph.queues.map`` ...).

Design note
-----------
skorche declares with module functions (``skorche.map(...)``, then
``skorche.run()``), so the module keeps one default `Pipeline`. ``run()``
*consumes* it: the run starts and a fresh default pipeline takes its place, so
a script (or a test) can declare and run again without leftovers; ``reset()``
discards the current declarations explicitly. The default pipeline uses the
default store (``$INCGRAPH_STORE`` or ``./.incgraph``); ``reset(store=...)``
chooses another. Code that needs several pipelines at once uses explicit
`Pipeline` objects, which never share state.

The names ``map`` and ``filter`` shadow the builtins in this module on purpose
(they are skorche's API); the builtins are reached through `builtins`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from incgraph.queues.execution import PipelineRun
from incgraph.queues.pipeline import Pipeline
from incgraph.queues.queue import Queue
from incgraph.queues.report import PipelineReport
from incgraph.queues.task import Task
from incgraph.store import Store

__all__ = [
    "batch",
    "chain",
    "default_pipeline",
    "filter",
    "map",
    "merge",
    "render_pipeline",
    "reset",
    "run",
    "split",
    "unbatch",
]

_lock = threading.Lock()
_default: Pipeline | None = None


def default_pipeline() -> Pipeline:
    """The pipeline the module-level functions declare into (created on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Pipeline()
        return _default


def reset(store: str | os.PathLike[str] | Store | None = None) -> Pipeline:
    """Discard the default pipeline's declarations; the new one caches in ``store``.

    Examples
    --------
    >>> import incgraph.queues as iq
    >>> _ = iq.map(abs, iq.Queue([-1]))
    >>> len(iq.default_pipeline().stages)
    1
    >>> _ = iq.reset(store=":memory:")
    >>> len(iq.default_pipeline().stages)
    0
    """
    global _default
    with _lock:
        _default = Pipeline(store)
        return _default


def map(
    task: Task | Callable[[Any], Any], queue_in: Queue, queue_out: Queue | None = None
) -> Queue:
    """`Pipeline.map` on the default pipeline."""
    return default_pipeline().map(task, queue_in, queue_out)


def chain(
    tasks: Sequence[Task | Callable[[Any], Any]], queue_in: Queue, queue_out: Queue | None = None
) -> Queue:
    """`Pipeline.chain` on the default pipeline."""
    return default_pipeline().chain(tasks, queue_in, queue_out)


def split(
    predicate: Callable[[Any], Any],
    queue_in: Queue,
    predicate_values: Sequence[Any] = (True, False),
) -> tuple[Queue, ...]:
    """`Pipeline.split` on the default pipeline."""
    return default_pipeline().split(predicate, queue_in, predicate_values)


def merge(queues: Iterable[Queue], queue_out: Queue | None = None) -> Queue:
    """`Pipeline.merge` on the default pipeline."""
    return default_pipeline().merge(queues, queue_out)


def batch(queue_in: Queue, batch_size: int = 10, queue_out: Queue | None = None) -> Queue:
    """`Pipeline.batch` on the default pipeline."""
    return default_pipeline().batch(queue_in, batch_size, queue_out)


def unbatch(queue_in: Queue, queue_out: Queue | None = None) -> Queue:
    """`Pipeline.unbatch` on the default pipeline."""
    return default_pipeline().unbatch(queue_in, queue_out)


def filter(
    predicate: Callable[[Any], Any], queue_in: Queue, queue_out: Queue | None = None
) -> Queue:
    """`Pipeline.filter` on the default pipeline."""
    return default_pipeline().filter(predicate, queue_in, queue_out)


def render_pipeline(path: str | os.PathLike[str] | None = None, format: str = "mermaid") -> str:
    """`Pipeline.render` of the default pipeline (no root needed)."""
    return default_pipeline().render(path, format)


def run(
    block: bool = True,
    *,
    capacity: int | None = None,
    chunk_size: int | None = None,
) -> PipelineReport | PipelineRun:
    """Run the default pipeline (see `Pipeline.run`) and start a fresh one.

    The new default pipeline keeps the same store location.
    """
    global _default
    with _lock:
        current = _default if _default is not None else Pipeline()
        _default = Pipeline(current.store_location)
    return current.run(block, capacity=capacity, chunk_size=chunk_size)
