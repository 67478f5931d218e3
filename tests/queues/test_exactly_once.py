"""Exactly once across processes: pipelines sharing a store split the work, never repeat it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import incgraph.queues as iq
from incgraph.store import open_store

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import incgraph.queues as iq

    store, log_dir, n, workers, me = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    os.environ["COMPUTED_LOG"] = str(log_dir / f"computed-{me}.txt")

    def slow_square(x):  # the same code in every process: its log file is not in its globals
        time.sleep(0.02)
        with open(os.environ["COMPUTED_LOG"], "a") as f:
            f.write(f"{x}\\n")
        return x * x

    # start together: every process is ready before any computes
    (log_dir / f"ready-{me}").touch()
    while len(list(log_dir.glob("ready-*"))) < n:
        time.sleep(0.005)
    p = iq.Pipeline(store=store)
    out = p.chain([iq.Task(slow_square, max_workers=workers), str], iq.Queue(range(60)))
    report = p.run()
    assert report.ok, report.summary()
    assert list(out) == [str(x * x) for x in range(60)], list(out)
    print(report.computed, report.cached)
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("processes", "workers"), [(2, 1), (4, 1), (3, 3)])
def test_each_item_is_computed_once_by_processes_sharing_a_store(
    tmp_path: Path, processes: int, workers: int
) -> None:
    """Processes running one pipeline over the same 60 slow items compute each item once in all."""
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    logs = tmp_path / "logs"
    logs.mkdir()
    store = tmp_path / "store"
    open_store(store).close()  # created once, before the processes race to open it
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(store),
                str(logs),
                str(processes),
                str(workers),
                str(i),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    outputs = [proc.communicate(timeout=100) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * processes, outputs
    computed = [
        int(line) for path in logs.glob("computed-*.txt") for line in path.read_text().split()
    ]
    assert sorted(computed) == list(range(60))
    runs = open_store(store).runs()
    assert len([r for r in runs if r.kind == "pipeline"]) == processes


def test_a_run_is_one_run_log_row_and_holds_no_lease_after_it(tmp_path: Path) -> None:
    """Pipeline.run() is one row of the run log (its hits and writes); no lease outlives it."""

    def slow_double(x: int) -> int:
        time.sleep(0.002)  # slower than a lease: its items are claimed
        return 2 * x

    store = open_store(tmp_path)
    for items in (range(20), range(30)):
        p = iq.Pipeline(store=store)
        out = p.chain([slow_double, str], iq.Queue(items))
        p.run()
        assert list(out) == [str(2 * x) for x in items]
    runs = [r for r in store.runs() if r.kind == "pipeline"]
    assert [(r.computed, r.hits, r.status) for r in runs] == [(40, 0, "ok"), (20, 40, "ok")]
    assert store.ledger.lease_states() == {}
