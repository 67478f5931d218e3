"""Drawing pipelines: queues, tasks and ops in mermaid and DOT, and image files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import incgraph.queues as iq
from incgraph.errors import ConfigurationError


def _pipeline() -> iq.Pipeline:
    p = iq.Pipeline(store=":memory:")
    download = iq.task(max_workers=4, name="download_file")(lambda f: f)

    def image_or_doc(f: str) -> bool:
        return f.endswith(".png")

    q = p.chain([download, str.lower], iq.Queue(["a.png", "b.txt"], name="files"))
    q_img, q_doc = p.split(image_or_doc, q)
    batches = p.batch(q_img, batch_size=10)
    docs = p.filter(len, q_doc)
    p.merge([p.unbatch(batches), docs])
    return p


def test_mermaid_shows_queues_tasks_and_ops() -> None:
    """Mermaid shows every queue, each task with its pool, the split predicate, the batch size."""
    text = _pipeline().render()
    assert text.startswith("flowchart TD")
    for label in (
        '[/"files"/]',
        '["download_file (4 threads)"]',
        '["lower"]',
        '{{"split: image_or_doc"}}',
        '{{"batch: 10"}}',
        '{{"filter: len"}}',
        '{{"unbatch"}}',
        '{{"merge"}}',
    ):
        assert label in text, label
    assert '-- "True" -->' in text and '-- "False" -->' in text


def test_dot_text_and_unknown_format() -> None:
    """format='dot' gives graphviz text with queue shapes; an unknown format is refused."""
    p = _pipeline()
    dot = p.render(format="dot")
    assert dot.startswith('digraph "pipeline"')
    assert '"q:files" [label="files", shape=cds];' in dot
    assert '[label="split: image_or_doc", shape=diamond]' in dot
    with pytest.raises(ConfigurationError, match="'mermaid' or 'dot'"):
        p.render(format="svgz")


def test_render_writes_text_and_images(tmp_path: Path) -> None:
    """A .mmd path gets mermaid text; .png an image (or DOT text beside it without graphviz)."""
    p = _pipeline()
    p.render(tmp_path / "p.mmd")
    assert (tmp_path / "p.mmd").read_text().startswith("flowchart TD")
    p.render(tmp_path / "p.dot")
    assert (tmp_path / "p.dot").read_text().startswith("digraph")
    p.render(tmp_path / "p.png")
    if shutil.which("dot") is not None:
        assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")
    else:
        assert (tmp_path / "p.png.dot").read_text().startswith("digraph")


def test_module_render_pipeline_needs_no_root(tmp_path: Path) -> None:
    """render_pipeline() draws the default pipeline without being given a root queue."""
    iq.reset(store=tmp_path)
    iq.filter(bool, iq.batch(iq.Queue([1]), batch_size=3))
    assert '{{"batch: 3"}}' in iq.render_pipeline()


def test_after_a_run_tasks_are_marked(tmp_path: Path) -> None:
    """After run(), a drawing marks tasks computed, hit (all cached) or failed."""
    for expected in ("computed", "hit"):
        p = iq.Pipeline(store=tmp_path)
        p.map(abs, iq.Queue([-1]))
        p.run()
        assert ":::" + expected in p.render()
    p = iq.Pipeline(store=tmp_path)
    p.map(lambda x: 1 // x, iq.Queue([0]))
    p.run()
    assert ":::failed" in p.render()
