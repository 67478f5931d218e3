"""A batch killed with SIGKILL resumes without recomputing anything it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from incgraph.store import open_store

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from incgraph.core.processor import Processor
    from incgraph.graph import ProcessGraph
    from incgraph.store import open_store

    calls_path, store_path, strategy = sys.argv[1], sys.argv[2], sys.argv[3]
    def log(line):  # (KILL_AT is read here, not kept in a global: globals are code)
        with open(calls_path, "a") as f:
            f.write(line + "\\n")
        with open(calls_path) as f:
            made = sum(1 for _ in f)
        if made == int(os.environ.get("KILL_AT", "0")):
            os.kill(os.getpid(), signal.SIGKILL)

    class Clean(Processor):
        def process(self, doc: str) -> str:
            log(f"Clean {doc}")
            return doc.strip().lower()

    class Score(Processor):
        def process(self, text: str) -> int:
            log(f"Score {text}")
            return sum(map(ord, text))

    # the killed run's leases on the keys it was computing lapse after lease_seconds (30 s
    # by default), and the resumed run waits for them: keep that short here
    graph = ProcessGraph(store=open_store(store_path, lease_seconds=2.0))
    doc = graph.add_constant_node(0, "doc")
    score = graph.add_node(2, Score, {"text": graph.add_node(1, Clean, {"doc": doc})})
    stats = graph.process_batch(
        [f" Doc {i} " for i in range(40)], [score], strategy=strategy, chunk_size=8
    )
    print(stats.computed, stats.cached, len(stats.completed))
    """
)


def run(tmp_path: Path, strategy: str, kill_at: int) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "batch_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "KILL_AT": str(kill_at)}
    args = [sys.executable, str(script), str(tmp_path / "calls.txt"), str(tmp_path / "store")]
    return subprocess.run([*args, strategy], env=env, capture_output=True, text=True, timeout=120)


def committed_keys(store_path: Path) -> set[str]:
    store = open_store(store_path)
    try:
        return {record.key for record in store.index.records()}
    finally:
        store.close()


@pytest.mark.parametrize(("strategy", "kill_at"), [("breadth_first", 53), ("depth_first", 29)])
def test_killed_batch_resumes_without_recomputing_committed_item_nodes(
    tmp_path: Path, strategy: str, kill_at: int
) -> None:
    """After SIGKILL mid-batch, every committed item-node is a hit and only the rest computes."""
    killed = run(tmp_path, strategy, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = committed_keys(tmp_path / "store")
    assert 0 < len(before) < 80  # killed part-way, with work committed

    calls_before = (tmp_path / "calls.txt").read_text().splitlines()
    resumed = run(tmp_path, strategy, 0)
    assert resumed.returncode == 0, resumed.stderr
    computed, cached, completed = map(int, resumed.stdout.split())
    after = committed_keys(tmp_path / "store")

    new_calls = (tmp_path / "calls.txt").read_text().splitlines()[len(calls_before) :]
    assert completed == 40 and len(after) == 80
    assert cached == len(before)  # every committed item-node is a hit...
    assert computed == len(new_calls) == len(after - before)  # ...and nothing else recomputes
