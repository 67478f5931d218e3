"""How results show themselves: HTML tables and an SVG drawing for notebooks.

Design note
-----------
A notebook shows the last value of a cell through its ``_repr_html_`` when it
has one, else through its plain-text repr. The objects users look at - an
explain `Plan`, a run's
`RunReport`, a batch's
`BatchStats` and its failures, and a
`Drawing` of a graph - define ``_repr_html_`` by calling
the two functions here, and ``_repr_pretty_`` (IPython's plain-text hook) by
printing the same rows as an aligned text table.

`html_table` escapes every cell (labels, reasons and item reprs are user
text) and colours a status cell with the palette the drawings use.
`to_svg` lays a drawing out in layers (a box's layer is one more than the
deepest box pointing at it), so an inline picture needs no JavaScript, no
graphviz and no network: it renders in Jupyter, VS Code and on GitHub alike.
Nothing here imports the engine, so displaying never costs an import.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from incgraph.render import Drawing

__all__ = ["MAX_FAILURES", "MAX_HTML_ROWS", "first_failures", "html_table", "text_table", "to_svg"]

STATUS_COLOURS = {
    "hit": "#d4f7d4",
    "constant": "#eeeeee",
    "compute": "#ffe0b3",
    "computed": "#ffe0b3",
    "maybe": "#fff6cc",
    "failed": "#ffc9c9",
    "skipped": "#eeeeee",
}
"""Status -> background colour, shared by tables and drawings."""

T = TypeVar("T")

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 150, 36, 24, 40, 12
MAX_ROW = 12
"""Boxes side by side in one row of a picture; a wider layer continues on the next row."""
MAX_BOXES = 400
"""Boxes drawn in one picture; the rest are counted in a note (the mermaid text has all)."""


MAX_HTML_ROWS = 1000
"""Rows an HTML table shows (a notebook stays responsive); a last row counts the rest."""

MAX_FAILURES = 20
"""Failures a report lists in its text and HTML views; the rest are counted in one line."""


def first_failures(failures: Sequence[T], where: str) -> tuple[Sequence[T], str]:
    """The failures a view lists, and a line counting the others ('' when all are listed).

    Examples
    --------
    >>> shown, more = first_failures(list(range(25)), "stats.failures")
    >>> len(shown), more
    (20, '... and 5 more failure(s); all of them are in stats.failures')
    """
    left_out = len(failures) - MAX_FAILURES
    if left_out <= 0:
        return failures, ""
    return failures[
        :MAX_FAILURES
    ], f"... and {left_out} more failure(s); all of them are in {where}"


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str = "",
    status_column: int | None = None,
) -> str:
    """An HTML table of ``rows``, cells escaped; ``status_column`` cells coloured by status.

    Examples
    --------
    >>> print(html_table(["NODE", "ACTION"], [["1", "hit"]], status_column=1))
    <table class="incgraph"><thead><tr><th>NODE</th><th>ACTION</th></tr></thead><tbody>
    <tr><td>1</td><td style="background:#d4f7d4">hit</td></tr>
    </tbody></table>
    """
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    lines = []
    for row in rows[:MAX_HTML_ROWS]:
        cells = []
        for i, cell in enumerate(row):
            colour = STATUS_COLOURS.get(str(cell)) if i == status_column else None
            style = f' style="background:{colour}"' if colour else ""
            cells.append(f"<td{style}>{html.escape(str(cell))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if len(rows) > MAX_HTML_ROWS:
        more = f"... and {len(rows) - MAX_HTML_ROWS} more row(s), not shown"
        lines.append(f'<tr><td colspan="{len(headers)}">{more}</td></tr>')
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="incgraph">{cap}<thead><tr>{head}</tr></thead><tbody>\n'
        + "".join(line + "\n" for line in lines)
        + "</tbody></table>"
    )


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """The same rows as aligned plain text (the command line's tables), caption first.

    Examples
    --------
    >>> print(text_table(["NODE", "ACTION"], [["1", "hit"], ["22", "compute"]]))
    NODE  ACTION
    1     hit
    22    compute
    """
    from incgraph.cli.tables import table

    body = table(list(headers), [[str(c) for c in row] for row in rows]) if rows else "(empty)"
    return f"{caption}\n{body}" if caption else body


def _layers(drawing: Drawing) -> dict[str, int]:
    """Box id -> layer: 0 for boxes nothing points at, else one below the deepest source.

    Walked with an explicit stack, so a long chain drawn in any order needs no deep
    recursion; an arrow that closes a cycle is cut, not followed.
    """
    sources: dict[str, list[str]] = {b.id: [] for b in drawing.boxes}
    for src, dst, _ in drawing.arrows:
        if src in sources and dst in sources:
            sources[dst].append(src)
    layer: dict[str, int] = {}
    for start in sources:
        stack = [(start, iter(sources[start]))]
        on_path = {start}
        while stack:
            box, ups = stack[-1]
            up = next((u for u in ups if u not in layer and u not in on_path), None)
            if up is not None:
                stack.append((up, iter(sources[up])))
                on_path.add(up)
                continue
            stack.pop()
            on_path.discard(box)
            if box not in layer:
                done = (layer[u] for u in sources[box] if u in layer)
                layer[box] = 1 + max(done, default=-1)
    return layer


def _rows(drawing: Drawing) -> list[list[str]]:
    """Box ids row by row: each layer in order, a layer wider than `MAX_ROW` wrapped."""
    layer = _layers(drawing)
    by_layer: dict[int, list[str]] = {}
    for box in drawing.boxes[:MAX_BOXES]:
        by_layer.setdefault(layer[box.id], []).append(box.id)
    return [
        ids[i : i + MAX_ROW]
        for _, ids in sorted(by_layer.items())
        for i in range(0, len(ids), MAX_ROW)
    ]


def _clip(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def to_svg(drawing: Drawing) -> str:
    """An SVG picture of ``drawing``: boxes in layers top to bottom, arrows between them.

    Examples
    --------
    >>> from incgraph.render import Drawing
    >>> d = Drawing("g"); d.box("1", "A"); d.box("2", "B", status="hit"); d.arrow("1", "2")
    >>> svg = to_svg(d)
    >>> svg.startswith("<svg") and ">B</text>" in svg and "#d4f7d4" in svg
    True
    """
    rows = _rows(drawing) or [[]]
    widest = max(max(len(r) for r in rows), 1)
    width = widest * (_BOX_W + _GAP_X) - _GAP_X + 2 * _PAD
    left_out = len(drawing.boxes) - sum(len(r) for r in rows)
    note_h = 20 if left_out or not drawing.boxes else 0
    height = len(rows) * (_BOX_H + _GAP_Y) - _GAP_Y + 2 * _PAD + note_h
    at: dict[str, tuple[float, float]] = {}
    for depth, ids in enumerate(rows):
        offset = (width - (len(ids) * (_BOX_W + _GAP_X) - _GAP_X)) / 2
        for i, box_id in enumerate(ids):
            at[box_id] = (offset + i * (_BOX_W + _GAP_X), _PAD + depth * (_BOX_H + _GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{html.escape(drawing.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for src, dst, label in drawing.arrows:
        if src not in at or dst not in at:
            continue
        x1, y1 = at[src][0] + _BOX_W / 2, at[src][1] + _BOX_H
        x2, y2 = at[dst][0] + _BOX_W / 2, at[dst][1]
        parts.append(
            f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#555" '
            'marker-end="url(#arrow)"/>'
        )
        if label:
            parts.append(
                f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}" fill="#555" '
                f'font-size="10">{html.escape(_clip(label, 16))}</text>'
            )
    for box in drawing.boxes:
        if box.id not in at:
            continue
        x, y = at[box.id]
        fill = STATUS_COLOURS.get(box.status or "", "#ffffff")
        if box.kind == "constant" and box.status is None:
            fill = STATUS_COLOURS["constant"]
        radius = _BOX_H / 2 if box.kind == "constant" else 4
        tip = html.escape(box.label + (f" ({box.status})" if box.status else ""))
        parts.append(
            f'<g><title>{tip}</title><rect x="{x:.0f}" y="{y:.0f}" width="{_BOX_W}" '
            f'height="{_BOX_H}" rx="{radius:.0f}" fill="{fill}" stroke="#666"/>'
            f'<text x="{x + _BOX_W / 2:.0f}" y="{y + _BOX_H / 2 + 4:.0f}" '
            f'text-anchor="middle">{html.escape(_clip(box.label))}</text></g>'
        )
    if note_h:
        note = f"… {left_out} more node(s) not drawn" if drawing.boxes else "(no nodes)"
        parts.append(f'<text x="{_PAD}" y="{height - _PAD:.0f}" fill="#555">{note}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
