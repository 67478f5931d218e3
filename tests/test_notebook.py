"""A real notebook in a real kernel: plans, reports, batch stats and drawings display as tables and pictures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import incgraph

SETUP = """
from incgraph import ProcessGraph, Processor
graph = ProcessGraph(store=STORE)
"""

DEFINE = """
class Double(Processor):
    def process(self, x: int) -> int:
        return 2 * x

x = graph.add_constant_node(0, "x", value=21)
doubled = graph.add_node(1, Double, {"x": x})
graph.run_upto(doubled)
"""

REDEFINE = """
class Double(Processor):
    def process(self, x: int) -> int:
        return x + x + 1  # a new body: the node must compute again

graph = ProcessGraph(store=STORE)
x = graph.add_constant_node(0, "x", value=21)
doubled = graph.add_node(1, Double, {"x": x})
print(graph.run_upto(doubled))
graph.last_run
"""

EXPLAIN = "graph.explain(doubled)"

BATCH = """
class Inverse(Processor):
    def process(self, x: int) -> float:
        return 1 / x

batch_graph = ProcessGraph(store=STORE)
item = batch_graph.add_constant_node(0, "item")
inverse = batch_graph.add_node(1, Inverse, {"x": item})
stats = batch_graph.process_batch([1, 0, 4], [inverse], progress=False)
stats
"""

FAILURE = "stats.failures[0]"

DRAW = "graph.draw(explain=True)"


def _kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running this test's Python, with this checkout importable and the store in tmp_path."""
    spec = tmp_path / "jupyter" / "kernels" / "incgraph-test"
    spec.mkdir(parents=True)
    checkout = str(Path(incgraph.__file__).resolve().parent.parent)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "incgraph test",
        "language": "python",
        "env": {"PYTHONPATH": checkout, "INCGRAPH_STORE": str(tmp_path / "default-store")},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return "incgraph-test"


def _execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: list[str]) -> Any:
    store = tmp_path / "store"
    cells = [nbformat.v4.new_code_cell(f"STORE = {str(store)!r}")]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    notebook = nbformat.v4.new_notebook(cells=cells)
    client = NotebookClient(
        notebook,
        timeout=120,
        startup_timeout=120,
        kernel_name=_kernel(tmp_path, monkeypatch),
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return notebook


def _shown(cell: Any, mime: str) -> str:
    for output in cell.outputs:
        if output.output_type == "execute_result":
            return str(output.data.get(mime, ""))
    raise AssertionError(f"the cell shows no result: {cell.outputs}")


def _printed(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


@pytest.mark.timeout(300)
def test_a_notebook_shows_tables_and_pictures_and_caches_across_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redefining a processor recomputes, re-running a cell hits, and each object shows as HTML."""
    nb = _execute(
        tmp_path,
        monkeypatch,
        [SETUP, DEFINE, EXPLAIN, REDEFINE, REDEFINE, EXPLAIN, BATCH, FAILURE, DRAW],
    )
    _, _, define, first_explain, redefine, rerun, second_explain, batch, failure, draw = nb.cells
    assert _shown(define, "text/plain") == "42"
    assert "hit" in _shown(first_explain, "text/html")  # the value just computed is stored
    assert _printed(redefine).strip() == "43"
    report = _shown(redefine, "text/html")
    assert "<table" in report and ">computed</td>" in report and "Double" in report
    assert _printed(rerun).strip() == "43"
    assert ">hit</td>" in _shown(rerun, "text/html") and "computed</td>" not in _shown(
        rerun, "text/html"
    )
    plan = _shown(second_explain, "text/html")
    assert "<table" in plan and ">hit</td>" in plan and "ACTION" in plan
    assert "hit" in _shown(second_explain, "text/plain")
    stats = _shown(batch, "text/html")
    assert "3 items" in stats and "ZeroDivisionError" in stats and "Inverse" in stats
    assert "Inverse" in _shown(batch, "text/plain")
    assert "ZeroDivisionError" in _shown(failure, "text/html")
    assert "item 1 (0)" in _shown(failure, "text/plain")
    picture = _shown(draw, "text/html")
    assert picture.startswith("<svg") and "1: Double" in picture
    assert "flowchart TD" in _shown(draw, "text/plain")
