"""Drawing graphs: mermaid and graphviz DOT text, and an image when graphviz is installed.

Design note
-----------
Every front-end draws through one small data model, `Drawing`: boxes
(an id, a label, a kind such as ``"constant"``, ``"processor"``, ``"queue"``,
``"op"``, and an optional status such as ``"hit"`` or ``"compute"``) and
arrows. `to_mermaid` and `to_dot` turn it into text;
`write_image` runs graphviz's ``dot`` if it is on the PATH. A
``ProcessGraph`` is drawn with `draw_graph`, which marks each node with
the action of a `Plan` when one is given.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incgraph.core.graph import Graph, Node
from incgraph.core.plan import Plan
from incgraph.errors import ExtraNotInstalledError

__all__ = ["Box", "Drawing", "draw_graph", "render", "to_dot", "to_mermaid", "write_image"]

_STATUS_STYLE = {
    "hit": ("fill:#d4f7d4,stroke:#2a2", "#d4f7d4"),
    "constant": ("fill:#eeeeee,stroke:#888", "#eeeeee"),
    "compute": ("fill:#ffe0b3,stroke:#d80", "#ffe0b3"),
    "maybe": ("fill:#fff6cc,stroke:#cb0", "#fff6cc"),
    "computed": ("fill:#ffe0b3,stroke:#d80", "#ffe0b3"),
    "failed": ("fill:#ffc9c9,stroke:#c00", "#ffc9c9"),
}
_DOT_SHAPES = {"constant": "ellipse", "queue": "cds", "op": "diamond", "processor": "box"}


@dataclass(frozen=True)
class Box:
    """One node of a drawing."""

    id: str
    label: str
    kind: str = "processor"
    status: str | None = None


@dataclass
class Drawing:
    """Boxes and arrows, in insertion order."""

    title: str = "graph"
    boxes: list[Box] = field(default_factory=list)
    arrows: list[tuple[str, str, str]] = field(default_factory=list)

    def box(self, id: str, label: str, kind: str = "processor", status: str | None = None) -> None:
        """Add a box."""
        self.boxes.append(Box(id, label, kind, status))

    def arrow(self, src: str, dst: str, label: str = "") -> None:
        """Add an arrow from ``src`` to ``dst``."""
        self.arrows.append((src, dst, label))

    def __str__(self) -> str:
        return to_mermaid(self)

    def __repr__(self) -> str:
        """A short line, whatever the graph's size (``str()`` gives the mermaid text).

        Examples
        --------
        >>> d = Drawing("g"); d.box("1", "A"); d.box("2", "B"); d.arrow("1", "2")
        >>> d
        <Drawing 'g': 2 box(es), 1 arrow(s)>
        """
        return f"<Drawing {self.title!r}: {len(self.boxes)} box(es), {len(self.arrows)} arrow(s)>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the mermaid text."""
        p.text(to_mermaid(self))

    def _repr_html_(self) -> str:
        """A notebook's view: an inline SVG picture (no graphviz, no JavaScript needed)."""
        from incgraph.display import to_svg

        return to_svg(self)


def _mermaid_ids(drawing: Drawing) -> dict[str, str]:
    """Box id -> a distinct mermaid id of ASCII word characters (``a-b`` and ``a_b`` differ)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    ends = [end for src, dst, _ in drawing.arrows for end in (src, dst)]
    for raw in [b.id for b in drawing.boxes] + ends:
        if raw in ids:
            continue
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", raw)
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        ids[raw] = name
        taken.add(name)
    return ids


def _quote(text: str) -> str:
    """A label safe inside mermaid's double quotes: quotes and markup as entity codes."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#60;"), (">", "#62;")):
        text = text.replace(char, code)
    return text


def to_mermaid(drawing: Drawing) -> str:
    """Mermaid ``flowchart`` text, with a class per status.

    Examples
    --------
    >>> d = Drawing("g"); d.box("1", "A"); d.box("2", "B", status="hit"); d.arrow("1", "2")
    >>> print(to_mermaid(d))
    flowchart TD
        n_1["A"]
        n_2["B"]:::hit
        n_1 --> n_2
        classDef hit fill:#d4f7d4,stroke:#2a2
    """
    lines = ["flowchart TD"]
    used: list[str] = []
    ids = _mermaid_ids(drawing)
    for b in drawing.boxes:
        open_, close = (
            ("([", "])") if b.kind == "constant" else ("{{", "}}") if b.kind == "op" else ("[", "]")
        )
        if b.kind == "queue":
            open_, close = "[/", "/]"
        suffix = f":::{b.status}" if b.status in _STATUS_STYLE else ""
        if b.status is not None and suffix and b.status not in used:
            used.append(b.status)
        lines.append(f'    {ids[b.id]}{open_}"{_quote(b.label)}"{close}{suffix}')
    for src, dst, label in drawing.arrows:
        mid = f' -- "{_quote(label)}" --> ' if label else " --> "
        lines.append(f"    {ids[src]}{mid}{ids[dst]}")
    lines.extend(f"    classDef {s} {_STATUS_STYLE[s][0]}" for s in used)
    return "\n".join(lines)


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(drawing: Drawing) -> str:
    """Graphviz DOT text.

    Examples
    --------
    >>> d = Drawing("g"); d.box("1", "A"); d.box("2", "B"); d.arrow("1", "2")
    >>> print(to_dot(d))
    digraph "g" {
        rankdir=TB;
        "1" [label="A", shape=box];
        "2" [label="B", shape=box];
        "1" -> "2";
    }
    """
    lines = [f"digraph {_dot_str(drawing.title)} {{", "    rankdir=TB;"]
    for b in drawing.boxes:
        attrs = [f"label={_dot_str(b.label)}", f"shape={_DOT_SHAPES.get(b.kind, 'box')}"]
        if b.status in _STATUS_STYLE:
            attrs += ["style=filled", f"fillcolor={_dot_str(_STATUS_STYLE[b.status][1])}"]
        lines.append(f"    {_dot_str(b.id)} [{', '.join(attrs)}];")
    for src, dst, label in drawing.arrows:
        extra = f" [label={_dot_str(label)}]" if label else ""
        lines.append(f"    {_dot_str(src)} -> {_dot_str(dst)}{extra};")
    lines.append("}")
    return "\n".join(lines)


def write_image(dot_text: str, path: str | Path) -> Path:
    """Render DOT text to an image with graphviz's ``dot`` (format from the suffix, e.g. ``.png``).

    Raises
    ------
    ExtraNotInstalledError
        If the ``dot`` program is not installed.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise ExtraNotInstalledError(
            "writing an image needs graphviz's `dot` program: install graphviz "
            "(apt-get install graphviz / brew install graphviz / conda install graphviz)"
        )
    out = Path(path)
    fmt = out.suffix.lstrip(".") or "png"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot_text.encode(), check=True)
    return out


def draw_graph(
    graph: Graph, plan: Plan | None = None, nodes: Iterable[Node] | None = None
) -> Drawing:
    """A `Drawing` of ``graph`` (or ``nodes``), each node marked with its planned action."""
    actions = plan.actions() if plan is not None else {}
    chosen = list(graph) if nodes is None else list(nodes)
    members = set(chosen)
    drawing = Drawing(graph.name or "ProcessGraph")
    for node in chosen:
        kind = "constant" if node.is_constant else "processor"
        drawing.box(node.label, f"{node.id}: {node.name()}", kind, actions.get(node.label))
    for node in chosen:
        for name, src in node.bindings.items():
            if isinstance(src, Node) and src in members:
                drawing.arrow(src.label, node.label, name)
    return drawing


def render(graph: Graph, format: str = "mermaid", *, plan: Plan | None = None) -> str:
    """Mermaid (``format="mermaid"``) or DOT (``format="dot"``) text for ``graph``."""
    drawing = draw_graph(graph, plan)
    if format == "mermaid":
        return to_mermaid(drawing)
    if format == "dot":
        return to_dot(drawing)
    from incgraph.errors import ConfigurationError

    raise ConfigurationError(f"unknown format {format!r}; use 'mermaid' or 'dot'")
