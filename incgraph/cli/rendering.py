"""``incgraph render FILE.py``: draw the graph a Python file defines, each node marked hit/compute.

Design note
-----------
The file is loaded exactly as ``incgraph explain`` loads it
(`incgraph.cli.explaining.graph_file`: module-level code as
``__main__``, minus its ``if __name__ == "__main__":`` blocks), and the plan
is made the same way (`incgraph.cli.explaining.plan_for`: the graph's
own store, or ``--store``), from the index alone. The drawing is
`incgraph.render.draw_graph` of the nodes a run up to the targets
visits (``--target``, else the sinks: the whole graph), printed as mermaid
(default) or DOT. ``--output PATH`` also writes an image through graphviz's
``dot`` (`incgraph.render.write_image`, the format taken from the
suffix); without graphviz that is a usage error (exit code 2) that says how
to install it, and the text is still printed.

A file defining several graphs needs ``--graph VARIABLE``: one drawing, one
image.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incgraph.cli.context import Context, UsageError
from incgraph.cli.explaining import choose_targets, graph_file, graphs_of_file, plan_for
from incgraph.errors import ExtraNotInstalledError

if TYPE_CHECKING:
    from incgraph.render import Drawing

__all__ = ["FORMATS", "register"]

FORMATS = ("dot", "mermaid")
"""``--format`` choices: the ``incgraph.render`` function ``to_<format>`` draws the text."""


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``render`` to ``commands``."""
    render = commands.add_parser(
        "render",
        parents=[parent],
        help="draw a graph file's graph as mermaid or DOT, nodes marked hit/compute",
    )
    render.add_argument("file", help="a Python file defining a ProcessGraph at module level")
    render.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="variable, node id or label to draw up to (repeatable; default: the whole graph)",
    )
    render.add_argument("--graph", metavar="VARIABLE", help="the graph in this variable")
    render.add_argument("--format", choices=FORMATS, default="mermaid", help="text to print")
    render.add_argument(
        "--output",
        metavar="PATH",
        help="also write an image with graphviz (format from the suffix: .png, .svg, .pdf)",
    )
    render.set_defaults(run=cmd_render)


def cmd_render(ctx: Context) -> int:
    """Print the drawing of the file's graph; write an image with ``--output``."""
    path = Path(ctx.args.file)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    with graph_file(path) as namespace:
        return _render(ctx, path, namespace)


def _render(ctx: Context, path: Path, namespace: dict[str, Any]) -> int:
    graphs = graphs_of_file(ctx, path, namespace)
    if len(graphs) > 1:
        names = ", ".join(name for name, _ in graphs)
        raise UsageError(f"{path} defines several graphs ({names}); pick one with --graph NAME")
    from incgraph import render

    name, graph = graphs[0]
    targets = choose_targets(graph, namespace, ctx.args.target)
    store, found = plan_for(ctx, graph, targets)
    drawing = render.draw_graph(graph, found, graph.topological_sort(targets))
    text = getattr(render, f"to_{ctx.args.format}")(drawing)
    if not ctx.as_json:
        ctx.print(text)  # printed even when the image cannot be written
    image = _write(ctx.args.output, drawing) if ctx.args.output else None
    if ctx.as_json:
        counts = {a: sum(d.action == a for d in found) for a in ("hit", "compute", "maybe")}
        ctx.emit_json(
            {
                "graph": name,
                "store": None if store.path is None else str(store.path),
                "format": ctx.args.format,
                "text": text,
                "image": None if image is None else str(image),
                "actions": found.actions(),
                **counts,
            }
        )
    if image is not None:
        ctx.warn(f"incgraph render: wrote {image}")
    return 0


def _write(output: str, drawing: Drawing) -> Path:
    """Write the image, turning graphviz's failures into messages that say what to do.

    An ``.svg`` without graphviz installed is incgraph's own picture (the one a
    notebook shows), so that format needs no extra program.
    """
    from incgraph.display import to_svg
    from incgraph.render import to_dot, write_image

    path = Path(output).expanduser()
    if path.suffix.lower() == ".svg" and shutil.which("dot") is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_svg(drawing), encoding="utf-8")
        return path
    try:
        return write_image(to_dot(drawing), path)
    except ExtraNotInstalledError as exc:
        raise UsageError(f"cannot write {output}: {exc}; or drop --output") from None
    except subprocess.CalledProcessError as exc:
        raise UsageError(
            f"graphviz's dot could not write {output} (exit code {exc.returncode}); "
            "use a suffix dot knows, such as .png, .svg or .pdf"
        ) from None
