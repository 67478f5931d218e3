"""The processes executor: instances per worker, release by recycling, __main__ processors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import BrokenExecutor
from pathlib import Path

import pytest

from incgraph.executors.processes import ProcessExecutor
from incgraph.graph import ProcessGraph
from incgraph.settings import DEFAULT_SETTINGS
from tests.executors.processors import CrashAt, Negate, Square, lines


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
    process_executor.submit(abs, 0).result()
    pool = process_executor._pool
    g.process_batch(range(8), [neg], executor=process_executor)
    assert process_executor._pool is pool  # released by release jobs: the workers stay warm
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


def test_a_worker_that_dies_fails_its_items_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-job fails that job's items; the pool is replaced, a rerun finishes."""
    monkeypatch.setenv("INCGRAPH_TEST_CRASH_AT", "3")  # inherited by the workers it starts
    g = ProcessGraph(store=tmp_path / "store")
    x = g.add_constant_node(0, "x")
    node = g.add_node(1, CrashAt, {"x": x})
    executor = ProcessExecutor(max_workers=1)
    try:
        stats = g.process_batch(range(8), [node], executor=executor)
        assert 3 in stats.failed and stats.computed + len(stats.failures) == 8
        assert all(f.index == 3 or isinstance(f.exception, BrokenExecutor) for f in stats.failures)
        assert executor.submit(abs, -1).result() == 1  # a fresh pool took over
    finally:
        executor.shutdown()
    monkeypatch.delenv("INCGRAPH_TEST_CRASH_AT")
    rerun = g.process_batch(range(8), [node], executor="processes")
    assert rerun.completed == list(range(8)) and rerun.cached == stats.computed


def test_release_falls_back_to_a_fresh_pool_when_a_worker_is_gone(tmp_path: Path) -> None:
    """If a worker cannot join the release, the pool is recycled and the executor still works."""
    quick = DEFAULT_SETTINGS.replace(process_rendezvous_seconds=0.5)
    executor = ProcessExecutor(max_workers=2, settings=quick)
    try:
        pid = executor.submit(os.getpid).result()
        executor._sent.add("some-instance")  # as if a job had made one
        pool = executor._pool
        os.kill(pid, signal.SIGKILL)
        executor.release(frozenset({"some-instance"}))
        assert executor._pool is not pool  # recycled, not reused
        assert executor.submit(abs, -2).result() == 2
    finally:
        executor.shutdown()
