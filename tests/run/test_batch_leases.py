"""Batches and the store's session: the run log, and exactly-once leases across processes.

The cross-process tests start this file as a script (the ``__main__`` block at
the bottom is the worker); every computation appends one line to a marker file
opened with ``O_APPEND``, so counting its lines counts computations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from incgraph.core.processor import Processor
from incgraph.errors import NodeError, ReadOnlyStoreError
from incgraph.graph import ProcessGraph
from incgraph.store import open_store

WORKER = Path(__file__).resolve()


def mark(log: str, line: str) -> None:
    """Append one line to the marker file (one write, O_APPEND: lines never interleave)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


class Inc(Processor):
    """x + 1, noting each computation; fails for the item named by $BATCH_BOOM."""

    def __init__(self, log: str) -> None:
        self.log = log

    def process(self, x: int) -> int:
        if os.environ.get("BATCH_BOOM") == str(x):
            raise ValueError(f"boom on {x}")
        mark(self.log, f"inc {x}")
        time.sleep(0.004)  # a little work, so two processes overlap
        return x + 1


class Double(Processor):
    """2 * y, noting each computation."""

    def __init__(self, log: str) -> None:
        self.log = log

    def process(self, y: int) -> int:
        mark(self.log, f"double {y}")
        time.sleep(0.004)
        return 2 * y


class Hold(Processor):
    """Notes that it runs, then waits (up to a minute) until the file ``go`` exists."""

    def __init__(self, log: str, go: str) -> None:
        self.log, self.go = log, go

    def process(self, y: int) -> int:
        mark(self.log, f"hold {y}")
        wait_for_file(self.go)
        return y


def wait_for_file(path: str, timeout: float = 60) -> None:
    """Poll until ``path`` exists (another process creates it), for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def build(store: object, log: Path, go: Path | None = None) -> tuple[ProcessGraph, dict]:
    """``x -> Inc -> Double`` (and ``Inc -> Hold`` when ``go`` is given)."""
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node(0, "x")
    inc = graph.add_node(1, Inc, {"x": x}, node_init_kwargs={"log": str(log)})
    double = graph.add_node(2, Double, {"y": inc}, node_init_kwargs={"log": str(log)})
    nodes = {"x": x, "inc": inc, "double": double}
    if go is not None:
        kwargs = {"log": str(log), "go": str(go)}
        nodes["hold"] = graph.add_node(3, Hold, {"y": inc}, node_init_kwargs=kwargs)
    return graph, nodes


def worker(store: str, log: str, items: int, targets: str, go: str) -> None:
    """Run one batch over ``range(items)`` and print its stats as JSON."""
    graph, nodes = build(store, Path(log), Path(go) if go else None)
    gate = os.environ.get("BATCH_GATE")
    if gate:  # start together with the other workers
        mark(log, f"ready {os.getpid()}")
        wait_for_file(gate)
    run_nodes = [nodes[name] for name in targets.split(",")]
    stats = graph.process_batch(range(items), run_nodes, progress=False, chunk_size=4)
    print(json.dumps({"computed": stats.computed, "cached": stats.cached, "failed": stats.failed}))


def start(
    tmp_path: Path, items: int, targets: str, go: str = "", boom: str = "", gate: str = ""
) -> subprocess.Popen:
    env = {**os.environ, "BATCH_BOOM": boom, "BATCH_GATE": gate}
    args = [sys.executable, str(WORKER), str(tmp_path / "store"), str(tmp_path / "marks")]
    return subprocess.Popen(
        [*args, str(items), targets, go],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def marks(tmp_path: Path) -> Counter:
    path = tmp_path / "marks"
    return Counter(path.read_text().splitlines()) if path.exists() else Counter()


def wait_for_mark(
    tmp_path: Path, line: str, procs: list[subprocess.Popen], count: int = 1, timeout: float = 60
) -> None:
    """Poll the marker file (which other processes append to) until ``count`` lines start
    with ``line``."""
    deadline = time.monotonic() + timeout
    while sum(n for text, n in marks(tmp_path).items() if text.startswith(line)) < count:
        assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
        assert time.monotonic() < deadline, f"{line!r} did not appear in {timeout} s"
        time.sleep(0.01)


# -- exactly once across processes ------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_running_one_cold_batch_compute_each_item_node_once(tmp_path: Path) -> None:
    """Two processes run the same cold 40-item batch on one store: every item-node is computed
    once in total, and each process ends with every item completed."""
    open_store(tmp_path / "store").close()
    gate = tmp_path / "gate"
    procs = [start(tmp_path, 40, "double", gate=str(gate)) for _ in range(2)]
    try:
        wait_for_mark(tmp_path, "ready", procs, count=2)  # both imported and built the graph
    finally:
        gate.touch()
    results = [finish(p) for p in procs]
    counts = +Counter({k: n for k, n in marks(tmp_path).items() if not k.startswith("ready")})
    assert set(counts.values()) == {1} and len(counts) == 80, counts.most_common(3)
    assert sum(r["computed"] for r in results) == 80
    assert all(r["computed"] + r["cached"] == 80 and r["failed"] == [] for r in results)


@pytest.mark.slow
def test_a_failing_items_lease_is_released_so_another_process_computes_it(
    tmp_path: Path,
) -> None:
    """A batch whose item 3 fails is still running (held in a later pass) when a second
    process runs the same node: the second computes item 3 at once instead of waiting for
    the first's lease, and nothing else is computed twice."""
    open_store(tmp_path / "store").close()
    go = tmp_path / "go"
    first = start(tmp_path, 8, "hold", go=str(go), boom="3")
    try:
        wait_for_mark(tmp_path, "hold 1", [first])  # the Inc pass is over; item 3 failed
        second = finish(start(tmp_path, 8, "inc"), timeout=20)  # a held lease would take 30 s
    finally:
        go.touch()
    first_stats = finish(first)
    assert first_stats["failed"] == [3]
    assert second == {"computed": 1, "cached": 7, "failed": []}
    counts = marks(tmp_path)
    assert all(counts[f"inc {x}"] == 1 for x in range(8)), counts


def test_keys_another_run_holds_wait_for_the_end_of_the_pass_and_compute_once(
    tmp_path: Path,
) -> None:
    """Item 1's key is held by another claimant while both chunks holding it are looked up:
    the pass goes on with the other items, and once the lease is released (by the time the
    last item is bound) computes item 1 once for both of its rows."""
    store = open_store(tmp_path / "store")
    graph, nodes = build(store, tmp_path / "marks")
    nodes["x"].set_value(1)
    key = graph.explain(nodes["inc"])[nodes["inc"]].key
    other = store.lessee()
    assert other.claim_many([key]).mine == [key]
    bound: list[int] = []

    def prep_fn(index: int, item: int) -> None:
        nodes["x"].set_value(item)
        bound.append(index)
        if index == 3:  # the other claimant gives up, after both chunks set item 1 aside
            other.release([key])

    stats = graph.process_batch([1, 2, 1, 3], [nodes["inc"]], prep_fn, chunk_size=2, progress=False)
    other.close()
    assert (stats.computed, stats.cached, stats.completed) == (3, 1, [0, 1, 2, 3])
    assert marks(tmp_path) == Counter({"inc 1": 1, "inc 2": 1, "inc 3": 1})
    assert bound[:4] == [0, 1, 2, 3]


# -- the run log ----------------------------------------------------------------------------


def test_a_batch_logs_its_hits_and_writes_in_the_run_log(tmp_path: Path) -> None:
    """A cold batch is one "batch" row that wrote each item-node's key; its rerun hit them."""
    store = open_store(tmp_path / "store")
    graph, nodes = build(store, tmp_path / "marks")
    graph.process_batch(range(5), [nodes["double"]], progress=False)
    graph.process_batch(range(5), [nodes["double"]], progress=False)
    cold, warm = store.runs()[-2:]
    assert (cold.kind, cold.status, cold.computed, cold.hits) == ("batch", "ok", 10, 0)
    assert (warm.kind, warm.status, warm.computed, warm.hits) == ("batch", "ok", 0, 10)
    assert "Double" in cold.label or "2" in cold.label


@pytest.mark.parametrize("strategy", ["breadth_first", "depth_first"])
def test_each_batch_is_exactly_one_run_log_row(tmp_path: Path, strategy: str) -> None:
    """Many chunks, two passes, a failing item and a cached rerun: one row per process_batch."""
    store = open_store(tmp_path / "store")
    graph, nodes = build(store, tmp_path / "marks")
    before = len(store.runs())
    os.environ["BATCH_BOOM"] = "4"
    try:
        stats = graph.process_batch(
            range(9), [nodes["double"]], strategy=strategy, chunk_size=2, progress=False
        )
    finally:
        del os.environ["BATCH_BOOM"]
    assert len(stats.failures) == 1
    graph.process_batch(range(9), [nodes["double"]], strategy=strategy, progress=False)
    runs = store.runs()[before:]
    assert [(r.kind, r.status) for r in runs] == [("batch", "ok")] * 2
    assert (runs[0].computed, runs[1].computed + runs[1].hits) == (16, 18)


def test_gc_keeping_one_run_after_a_batch_keeps_that_batchs_results(tmp_path: Path) -> None:
    """Batch, engine run, cached batch, gc(keep_runs=1): the batch's results survive (its hits
    are logged), the engine run's are dropped, and a rerun computes nothing."""
    store = open_store(tmp_path / "store")
    graph, nodes = build(store, tmp_path / "marks")
    graph.process_batch(range(4), [nodes["double"]], progress=False)
    nodes["x"].set_value(100)
    assert graph.run_upto(nodes["double"]) == 202
    graph.process_batch(range(4), [nodes["double"]], progress=False)
    report = store.gc(keep_runs=1, grace=0)
    assert len(report.removed) == 2  # Inc and Double of x=100
    stats = graph.process_batch(range(4), [nodes["double"]], progress=False)
    assert (stats.computed, stats.cached) == (0, 8)


def test_a_batch_that_raises_is_logged_as_failed_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    """fault_tolerant=False re-raises item 2's error; the run log's row says "failed" and
    lists the keys saved before the error, and no lease is left behind."""
    store = open_store(tmp_path / "store")
    graph, nodes = build(store, tmp_path / "marks")
    os.environ["BATCH_BOOM"] = "2"
    try:
        with pytest.raises(NodeError):
            graph.process_batch(range(4), [nodes["inc"]], progress=False, fault_tolerant=False)
    finally:
        del os.environ["BATCH_BOOM"]
    run = store.runs()[-1]
    saved = marks(tmp_path)
    assert (run.kind, run.status, run.computed) == ("batch", "failed", len(saved))
    assert 2 <= len(saved) <= 3 and "inc 2" not in saved
    stats = graph.process_batch(range(4), [nodes["inc"]], progress=False)
    assert (stats.computed, stats.cached) == (4 - len(saved), len(saved))  # no lease held back


def test_a_read_only_store_serves_a_cached_batch_and_refuses_to_compute(tmp_path: Path) -> None:
    """On a read-only store a cached batch runs (logging nothing), and one with misses raises
    a ReadOnlyStoreError naming the node before computing anything."""
    graph, nodes = build(open_store(tmp_path / "store"), tmp_path / "marks")
    graph.process_batch(range(3), [nodes["double"]], progress=False)
    computed = sum(marks(tmp_path).values())
    reader = open_store(tmp_path / "store", read_only=True)
    graph, nodes = build(reader, tmp_path / "marks")
    stats = graph.process_batch(range(3), [nodes["double"]], progress=False)
    assert (stats.computed, stats.cached) == (0, 6)
    with pytest.raises(ReadOnlyStoreError, match=r"node 1 \(Inc\)"):
        graph.process_batch(range(5), [nodes["double"]], progress=False)
    assert sum(marks(tmp_path).values()) == computed


if __name__ == "__main__":
    worker(*sys.argv[1:3], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "")
