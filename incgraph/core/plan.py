"""The plan of a run as a value: which nodes hit, which compute, which may, and why.

Design note
-----------
A `Plan` is plain data (a tuple of `Decision`) that compares with ``==``:
what `incgraph.run.explain` decides with the engine's own decide step (a
read-only look-up, nothing submitted), and what ``render(explain=True)`` and
``incgraph explain`` show. Deciding needs the store, so it lives in ``run/``;
``core/`` only holds the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from incgraph.core.graph import Node

__all__ = ["Decision", "Plan"]

Action = Literal["constant", "hit", "compute", "maybe"]


@dataclass(frozen=True)
class Decision:
    """What a run would do with one node, and why."""

    node: str
    name: str
    action: Action
    reason: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.node} ({self.name}): {self.action} - {self.reason}"


@dataclass(frozen=True)
class Plan:
    """The decisions for a run, in the order the run would make them.

    Examples
    --------
    >>> p = Plan((Decision("1", "SumInt", "hit", "stored result for the current inputs"),))
    >>> p.actions()
    {'1': 'hit'}
    >>> print(p)
    1 (SumInt): hit - stored result for the current inputs
    """

    decisions: tuple[Decision, ...]

    def actions(self) -> dict[str, Action]:
        """Node label -> action."""
        return {d.node: d.action for d in self.decisions}

    def __getitem__(self, node: Node | str) -> Decision:
        label = node.label if isinstance(node, Node) else str(node)
        for d in self.decisions:
            if d.node == label:
                return d
        raise KeyError(label)

    def __iter__(self) -> Any:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def __str__(self) -> str:
        return "\n".join(map(str, self.decisions))

    def summary(self) -> str:
        """``"2 hit(s), 1 to compute, 0 maybe"``: the counts of each action."""
        counts = {action: 0 for action in ("hit", "compute", "maybe")}
        for d in self.decisions:
            if d.action in counts:
                counts[d.action] += 1
        return f"{counts['hit']} hit(s), {counts['compute']} to compute, {counts['maybe']} maybe"

    def _rows(self) -> list[list[str]]:
        return [[d.node, d.name, d.action, d.reason, (d.key or "-")[:12]] for d in self.decisions]

    def __repr__(self) -> str:
        return f"<Plan of {len(self.decisions)} node(s): {self.summary()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the decisions as an aligned table."""
        from incgraph.display import text_table

        p.text(text_table(_PLAN_HEADERS, self._rows(), f"Plan: {self.summary()}"))

    def _repr_html_(self) -> str:
        """A notebook's view: the decisions as a table, actions coloured."""
        from incgraph.display import html_table

        return html_table(
            _PLAN_HEADERS, self._rows(), caption=f"Plan: {self.summary()}", status_column=2
        )


_PLAN_HEADERS = ("NODE", "NAME", "ACTION", "REASON", "KEY")
