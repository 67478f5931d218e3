"""gc after each front-end's runs keeps what kept results reference, and counts user runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph import ProcessGraph, Processor
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.store import Record, Store, open_store
from incgraph.store.store import refs_of

CALL_LOG = os.path.join(tempfile.gettempdir(), f"incgraph-gc-front-ends-{os.getpid()}.log")
"""Where computations note themselves (a constant path: a list would be state in the code)."""


def note(name: str) -> None:
    with open(CALL_LOG, "a") as handle:
        handle.write(name + "\n")


def calls() -> list[str]:
    """The computations noted since the last call."""
    try:
        with open(CALL_LOG) as handle:
            found = handle.read().split()
    except FileNotFoundError:
        return []
    os.unlink(CALL_LOG)
    return found


def make_flow() -> tuple[type[Flow], type[Layer], type[Layer]]:
    """A flow whose layers keep artifacts as blobs (lists), and a ForEach over four tasks."""

    class Grid(Flow): ...

    @Grid.register
    class Data(Layer):
        def __call__(self) -> None:
            note("Data")
            self.table = list(range(300))
            self.shard(rows=[[i] * 40 for i in range(4)])

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="rows")]))
    class Fit(Layer):
        def __call__(self, data: Data) -> None:
            note("Fit")
            self.model = [x * 2 for x in data.rows] + data.table[:3]
            self.score = sum(data.rows)

    return Grid, Data, Fit


def check_flow(store: Path) -> None:
    """Run the flow and check every artifact it reads back."""
    Grid, Data, Fit = make_flow()
    execution = Grid(store=store)()
    assert execution[Data].table == list(range(300))
    assert [execution.layer(Fit, index=i).model[:2] for i in range(4)] == [
        [2 * i] * 2 for i in range(4)
    ]
    assert list(execution[Fit].score) == [40 * i for i in range(4)]


def square(x: int) -> int:
    note("square")
    return x * x


def check_pipeline(store: Path) -> iq.PipelineReport:
    """Run a one-task pipeline over five items and check its output."""
    p = iq.Pipeline(store=store)
    out = p.chain([iq.Task(square)], iq.Queue(list(range(5))))
    report = p.run()
    assert list(out) == [0, 1, 4, 9, 16]
    return report


class Double(Processor):
    def process(self, x: int) -> list[int]:
        note("Double")
        return [x] * 200


def check_graph(store: Path) -> None:
    """Run a two-node graph and a batch of three items over it; check the values."""
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node("x", "x", value=3)
    double = graph.add_node("double", Double, {"x": x})
    assert graph.run_upto(double) == [3] * 200
    stats = graph.process_batch([1, 2, 3], [double], lambda i, item: x.set_value(item))
    assert stats.failures == []
    graph.close()


GC_OPTIONS: list[dict[str, Any]] = [
    {},
    {"grace": 0},
    {"keep_runs": 1, "grace": 0},
    {"keep_runs": 0, "grace": 0},
    {"max_bytes": 0, "grace": 0},
    {"keep_runs": 1, "max_bytes": 10_000, "grace": 0},
    {"grace": 0, "dry_run": True},
]


@pytest.mark.parametrize("options", GC_OPTIONS, ids=lambda o: ",".join(map(str, o)) or "default")
def test_every_front_end_reruns_correctly_after_gc_with_any_option(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """After a flow, a pipeline and a graph with a batch, gc with any option leaves a store on
    which each reruns with correct values and no KeyError; verify finds nothing."""
    for _ in range(2):
        check_flow(tmp_path)
        check_pipeline(tmp_path)
        check_graph(tmp_path)
    with open_store(tmp_path) as store:
        store.gc(**options)
        assert store.verify().ok
    check_flow(tmp_path)
    check_pipeline(tmp_path)
    check_graph(tmp_path)
    with open_store(tmp_path) as store:
        assert store.verify().ok


@pytest.mark.parametrize("options", [{}, {"grace": 0}])
def test_gc_keeps_a_flows_artifacts_and_the_rerun_is_all_hits(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """gc without keep_runs removes no artifact a stored layer result names: the rerun computes
    nothing and reads every artifact."""
    check_flow(tmp_path)
    with open_store(tmp_path) as store:
        report = store.gc(**options)
        assert report.removed == [] and report.orphan_blobs == []
    calls()
    check_flow(tmp_path)
    assert calls() == []


def test_keep_runs_one_counts_a_flow_execution_as_one_run(tmp_path: Path) -> None:
    """gc(keep_runs=1) after a cached flow run keeps everything that run used."""
    check_flow(tmp_path)
    check_flow(tmp_path)
    with open_store(tmp_path) as store:
        assert [run.kind for run in store.runs()] == ["flow", "flow"]
        store.gc(keep_runs=1, grace=0)
    calls()
    check_flow(tmp_path)
    assert calls() == []


def test_keep_runs_one_keeps_a_cached_pipeline_reruns_results(tmp_path: Path) -> None:
    """A pipeline run, a graph run, a cached pipeline rerun, gc(keep_runs=1): the pipeline's
    results stay, and its next run computes nothing."""
    check_pipeline(tmp_path)
    check_graph(tmp_path)
    assert check_pipeline(tmp_path).computed == 0
    with open_store(tmp_path) as store:
        store.gc(keep_runs=1, grace=0)
    calls()
    assert check_pipeline(tmp_path).computed == 0
    assert calls() == []


def test_verify_reports_a_flow_result_whose_artifact_is_gone(tmp_path: Path) -> None:
    """A layer result whose artifact blob vanished is a problem for verify, which drops it so
    the next run recomputes the layer instead of failing to read it forever."""
    check_flow(tmp_path)
    with open_store(tmp_path) as store:
        refs = store.index.refs()
        artifact = sorted({ref for found in refs.values() for ref in found})[0]
        store.blobs.delete(artifact)
        report = store.verify()
        assert not report.ok and any(artifact in p.reason for p in report.problems)
        assert store.verify().ok
    check_flow(tmp_path)


def test_dropping_every_flow_result_frees_its_artifacts_at_once(tmp_path: Path) -> None:
    """gc that drops every layer result, and clear, delete the artifacts in the same pass."""
    check_flow(tmp_path)
    with open_store(tmp_path) as store:
        assert store.index.refs()
        store.gc(keep_runs=0, grace=0)
        assert store.stats().blobs == 0 and store.index.refs() == {}
    check_flow(tmp_path)
    with open_store(tmp_path) as store:
        store.clear()
        assert store.stats().blobs == 0 and store.index.refs() == {}


GC_LOOP = """
import os, sys
from incgraph.store import open_store
stop = sys.argv[2]
with open_store(sys.argv[1]) as store:
    rounds = 0
    while not os.path.exists(stop) or rounds == 0:
        store.gc(grace=0)
        rounds += 1
print(rounds)
"""


def test_cold_flows_beside_gc_with_no_grace_never_fail(tmp_path: Path) -> None:
    """A process running gc --grace 0 in a loop never makes a cold flow run fail or lose an
    artifact: artifacts are committed with the layer result that references them."""
    import subprocess
    import sys

    class Cold(Flow): ...

    @Cold.register
    class Make(Layer):
        def __call__(self) -> None:
            seed = self.params.seed
            self.big = [seed] * 500
            self.shard(parts=[[seed, i] * 100 for i in range(6)])

    @Cold.register(foreach=ForEach(parameters=[Parameter(layer=Make, attribute="parts")]))
    class Use(Layer):
        def __call__(self, make: Make) -> None:
            self.total = [sum(make.parts) + len(make.big)] * 300

    open_store(tmp_path / "store").close()
    stop = tmp_path / "stop"
    loop = subprocess.Popen(
        [sys.executable, "-c", GC_LOOP, str(tmp_path / "store"), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for seed in range(12):
            execution = Cold(store=tmp_path / "store")(seed=seed)
            assert execution[Make].big == [seed] * 500
            totals = [execution.layer(Use, index=i).total[0] for i in range(6)]
            assert totals == [100 * seed + 100 * i + 500 for i in range(6)]
    finally:
        stop.touch()
        out, _ = loop.communicate(timeout=120)
    assert loop.returncode == 0 and int(out) > 0
    with open_store(tmp_path / "store") as store:
        assert store.verify().ok


class CollectorInTheWindow(Store):
    """A store whose first save of a result that references other blobs is preceded by a
    gc --grace 0, as if another process collected right between the two commits."""

    struck = False

    def save_many(self, items: Any) -> list[Record]:
        items = list(items)
        if refs_of(items) and not self.struck:
            self.struck = True
            assert self.gc(grace=0).orphan_blobs  # the artifacts: nothing references them yet
        return super().save_many(items)


def test_a_flow_writes_again_the_artifacts_a_collection_took_before_its_result(
    tmp_path: Path,
) -> None:
    """When gc removes a layer's artifacts between their commit and the layer result's, the
    result is not committed without them: they are written again, and every rerun reads them."""
    opened = open_store(tmp_path)
    store = CollectorInTheWindow(opened.index, opened.blobs, path=opened.path, ledger=opened.ledger)
    Grid, Data, _ = make_flow()
    execution = Grid(store=store)()
    assert store.struck and execution[Data].table == list(range(300))
    with open_store(tmp_path) as check:
        assert check.verify().ok
    calls()
    check_flow(tmp_path)
    assert calls() == []
