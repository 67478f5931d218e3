"""How a pipeline compiles to the node graph: one node per task and per op.

Design note
-----------
Every stage of a pipeline is a node of the pipeline's
`ProcessGraph` (``pipeline.graph``), bound by name to the
node that produces its input: an input queue is a constant node, a task is a
node of a processor generated for it (`task_processor`), an op is a node
of one of the op processors below. The graph is what ``render``, the CLI and the
store's lineage see; the queue runtime streams items through the same stages.

The cache key of one task application is the key this graph's engine would
compute for the task node with its ``item`` input bound to the item::

    hashing.node_key(code_version(fn), data_version({}), {"item": data_version(item)})

so a result cached by a pipeline is a hit for a ``ProcessGraph`` that runs the
same task on the same item, and the other way round. To make that hold, the
generated processor's ``code_source`` is the task's function and its
``version`` the task's, so the node's code version *is* the task's
(``hashing.code_version(fn[, version])``), not a fingerprint of the wrapper.

Op processors apply their op to the value they are given, so the graph stays
runnable node by node: ``Split`` returns the predicate's value for an item,
``Filter`` whether to keep it, ``Batch`` groups a list, ``Unbatch`` flattens one
batch, ``Merge`` lists its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from incgraph.core.processor import Processor
from incgraph.queues.task import Task

__all__ = [
    "BatchOp",
    "FilterOp",
    "MergeOp",
    "SplitOp",
    "TaskProcessor",
    "UnbatchOp",
    "task_processor",
]


class TaskProcessor(Processor):
    """Base of the processors generated for tasks: ``process(item)`` calls the task's function."""

    function: Callable[[Any], Any]
    task: Task

    def process(self, item: Any) -> Any:
        """Apply the task's function to one item."""
        return type(self).function(item)


def task_processor(t: Task) -> type[TaskProcessor]:
    """A `TaskProcessor` subclass named after ``t``, calling ``t.fn``.

    Examples
    --------
    >>> from incgraph.queues.task import Task
    >>> cls = task_processor(Task(str.upper, name="shout"))
    >>> cls.__name__, cls().process("hi")
    ('shout', 'HI')
    """
    name = t.name if t.name.isidentifier() else "task"
    return type(
        name,
        (TaskProcessor,),
        {
            "function": staticmethod(t.fn),
            "task": t,
            "code_source": t.fn,
            "version": t.version,
            "__module__": getattr(t.fn, "__module__", __name__),
            "__qualname__": name,
            "__doc__": f"Generated processor of task {t.name!r}.",
        },
    )


class SplitOp(Processor):
    """``split``: which output an item goes to (the predicate's value)."""

    def __init__(self, predicate: Callable[[Any], Any], values: tuple[Any, ...] = (True, False)):
        self.predicate = predicate
        self.values = values

    def process(self, item: Any) -> Any:
        """The predicate's value for ``item``."""
        return self.predicate(item)


class FilterOp(Processor):
    """``filter``: whether an item is kept."""

    def __init__(self, predicate: Callable[[Any], Any]):
        self.predicate = predicate

    def process(self, item: Any) -> bool:
        """True if ``item`` is kept."""
        return bool(self.predicate(item))


class BatchOp(Processor):
    """``batch``: consecutive items grouped in lists of ``batch_size`` (the last may be shorter)."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def process(self, item: Iterable[Any]) -> list[list[Any]]:
        """``item`` (a sequence of items) cut into batches."""
        items = list(item)
        size = self.batch_size
        return [items[i : i + size] for i in range(0, len(items), size)]


class UnbatchOp(Processor):
    """``unbatch``: the items of one batch, one by one."""

    def process(self, item: Iterable[Any]) -> list[Any]:
        """The items of the batch ``item``."""
        return list(item)


class MergeOp(Processor):
    """``merge``: items of several queues interleaved into one as they arrive."""

    def process(self, **items: Any) -> list[Any]:
        """The values of every input, in input order."""
        return [items[k] for k in sorted(items, key=lambda k: int(k.rpartition("_")[2]))]
