"""What a pipeline run did: counts per node and every failed item.

Design note
-----------
Failures are data, as in a batch: a task (or a predicate) that raises for an
item records an `ItemFailure` -- node, item, its position in that node's
input, exception and traceback text -- and the other items go on. The counts
let a rerun be checked at a glance: ``report.computed == 0`` after a fully
cached rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from incgraph.store.garbage import GcReport

__all__ = ["ItemFailure", "NodeCounts", "PipelineReport"]


@dataclass(frozen=True)
class ItemFailure:
    """One item a node could not handle.

    Attributes
    ----------
    node : the stage's name (a task's name, or e.g. ``"split[is_cat]"``).
    index : the item's position in that node's input stream (0-based).
    item : the item.
    exception : what was raised (a ``HashingError`` for an item that cannot be cached).
    traceback : the formatted traceback.
    """

    node: str
    index: int
    item: Any
    exception: BaseException
    traceback: str = ""

    def __repr__(self) -> str:
        return (
            f"ItemFailure(node={self.node!r}, index={self.index}, item={_short(self.item)}, "
            f"exception={self.exception!r})"
        )


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class NodeCounts:
    """Items in and out of one node; for tasks, how many were computed and how many cached."""

    name: str
    kind: str
    items_in: int = 0
    items_out: int = 0
    computed: int = 0
    cached: int = 0
    failed: int = 0


@dataclass
class PipelineReport:
    """The outcome of a pipeline run.

    Attributes
    ----------
    nodes : node name -> `NodeCounts`, in declaration order.
    failures : every `ItemFailure`, in the order they happened.
    duration : seconds the run took.
    uncached : results that were passed on but could not be stored (they cannot be
        pickled); they compute again on the next run. Each is an `ItemFailure`
        whose exception says why and whose traceback field says what happened.
    budget : what the store's byte budget removed after the run (a `GcReport`), or
        None (no budget, nothing written, or under it).

    Examples
    --------
    >>> import incgraph.queues as iq
    >>> p = iq.Pipeline(store=":memory:")
    >>> out = p.map(lambda x: 10 // x, iq.Queue([1, 0, 5]))
    >>> report = p.run()
    >>> list(out), report.computed, [f.item for f in report.failures]
    ([10, 2], 2, [0])
    """

    nodes: dict[str, NodeCounts] = field(default_factory=dict)
    failures: list[ItemFailure] = field(default_factory=list)
    duration: float = 0.0
    uncached: list[ItemFailure] = field(default_factory=list)
    budget: GcReport | None = None

    @property
    def computed(self) -> int:
        """Task applications computed in this run (over every task)."""
        return sum(c.computed for c in self.nodes.values())

    @property
    def cached(self) -> int:
        """Task applications served from the cache in this run."""
        return sum(c.cached for c in self.nodes.values())

    @property
    def ok(self) -> bool:
        """No item failed."""
        return not self.failures

    def summary(self) -> str:
        """One line per node: items in/out, computed/cached, failures.

        Examples
        --------
        >>> r = PipelineReport({"f": NodeCounts("f", "task", 3, 3, 1, 2)})
        >>> print(r.summary())
        f: 3 in, 3 out, 1 computed, 2 cached
        """
        lines = []
        for c in self.nodes.values():
            line = f"{c.name}: {c.items_in} in, {c.items_out} out"
            if c.kind == "task":
                line += f", {c.computed} computed, {c.cached} cached"
            if c.failed:
                line += f", {c.failed} failed"
            lines.append(line)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<PipelineReport computed={self.computed} cached={self.cached} "
            f"failures={len(self.failures)}>"
        )

    def _rows(self) -> list[list[Any]]:
        return [
            [c.name, c.kind, c.items_in, c.items_out, c.computed, c.cached, c.failed]
            for c in self.nodes.values()
        ]

    def _caption(self) -> str:
        return (
            f"Pipeline run: {self.computed} computed, {self.cached} cached, "
            f"{len(self.failures)} failed item(s) in {self.duration:.3f} s"
        )

    def __str__(self) -> str:
        from incgraph.display import first_failures, text_table

        shown, more = first_failures(self.failures, "report.failures")
        lines = [f"failure: {f!r}" for f in shown] + ([more] if more else [])
        return "\n".join([text_table(_REPORT_HEADERS, self._rows(), self._caption()), *lines])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: one row per task or op, then the failures."""
        p.text(str(self))

    def _repr_html_(self) -> str:
        """A notebook's view: one row per task or op, and the failures."""
        from incgraph.display import first_failures, html_table

        out = html_table(_REPORT_HEADERS, self._rows(), caption=self._caption())
        if self.failures:
            shown, more = first_failures(self.failures, "report.failures")
            rows = [
                [f.node, f.index, repr(f.item)[:60], type(f.exception).__name__, f.exception]
                for f in shown
            ]
            caption = f"Failures ({more[4:]})" if more else ""
            out += "\n" + html_table(
                ("NODE", "ITEM", "VALUE", "ERROR", "MESSAGE"), rows, caption=caption
            )
        return out


_REPORT_HEADERS = ("NODE", "KIND", "IN", "OUT", "COMPUTED", "CACHED", "FAILED")
