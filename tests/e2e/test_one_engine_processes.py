"""Several real processes on one SQLite store compute each key once in total."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

GRAPH_SCRIPT = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from incgraph import ProcessGraph, Processor, open_store

    store_dir, marks, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

    class Slow(Processor):
        def process(self, i: int) -> int:
            time.sleep(0.02)
            (marks / f"{i}.{uuid.uuid4().hex}").write_text("")
            return i * i

    g = ProcessGraph(store=open_store(store_dir))
    nodes = [g.add_node(f"n{i}", Slow, {"i": i}) for i in range(120)]
    while not go.exists():
        time.sleep(0.005)
    g.run_upto(nodes)  # one run over the whole graph
    values = [g.run_upto(n) for n in nodes]
    assert values == [i * i for i in range(120)], values
    """
)

PIPELINE_SCRIPT = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    import incgraph.queues as iq
    from incgraph import open_store

    store_dir, marks, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

    def slow_square(x):
        time.sleep(0.02)
        (marks / f"{x}.{uuid.uuid4().hex}").write_text("")
        return x * x

    p = iq.Pipeline(store=open_store(store_dir))
    out = p.map(iq.task(name="slow_square", max_workers=2)(slow_square), iq.Queue(range(60)))
    while not go.exists():
        time.sleep(0.005)
    p.run()
    assert list(out) == [x * x for x in range(60)]
    """
)


def _run_together(script: str, count: int, tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "script.py"
    path.write_text(script)
    marks = tmp_path / "marks"
    marks.mkdir()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, str(path), str(tmp_path / "store"), str(marks), str(go)]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    go.write_text("")
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    counts: dict[str, int] = {}
    for mark in marks.iterdir():
        key = mark.name.split(".")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_eight_processes_one_cold_graph(tmp_path: Path) -> None:
    """8 processes running one cold 120-node graph compute each node exactly once in total."""
    counts = _run_together(GRAPH_SCRIPT, 8, tmp_path)
    assert counts == {str(i): 1 for i in range(120)}


def test_two_processes_one_pipeline(tmp_path: Path) -> None:
    """Two processes running the same queue pipeline over the same items compute each once."""
    counts = _run_together(PIPELINE_SCRIPT, 2, tmp_path)
    assert counts == {str(x): 1 for x in range(60)}
