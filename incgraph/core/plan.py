"""The plan of a run, decided from the index alone: which nodes hit, which compute, and why.

Design note
-----------
``plan`` walks the nodes a run would visit in topological order and, for each
node whose inputs' data versions are known, builds its cache key and asks
``lookup`` (the index) whether it is stored. Nodes downstream of a node that
must compute cannot know their key yet: their action is ``"maybe"``, since
early cutoff will make them hits if the upstream result comes out unchanged.

For a node that computes, ``previous`` (the latest record stored for the same
node) tells *why*: its code changed, its init kwargs changed, or which input
changed. The planner is pure: the index is passed in as two functions, and
the returned `Plan` compares with ``==``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.sentinels import MISSING, Missing

__all__ = ["Decision", "Plan", "plan"]

Action = Literal["constant", "hit", "compute", "maybe"]


class _Lineage(Protocol):
    @property
    def data_version(self) -> str: ...
    @property
    def code_version(self) -> str: ...
    @property
    def init_version(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, str]: ...


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


def plan(
    order: list[Node],
    lookup: Callable[[str], _Lineage | Missing],
    previous: Callable[[str], _Lineage | Missing],
    force: frozenset[Node] = frozenset(),
) -> Plan:
    """Decide every node of ``order`` from the index (see the module note)."""
    dvs: dict[Node, str] = {}
    pending: dict[Node, Node] = {}  # node -> an upstream node that must compute first
    decisions = []
    for node in order:
        decision, dv = _decide(node, dvs, pending, lookup, previous, force)
        decisions.append(decision)
        if dv is not None:
            dvs[node] = dv
        else:
            pending[node] = node
    return Plan(tuple(decisions))


_SHOWN_BY_VALUE = (type(None), bool, int, float, str, bytes)


def _constant_reason(node: Node, dv: str) -> str:
    """``value 100000 (8972ca6cb271), set by the caller``: small scalars by value and hash."""
    value = node.constant_value()
    text = repr(value) if type(value) in _SHOWN_BY_VALUE else ""
    if not text or len(text) > 40:
        return f"value set by the caller ({dv[:12]})"
    return f"value {text} ({dv[:12]}), set by the caller"


def _decide(
    node: Node,
    dvs: dict[Node, str],
    pending: dict[Node, Node],
    lookup: Callable[[str], _Lineage | Missing],
    previous: Callable[[str], _Lineage | Missing],
    force: frozenset[Node],
) -> tuple[Decision, str | None]:
    name = node.name()
    if node.is_constant:
        dv = node.data_version_of_constant()
        return Decision(node.label, name, "constant", _constant_reason(node, dv)), dv
    if not node.cache:
        return Decision(node.label, name, "compute", "cache=False: always computes"), None
    waiting = [u for u in node.upstream() if u in pending]
    if waiting:
        up = waiting[0]
        reason = f"{up.describe()} computes first; a hit if its result comes out unchanged"
        return Decision(node.label, name, "maybe", reason), None
    inputs = dict(node.fixed_input_versions())
    for input_name, src in node.keyed_upstream():
        inputs[input_name] = dvs[src]
    key = hashing.node_key(node.code_version(), node.init_version(), inputs)
    if node in force:
        return Decision(node.label, name, "compute", "forced", key), None
    record = lookup(key)
    if record is not MISSING:
        reason = "stored result for the current inputs"
        return Decision(node.label, name, "hit", reason, key), record.data_version
    reason = _why_new(node, inputs, previous(node.label))
    return Decision(node.label, name, "compute", reason, key), None


def _why_new(node: Node, inputs: dict[str, str], before: _Lineage | Missing) -> str:
    if before is MISSING:
        return "no stored result for this node yet"
    reasons = []
    if before.code_version != node.code_version():
        reasons.append("code changed")
    if before.init_version != node.init_version():
        packages = node.packages()
        reasons.append(
            f"init kwargs or versions of {', '.join(packages)} changed"
            if packages
            else "init kwargs changed"
        )
    changed = sorted(
        k for k in inputs.keys() | before.inputs.keys() if inputs.get(k) != before.inputs.get(k)
    )
    reasons.extend(f"input {k!r} changed" for k in changed)
    return ", ".join(reasons) or "new inputs since the last stored result"
