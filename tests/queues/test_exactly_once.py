"""Exactly once across processes: pipelines sharing a store split the work, never repeat it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph import hashing
from incgraph.run.keys import item_key_maker, make_record
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


DIES = textwrap.dedent(
    """
    import os, sys, time

    import incgraph.queues as iq

    def slow_square(x):
        time.sleep(0.01)
        if x == 5 and os.environ.get("DIE") == "1":
            os._exit(3)  # killed mid-run: its leases are never released
        return x * x

    p = iq.Pipeline(store=sys.argv[1])
    out = p.map(iq.Task(slow_square, max_workers=int(sys.argv[2])), iq.Queue(range(10)))
    report = p.run()
    print(list(out) == [x * x for x in range(10)], report.ok)
    """
)


@pytest.mark.timeout(25)  # well under the 30 s a lease lives: the dead claimant's are dropped
@pytest.mark.parametrize("workers", [1, 2])
def test_items_claimed_by_a_killed_process_are_computed_by_the_next(
    tmp_path: Path, workers: int
) -> None:
    """Items a killed process had claimed are computed by the next run at once, in order."""
    script = tmp_path / "dies.py"
    script.write_text(DIES)
    store = tmp_path / "store"
    args = [sys.executable, str(script), str(store), str(workers)]
    dead = subprocess.run(args, env={**os.environ, "DIE": "1"}, capture_output=True, check=False)
    assert dead.returncode == 3
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    assert done.stdout == "True True\n"
    assert open_store(store).ledger.lease_states() == {}


class OtherProcess:
    """Another claimant of the store, as a second process would be: it holds item 3's lease."""

    def __init__(self, store: Any, p: iq.Pipeline, task: str) -> None:
        self.store = store
        self.node = p.graph.nodes[task]
        self.key = item_key_maker(self.node, "item")(hashing.data_version(3))
        self.lessee = store.lessee()
        assert self.lessee.claim_many([self.key]).mine == [self.key]

    def save(self, value: Any) -> None:
        """Store ``value`` as item 3's result, then release the lease (as a run does)."""
        record = make_record(self.node, self.key, {}, hashing.data_version(value), 0.0)
        self.store.save(record, value)
        self.lessee.release([self.key])

    def give_up(self) -> None:
        """Release the lease without a result (its computation failed)."""
        self.lessee.release([self.key])


@pytest.mark.parametrize("workers", [1, 3])
def test_an_item_another_process_computes_is_waited_for_and_served_as_a_hit(
    tmp_path: Path, workers: int
) -> None:
    """Item 3, held by another claimant, is not computed: the stored result is emitted in place."""
    store = open_store(tmp_path)
    p = iq.Pipeline(store=store)
    computed: list[int] = []

    def slow_square(x: int) -> int:
        time.sleep(0.002)  # dearer than a lease: the stage claims its items
        computed.append(x)
        if x == 6:
            other.save(-1)  # the other process finishes while the stage waits for it
        return x * x

    out = p.map(iq.Task(slow_square, max_workers=workers), iq.Queue(range(10)))
    other = OtherProcess(store, p, "slow_square")
    report = p.run()
    assert list(out) == [0, 1, 4, -1, 16, 25, 36, 49, 64, 81]
    assert sorted(computed) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert (report.computed, report.cached) == (9, 1)


def test_an_item_whose_claimant_gives_up_is_computed_here(tmp_path: Path) -> None:
    """Item 3's lease released without a result: the waiting stage computes it, in order."""
    store = open_store(tmp_path)
    p = iq.Pipeline(store=store)
    computed: list[int] = []

    def slow_square(x: int) -> int:
        time.sleep(0.002)
        computed.append(x)
        if x == 6:
            other.give_up()
        return x * x

    out = p.map(slow_square, iq.Queue(range(10)))
    other = OtherProcess(store, p, "slow_square")
    report = p.run()
    assert list(out) == [x * x for x in range(10)]
    assert sorted(computed) == list(range(10)) and report.computed == 10
    assert store.ledger.lease_states() == {}
