"""The processes executor: instances per worker, release by recycling, __main__ processors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from incgraph.executors.processes import ProcessExecutor
from incgraph.graph import ProcessGraph
from tests.executors.processors import Negate, Square, lines


def test_each_worker_constructs_a_processor_at_most_once_per_pass(
    process_executor: ProcessExecutor, tmp_path: Path
) -> None:
    """Forty items over two workers: at most one construction per worker, whatever the count."""
    log = tmp_path / "log"
    g = ProcessGraph(store=tmp_path / "store")
    x = g.add_constant_node(0, "x")
    sq = g.add_node(1, Square, {"x": x}, node_init_kwargs={"log": str(log)})
    stats = g.process_batch(range(40), [sq], executor=process_executor)
    assert stats.computed == 39 and stats.failed == [13]
    inits = [line.split()[2] for line in lines(log, "init")]  # "init Square <pid>"
    assert 1 <= len(inits) <= 2 and len(set(inits)) == len(inits)


def test_switching_resources_releases_workers_instances(
    process_executor: ProcessExecutor, tmp_path: Path
) -> None:
    """Workers release the "gpu" instances before any "other-model" one is constructed."""
    log = tmp_path / "log"
    g = ProcessGraph(store=tmp_path / "store")
    x = g.add_constant_node(0, "x")
    sq = g.add_node(1, Square, {"x": x}, node_init_kwargs={"log": str(log)})
    neg = g.add_node(2, Negate, {"y": sq}, node_init_kwargs={"log": str(log)})
    g.process_batch(range(8), [neg], executor=process_executor)
    events = [line.rsplit(" ", 1)[0] for line in log.read_text().splitlines()]
    first_negate = events.index("init Negate")
    assert events[:first_negate].count("release Square") == events.count("init Square") >= 1
    assert events.count("release Negate") == events.count("init Negate")  # released at the end


def test_a_processor_defined_in_main_runs_in_worker_processes(tmp_path: Path) -> None:
    """A processor class defined in a script's __main__ is sent to loky workers (cloudpickle)."""
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from incgraph.core.processor import Processor
            from incgraph.graph import ProcessGraph

            class Triple(Processor):
                def process(self, x: int) -> int:
                    return 3 * x

            class WhereAmI(Processor):
                def process(self, x: int) -> int:
                    return os.getpid()

            if __name__ == "__main__":
                g = ProcessGraph(store=sys.argv[1], executor="processes")
                x = g.add_constant_node(0, "x")
                triple = g.add_node(1, Triple, {"x": x})
                pid = g.add_node(2, WhereAmI, {"x": triple})
                stats = g.process_batch([1, 2, 3], [triple, pid])
                x.set_value(7)
                print(stats.computed, g.run_upto(triple), g.run_upto(pid) != os.getpid())
                g.close()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6", "21", "True"]
