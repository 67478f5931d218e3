"""End to end, across real processes: reruns, code edits, concurrent runs and kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PIPELINE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from incgraph import ProcessGraph, Processor
    from helpers import scale, OFFSET

    class Make(Processor):
        def process(self, n: int) -> np.ndarray:
            return np.arange(n, dtype=np.float64)

    class Scale(Processor):
        def process(self, x: np.ndarray) -> np.ndarray:
            # a comment that may be edited
            return scale(x) + OFFSET

    class Total(Processor):
        def process(self, x: np.ndarray) -> float:
            return float(x.sum())

    graph = ProcessGraph(store=sys.argv[1])
    n = graph.add_constant_node(0, "n", value=int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    made = graph.add_node(1, Make, {"n": n})
    scaled = graph.add_node(2, Scale, {"x": made})
    total = graph.add_node(3, Total, {"x": scaled})
    value = graph.run_upto(total)
    print(json.dumps({"value": value, "computed": [str(x.id) for x in graph.last_run.computed]}))
    """
)
HELPERS = textwrap.dedent(
    '''
    OFFSET = 1.0

    def scale(x):
        """Double it."""
        return x * 2
    '''
)


def run(project: Path, store: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(project / "pipeline.py"), str(store), *args],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pipeline.py").write_text(PIPELINE)
    (proj / "helpers.py").write_text(HELPERS)
    return proj


def test_second_process_computes_nothing(project: Path, tmp_path: Path) -> None:
    """Running the same script twice in two processes computes nothing the second time."""
    store = tmp_path / "store"
    first = run(project, store)
    assert first["computed"] == ["1", "2", "3"]
    second = run(project, store)
    assert second == {"value": first["value"], "computed": []}


def test_edits_that_matter_and_edits_that_do_not(project: Path, tmp_path: Path) -> None:
    """Comments/docstrings change nothing; a helper or constant edit recomputes node and below."""
    store = tmp_path / "store"
    base = run(project, store)["value"]
    pipeline = project / "pipeline.py"
    pipeline.write_text(pipeline.read_text().replace("a comment that may be edited", "reworded"))
    helpers = project / "helpers.py"
    helpers.write_text(helpers.read_text().replace('"""Double it."""', '"""Twice x."""'))
    assert run(project, store)["computed"] == []

    helpers.write_text(helpers.read_text().replace("return x * 2", "return x * 3"))
    changed = run(project, store)
    assert changed["computed"] == ["2", "3"]
    assert changed["value"] != base

    helpers.write_text(helpers.read_text().replace("OFFSET = 1.0", "OFFSET = 0.0"))
    assert run(project, store)["computed"] == ["2", "3"]


def test_concurrent_processes_share_one_store(project: Path, tmp_path: Path) -> None:
    """Four processes running the same graph on one store at once all succeed with equal results."""
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(project)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(project / "pipeline.py"), str(store), "200000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=project,
            env=env,
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["value"] for r in results}) == 1
    assert run(project, store, "200000")["computed"] == []


KILLED = textwrap.dedent(
    """
    import sys
    import numpy as np
    from incgraph import ProcessGraph, Processor

    class Block(Processor):
        def process(self, i: int) -> np.ndarray:
            return np.full(300_000, float(i))   # 2.4 MB: written as its own file

    graph = ProcessGraph(store=sys.argv[1])
    nodes = [graph.add_node(i, Block, {"i": i}) for i in range(400)]
    print("ready", flush=True)
    graph.run_upto(nodes)
    """
)


def test_sigkill_mid_run_never_serves_a_torn_result(tmp_path: Path) -> None:
    """A run killed with SIGKILL while writing leaves a store whose every result is whole."""
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    store = tmp_path / "store"
    for delay in (0.3, 0.6, 1.0):
        p = subprocess.Popen(
            [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(delay)  # let it get part-way: the point of the test is an arbitrary instant
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)

    from incgraph.store import open_store

    with open_store(store) as opened:
        records = list(opened.index.records())
        assert records, "the killed runs committed nothing: kill later"
        for record in records:
            value = opened.load(record)
            assert value.shape == (300_000,) and bool((value == float(record.node)).all())
    # Finishing the run afterwards computes only what no killed run committed.
    done = subprocess.run(
        [sys.executable, str(script), str(store)], capture_output=True, check=True
    )
    assert done.returncode == 0
    with open_store(store) as opened:
        assert len(list(opened.index.records())) == 400
