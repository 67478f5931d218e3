"""Stages: what a pipeline is made of, as plain data.

Design note
-----------
A `Stage` is one declared step -- a task mapped over a queue, or an op
(``split``, ``merge``, ``batch``, ``unbatch``, ``filter``) -- with its input and
output queues and its parameters. Declaring a pipeline only appends stages; the
runtime (`incgraph.queues.execution`) reads them when ``run()`` starts, the
drawing (`incgraph.queues.drawing`) when it is rendered, and each stage is
also a node of the pipeline's graph (`incgraph.queues.nodes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from incgraph.queues.task import Task

if TYPE_CHECKING:
    from incgraph.core.graph import Node
    from incgraph.queues.queue import Queue

__all__ = ["OP_KINDS", "Stage", "callable_name"]

OP_KINDS = ("split", "merge", "batch", "unbatch", "filter")


def callable_name(fn: Callable[..., Any]) -> str:
    """The name a predicate is shown with.

    Examples
    --------
    >>> callable_name(len), callable_name(lambda x: x)
    ('len', '<lambda>')
    """
    if isinstance(fn, Task):
        return fn.name
    return str(getattr(fn, "__name__", type(fn).__name__))


@dataclass(eq=False)
class Stage:
    """One step of a pipeline.

    Attributes
    ----------
    kind : ``"task"`` or one of `OP_KINDS`.
    name : unique within the pipeline; the node id in ``pipeline.graph`` and the key
        of the run report's ``nodes``.
    inputs, outputs : the queues read and written (``split`` writes one per value).
    task : the task of a ``"task"`` stage.
    predicate : the function of a ``split`` or ``filter``.
    values : the predicate values of a ``split``, one output queue each.
    batch_size : the size of a ``batch``.
    node : the stage's node in ``pipeline.graph``.
    """

    kind: str
    name: str
    inputs: list[Queue]
    outputs: list[Queue] = field(default_factory=list)
    task: Task | None = None
    predicate: Callable[[Any], Any] | None = None
    values: tuple[Any, ...] = ()
    batch_size: int = 0
    node: Node | None = None

    def label(self) -> str:
        """What a drawing shows: the task and its pool, or the op and its parameter."""
        if self.task is not None:
            t = self.task
            extras = []
            if t.max_workers > 1 or t.backend != "threads":
                extras.append(f"{t.max_workers} {t.backend}")
            if not t.cache:
                extras.append("no cache")
            return t.name + (f" ({', '.join(extras)})" if extras else "")
        if self.kind in ("split", "filter"):
            assert self.predicate is not None
            return f"{self.kind}: {callable_name(self.predicate)}"
        if self.kind == "batch":
            return f"batch: {self.batch_size}"
        return self.kind

    def output_label(self, index: int) -> str:
        """The arrow label towards output ``index`` (a split's predicate value)."""
        return repr(self.values[index]) if self.kind == "split" else ""
