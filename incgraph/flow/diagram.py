"""Drawing a flow: a mermaid ``stateDiagram-v2`` (as the original Flow library draws), or DOT.

Design note
-----------
A flow is drawn from its resolved `Plan`,
before it runs, so task counts are symbolic (``Process[0]``, ``Process[1]``,
``Process[...]``, ``Process[N]``; ``[0,0]`` ... ``[M,N]`` for a two-parameter
grid). A ForEach layer gets a ``<<fork>>`` state fed by the layers it reads; a
ForEach read by a later layer gets a ``<<join>>`` state; a ForEach aligned
with another (``index=None``) is drawn task to task, without a join.

Both formats come from one list of states and transitions; DOT goes through
`incgraph.render.Drawing`, so `incgraph.render.write_image`
turns it into a picture when graphviz is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from incgraph.errors import ConfigurationError
from incgraph.flow.definition import LayerPlan, Plan
from incgraph.render import Drawing, to_dot

__all__ = ["diagram", "render", "to_state_diagram"]


@dataclass
class _Diagram:
    """States (id -> (label, kind)) and transitions, in drawing order."""

    title: str
    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    transitions: list[tuple[str, str]] = field(default_factory=list)

    def state(self, sid: str, label: str, kind: str = "layer") -> str:
        self.states.setdefault(sid, (label, kind))
        return sid

    def arrow(self, src: str, dst: str) -> None:
        if (src, dst) not in self.transitions:
            self.transitions.append((src, dst))


def _symbols(dims: int) -> list[str]:
    """Symbolic task indices: ``0, 1, ..., N`` for one dimension, ``0,0`` ... ``M,N`` for two."""
    if dims <= 1:
        return ["0", "1", "...", "N"]
    letters = "IJKLMN"[-dims:] if dims <= 6 else "N" * dims
    return [
        ",".join("0" * dims),
        ",".join(["0"] * (dims - 1) + ["1"]),
        ",".join(["..."] * dims),
        ",".join(letters),
    ]


def _dims(lp: LayerPlan) -> int:
    params = lp.parameters or ()
    crossed = sum(1 for p in params if not p.aligned)
    return crossed + (1 if any(p.aligned for p in params) else 0)


def _task_ids(lp: LayerPlan) -> list[tuple[str, str]]:
    return [(f"{lp.name}_{i}", f"{lp.name}[{sym}]") for i, sym in enumerate(_symbols(_dims(lp)))]


def _aligned_only(lp: LayerPlan, up: LayerPlan) -> bool:
    """Whether ``lp``'s tasks map one to one onto ``up``'s tasks."""
    params = lp.parameters or ()
    return (
        up.is_foreach
        and bool(params)
        and all(p.aligned and p.layer_name == up.name for p in params)
    )


def diagram(plan: Plan) -> _Diagram:
    """The states and transitions of a flow."""
    d = _Diagram(plan.flow)
    plans = {lp.name: lp for lp in plan.layers}
    for lp in plan.layers:
        if lp.is_foreach:
            _foreach(d, lp, plans)
        else:
            d.state(lp.name, lp.name)
            for up in lp.upstream:
                d.arrow(_exit(d, plans[up]), lp.name)
    return d


def _foreach(d: _Diagram, lp: LayerPlan, plans: dict[str, LayerPlan]) -> None:
    forked = [plans[up] for up in lp.upstream if not _aligned_only(lp, plans[up])]
    fork = d.state(f"fork_{lp.name}", "fork", "fork") if forked else None
    tasks = _task_ids(lp)
    for sid, label in tasks:
        d.state(sid, label, "task")
    for up_name in lp.upstream:
        up = plans[up_name]
        if fork is None or up not in forked:
            for (src, _), (dst, _) in zip(_task_ids(up), tasks, strict=True):
                d.arrow(src, dst)
        else:
            d.arrow(_exit(d, up), fork)
    if fork is not None:
        for sid, _ in tasks:
            d.arrow(fork, sid)


def _exit(d: _Diagram, lp: LayerPlan) -> str:
    """Where a layer's result leaves it: the layer itself, or its join."""
    if not lp.is_foreach:
        return lp.name
    join = f"join_{lp.name}"
    if join not in d.states:
        d.state(join, "join", "join")
        for sid, _ in _task_ids(lp):
            d.arrow(sid, join)
    return join


def to_state_diagram(d: _Diagram) -> str:
    """Mermaid ``stateDiagram-v2`` text.

    Examples
    --------
    >>> d = _Diagram("ShardedFlow")
    >>> _ = d.state("Shard", "Shard"), d.state("Process", "Process")
    >>> d.arrow("Shard", "Process")
    >>> print(to_state_diagram(d))
    stateDiagram-v2
        state ShardedFlow {
            direction LR
            Shard --> Process
        }
    """
    lines = ["stateDiagram-v2", f"    state {d.title} {{", "        direction LR"]
    for sid, (label, kind) in d.states.items():
        if kind in ("fork", "join"):
            lines.append(f"        state {sid} <<{kind}>>")
        elif label != sid:
            lines.append(f'        state "{label}" as {sid}')
    lines.extend(f"        {src} --> {dst}" for src, dst in d.transitions)
    lines.append("    }")
    return "\n".join(lines)


_DOT_KINDS = {"layer": "processor", "task": "processor", "fork": "op", "join": "op"}


def to_drawing(d: _Diagram) -> Drawing:
    """The same diagram as a `incgraph.render.Drawing` (for DOT and images)."""
    drawing = Drawing(d.title)
    for sid, (label, kind) in d.states.items():
        drawing.box(sid, label, _DOT_KINDS[kind])
    for src, dst in d.transitions:
        drawing.arrow(src, dst)
    return drawing


def render(plan: Plan, format: str = "mermaid") -> str:
    """Mermaid (``"mermaid"``) or DOT (``"dot"``) text of a flow."""
    d = diagram(plan)
    if format == "mermaid":
        return to_state_diagram(d)
    if format == "dot":
        return to_dot(to_drawing(d))
    raise ConfigurationError(f"unknown format {format!r}; use 'mermaid' or 'dot'")
