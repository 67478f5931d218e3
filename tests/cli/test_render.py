"""``incgraph render``: a graph file drawn as mermaid or DOT, nodes marked hit/compute, and images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from incgraph.cli import main
from incgraph.store import open_store

GRAPH_FILE = """
import os
from incgraph import ProcessGraph, Processor

class Load(Processor):
    def process(self, n: int) -> list:
        return list(range(n))

class Total(Processor):
    def process(self, data: list, scale: int) -> int:
        return sum(data) * scale

graph = ProcessGraph(store=os.path.join(os.path.dirname(os.path.abspath(__file__)), "store"))
size = graph.add_constant_node(0, "size", value=10)
loaded = graph.add_node(1, Load, {"n": size})
total = graph.add_node(2, Total, {"data": loaded, "scale": 2})

if __name__ == "__main__":
    graph.run_upto(loaded)
"""

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="graphviz's dot is not installed"
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pipeline.py run once: Load is stored, Total is not."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "pipeline.py").write_text(GRAPH_FILE)
    done = subprocess.run(
        [sys.executable, "pipeline.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """main(args) in-process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_render_prints_mermaid_with_nodes_marked_hit_and_compute(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """The default drawing is mermaid of the whole graph: the stored Load is a hit, Total
    computes, the constant is a constant, and arrows carry the input names."""
    code, out, err = run(capsys, "render", str(project / "pipeline.py"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n_0(["0: size"]):::constant' in lines
    assert '    n_1["1: Load"]:::hit' in lines
    assert '    n_2["2: Total"]:::compute' in lines
    assert '    n_1 -- "data" --> n_2' in lines


def test_render_dot_for_a_target_draws_only_what_it_needs(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """--format dot --target loaded draws the constant and Load (filled as a hit), not Total."""
    args = ("render", str(project / "pipeline.py"), "--format", "dot", "--target", "loaded")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert out.startswith('digraph "ProcessGraph" {')
    assert '"1" [label="1: Load", shape=box, style=filled, fillcolor="#d4f7d4"];' in out
    assert "Total" not in out and '"0" -> "1" [label="n"];' in out


def test_render_json_against_another_store(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    """--json gives the text and each node's action; --store plans against that store (an
    empty one: everything computes)."""
    code, out, err = run(capsys, "render", str(project / "pipeline.py"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["actions"] == {"0": "constant", "1": "hit", "2": "compute"}
    assert (data["hit"], data["compute"], data["image"]) == (1, 1, None)
    assert data["text"].startswith("flowchart TD")
    open_store(tmp_path / "empty").close()
    args = ("render", str(project / "pipeline.py"), "--json", "--store", str(tmp_path / "empty"))
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert json.loads(out)["actions"] == {"0": "constant", "1": "compute", "2": "compute"}


@needs_dot
def test_render_output_writes_an_image(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """--output PATH.png writes a PNG (folders created) and says so on stderr; the text is
    still printed."""
    image = project / "drawings" / "graph.png"
    code, out, err = run(capsys, "render", str(project / "pipeline.py"), "--output", str(image))
    assert code == 0, err
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {image}" in err and out.startswith("flowchart TD")


@needs_dot
def test_render_output_with_a_suffix_dot_does_not_know_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """An image suffix graphviz cannot write exits with 2 and names the suffixes it can."""
    code, _, err = run(
        capsys, "render", str(project / "pipeline.py"), "--output", str(project / "g.nope")
    )
    assert code == 2 and ".png" in err


def test_render_output_without_graphviz_exits_with_2(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without graphviz's dot on the PATH, --output is a usage error that says how to install
    graphviz; the text is printed all the same and no image is written."""
    monkeypatch.setenv("PATH", str(project / "no-bin"))
    image = project / "graph.png"
    code, out, err = run(capsys, "render", str(project / "pipeline.py"), "--output", str(image))
    assert code == 2 and "install graphviz" in err and "--output" in err
    assert out.startswith("flowchart TD") and not image.exists()


def test_render_svg_output_without_graphviz_writes_incgraphs_own_picture(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without graphviz, --output NAME.svg writes the SVG picture a notebook shows, and exits 0."""
    monkeypatch.setenv("PATH", str(project / "no-bin"))
    image = project / "pictures" / "graph.svg"
    code, out, err = run(capsys, "render", str(project / "pipeline.py"), "--output", str(image))
    assert code == 0, err
    assert out.startswith("flowchart TD") and f"wrote {image}" in err
    svg = image.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and ": Total</text>" in svg


def test_render_usage_errors(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """A missing file, a file without graphs, several graphs without --graph, a bad target and
    an unknown format all exit with 2 and say what to do."""
    assert run(capsys, "render", str(project / "missing.py"))[0] == 2
    (project / "nothing.py").write_text("x = 1\n")
    code, _, err = run(capsys, "render", str(project / "nothing.py"))
    assert code == 2 and "defines no ProcessGraph" in err
    (project / "two.py").write_text(
        "from incgraph import ProcessGraph\n"
        "a = ProcessGraph(store=':memory:')\nb = ProcessGraph(store=':memory:')\n"
    )
    code, _, err = run(capsys, "render", str(project / "two.py"))
    assert code == 2 and "a, b" in err and "--graph" in err
    code, out, err = run(capsys, "render", str(project / "two.py"), "--graph", "b")
    assert code == 0 and out.startswith("flowchart TD"), err
    code, _, err = run(capsys, "render", str(project / "pipeline.py"), "--target", "nope")
    assert code == 2 and "nope" in err
    code, _, err = run(capsys, "render", str(project / "pipeline.py"), "--format", "svg")
    assert code == 2 and "mermaid" in err


def test_python_dash_m_renders(project: Path) -> None:
    """`python -m incgraph.cli render FILE --format dot` works as a process."""
    done = subprocess.run(
        [sys.executable, "-m", "incgraph.cli", "render", "pipeline.py", "--format", "dot"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph") and 'fillcolor="#d4f7d4"' in done.stdout
