"""What a batch reports: per-item failures as records, per-node counts and timings.

Design note
-----------
Failures are data. Each failing item-node becomes a `BatchFailure`
with the item's index and value, the node (``None`` when ``prep_fn`` itself
raised), the original exception and its formatted traceback (formatted where
it was raised, so a failure in a worker process keeps its worker-side lines).
The other items go on; the failing item's downstream nodes are *skipped*.

Counts are per item-node: ``cached`` (served from the store, nothing loaded),
``computed``, ``failed``, ``skipped``. ``completed`` lists the items that have a
result for every run node; ``failed`` lists the items with at least one
failure. Both are item indices, in order.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from incgraph.core.graph import Node
from incgraph.store.garbage import GcReport

__all__ = ["BatchFailure", "BatchStats", "NodeBatchStats"]


@dataclass(frozen=True)
class BatchFailure:
    """One item that failed at one node (or in ``prep_fn``).

    Attributes
    ----------
    index : int
        Position of the item in ``batch_items``.
    item : object
        The item itself.
    node : Node or None
        The node that failed; ``None`` when ``prep_fn`` raised.
    exception : BaseException
        The original exception (for a processor failure, the one ``process`` raised).
    traceback : str
        The formatted traceback, as it was in the process that raised.
    error : BaseException
        What incgraph raised for it (a `NodeError` for
        processor failures); ``fault_tolerant=False`` re-raises this.
    """

    index: int
    item: Any
    node: Node | None
    exception: BaseException
    traceback: str
    error: BaseException

    @property
    def where(self) -> str:
        """``"node 2 (SumInt)"``, or ``"prep_fn"``."""
        return self.node.describe() if self.node is not None else "prep_fn"

    def __str__(self) -> str:
        item = _short(self.item)
        exc = self.exception
        return f"item {self.index} ({item}) at {self.where}: {type(exc).__name__}: {exc}"

    def __repr__(self) -> str:
        return f"<BatchFailure {self}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the one-line summary, then the traceback."""
        p.text(f"{self}\n{self.traceback}".rstrip())

    def _repr_html_(self) -> str:
        """A notebook's view: the summary as a table row, the traceback below it."""
        from incgraph.display import html_table

        exc = self.exception
        row = [self.index, _short(self.item), self.where, type(exc).__name__, str(exc)]
        return (
            html_table(_FAILURE_HEADERS, [row], caption="Batch failure")
            + f"\n<pre>{html.escape(self.traceback)}</pre>"
        )


@dataclass
class NodeBatchStats:
    """What a batch did with one node, over all items.

    ``compute_seconds`` adds up the time ``process`` took; ``seconds`` is the wall
    time of the node's passes (keys, look-ups, computing, saving).
    """

    node: Node
    cached: int = 0
    computed: int = 0
    failed: int = 0
    skipped: int = 0
    compute_seconds: float = 0.0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.node.describe()}: {self.computed} computed, {self.cached} cached, "
            f"{self.failed} failed, {self.skipped} skipped; "
            f"{self.compute_seconds:.3f} s in process, {self.seconds:.3f} s in all"
        )


@dataclass
class BatchStats:
    """The outcome of ``process_batch``.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Inc(Processor):
    ...     def process(self, x: int) -> int:
    ...         return 1 // (x - 2) + x
    >>> g = ProcessGraph(store=":memory:")
    >>> x = g.add_constant_node(0, "x")
    >>> inc = g.add_node(1, Inc, {"x": x})
    >>> stats = g.process_batch([1, 2, 3], [inc], progress=False)
    >>> stats.completed, stats.failed, stats.computed
    ([0, 2], [1], 2)
    >>> print(stats.failures[0])
    item 1 (2) at node 1 (Inc): ZeroDivisionError: integer division or modulo by zero
    >>> g.process_batch([1, 3], [inc], progress=False).cached
    2
    """

    items: int = 0
    strategy: str = "breadth_first"
    completed: list[int] = field(default_factory=list)
    failures: list[BatchFailure] = field(default_factory=list)
    nodes: dict[Node, NodeBatchStats] = field(default_factory=dict)
    seconds: float = 0.0
    budget: GcReport | None = None
    """What the store's byte budget removed after the batch (None: no budget, or no writes)."""

    def _total(self, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.nodes.values())

    @property
    def cached(self) -> int:
        """Item-nodes served from the store."""
        return self._total("cached")

    @property
    def computed(self) -> int:
        """Item-nodes whose ``process`` ran and succeeded."""
        return self._total("computed")

    @property
    def skipped(self) -> int:
        """Item-nodes not run because something upstream failed for that item."""
        return self._total("skipped")

    @property
    def failed(self) -> list[int]:
        """Indices of the items with at least one failure, in order."""
        return sorted({f.index for f in self.failures})

    def __str__(self) -> str:
        lines = [
            f"{self.items} items ({self.strategy}): {len(self.completed)} completed, "
            f"{len(self.failed)} failed; {self.computed} computed, {self.cached} cached, "
            f"{self.skipped} skipped in {self.seconds:.3f} s"
        ]
        lines += [f"  {s}" for s in self.nodes.values()]
        return "\n".join(lines + [f"  {line}" for line in self._failure_lines()])

    def _failure_lines(self) -> list[str]:
        from incgraph.display import first_failures

        shown, more = first_failures(self.failures, "stats.failures")
        return [f"failure: {f}" for f in shown] + ([more] if more else [])

    def __repr__(self) -> str:
        return (
            f"<BatchStats {self.items} items: {len(self.completed)} completed, "
            f"{len(self.failed)} failed, {self.computed} computed, {self.cached} cached>"
        )

    def _caption(self) -> str:
        return str(self).splitlines()[0]

    def _node_rows(self) -> list[list[Any]]:
        return [
            [
                s.node.describe(),
                s.computed,
                s.cached,
                s.failed,
                s.skipped,
                f"{s.compute_seconds:.3f}",
                f"{s.seconds:.3f}",
            ]
            for s in self.nodes.values()
        ]

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the summary, one row per node, then the failures."""
        from incgraph.display import text_table

        text = text_table(_NODE_HEADERS, self._node_rows(), self._caption())
        p.text("\n".join([text, *self._failure_lines()]))

    def _repr_html_(self) -> str:
        """A notebook's view: a table of nodes and, when items failed, a table of failures."""
        from incgraph.display import first_failures, html_table

        out = html_table(_NODE_HEADERS, self._node_rows(), caption=self._caption())
        if self.failures:
            shown, more = first_failures(self.failures, "stats.failures")
            rows = [
                [f.index, _short(f.item), f.where, type(f.exception).__name__, str(f.exception)]
                for f in shown
            ]
            caption = f"Failures ({more[4:]})" if more else "Failures"
            out += "\n" + html_table(_FAILURE_HEADERS, rows, caption=caption)
        return out


_NODE_HEADERS = ("NODE", "COMPUTED", "CACHED", "FAILED", "SKIPPED", "PROCESS S", "WALL S")
_FAILURE_HEADERS = ("ITEM", "VALUE", "WHERE", "ERROR", "MESSAGE")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
