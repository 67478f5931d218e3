"""Drawing a pipeline: queues, tasks and ops, through `incgraph.render`.

Design note
-----------
A pipeline is drawn with its queues as boxes of their own (they are what the
user declared and named), tasks as processor boxes labelled with their pool,
and ops as op boxes labelled with what parameterises them (``split:
image_or_doc``, ``batch: 10``). A split's arrows carry the predicate value.
After a run, each task is marked ``hit`` (all cached), ``computed`` or
``failed``. The text comes from `incgraph.render.to_mermaid` /
`to_dot` and images from
`write_image`, like every other front-end's drawings.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from incgraph.errors import ConfigurationError
from incgraph.render import Drawing, to_dot, to_mermaid, write_image

if TYPE_CHECKING:
    from incgraph.queues.pipeline import Pipeline
    from incgraph.queues.queue import Queue
    from incgraph.queues.stages import Stage

__all__ = ["draw_pipeline", "render_text", "write_drawing"]

_TEXT_SUFFIXES = {".mmd": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot"}


def _qid(q: Queue) -> str:
    return f"q:{q.name}"


def _sid(stage: Stage) -> str:
    return f"s:{stage.name}"


def _status(pipeline: Pipeline, stage: Stage) -> str | None:
    report = pipeline.last_report
    if report is None or stage.kind != "task":
        return None
    counts = report.nodes.get(stage.name)
    if counts is None:
        return None
    if counts.failed:
        return "failed"
    if counts.computed:
        return "computed"
    return "hit" if counts.cached else None


def draw_pipeline(pipeline: Pipeline) -> Drawing:
    """A `Drawing` of ``pipeline``."""
    drawing = Drawing("pipeline")
    for q in pipeline.queues:
        if q.producer is None:
            drawing.box(_qid(q), q.name or "input", "queue")
    for stage in pipeline.stages:
        kind = "processor" if stage.kind == "task" else "op"
        drawing.box(_sid(stage), stage.label(), kind, _status(pipeline, stage))
        for q in stage.outputs:
            drawing.box(_qid(q), q.name or "queue", "queue")
    for stage in pipeline.stages:
        for q in stage.inputs:
            drawing.arrow(_qid(q), _sid(stage))
        for i, q in enumerate(stage.outputs):
            drawing.arrow(_sid(stage), _qid(q), stage.output_label(i))
    return drawing


def render_text(pipeline: Pipeline, format: str) -> str:
    """Mermaid (``"mermaid"``) or DOT (``"dot"``) text of ``pipeline``."""
    drawing = draw_pipeline(pipeline)
    if format == "mermaid":
        return to_mermaid(drawing)
    if format == "dot":
        return to_dot(drawing)
    raise ConfigurationError(f"render_pipeline(format={format!r}); use 'mermaid' or 'dot'")


def write_drawing(pipeline: Pipeline, path: Path) -> Path:
    """Write the drawing to ``path`` (text or image, by suffix); return the file written."""
    text_format = _TEXT_SUFFIXES.get(path.suffix.lower())
    if text_format is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_text(pipeline, text_format) + "\n")
        return path
    dot_text = render_text(pipeline, "dot")
    if shutil.which("dot") is None:
        fallback = path.with_name(path.name + ".dot")
        fallback.parent.mkdir(parents=True, exist_ok=True)
        fallback.write_text(dot_text + "\n")
        return fallback
    return write_image(dot_text, path)
