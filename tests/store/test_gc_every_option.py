"""gc with every option after every front-end, then verify, then rerun each front-end.

One store holds the results of a graph (``run_upto``), a ``process_batch``, a Flow
with a ForEach, a queue ``Pipeline`` and ``memoize``d calls, each one run (one row
of the run log) in that order. Then ``gc`` runs with an option set (through
``Store.gc`` or the ``incgraph gc`` command) and ``verify`` finds nothing wrong.
What gc's documented policy keeps is predicted from the run log; each front-end is
rerun: all hits (nothing computed) when none of its results was removed, and the
right values (never a KeyError) when some were. A third run is all hits everywhere.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph import ProcessGraph, Processor, memoize
from incgraph.cli import main
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.store import GcReport, RunInfo, Store, open_store

CALL_LOG = os.path.join(tempfile.gettempdir(), f"incgraph-gc-every-option-{os.getpid()}.log")
"""Where computations note their front-end (a constant path: a list would be state)."""

FRONT_ENDS = ("graph", "batch", "flow", "pipeline", "memoize")


def note(front_end: str) -> None:
    with open(CALL_LOG, "a") as handle:
        handle.write(front_end + "\n")


def computed() -> set[str]:
    """The front-ends that computed something since the last call."""
    try:
        with open(CALL_LOG) as handle:
            found = set(handle.read().split())
    except FileNotFoundError:
        return set()
    os.unlink(CALL_LOG)
    return found


class Triple(Processor):
    def process(self, x: int) -> list[int]:
        note("graph")
        return [x] * 150


class Square(Processor):
    def process(self, item: int) -> dict[str, int]:
        note("batch")
        return {"item": item, "square": item * item}


def run_graph(store: Path) -> None:
    """A constant and one node that keeps its result as a blob."""
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node("x", "x", value=7)
    triple = graph.add_node("triple", Triple, {"x": x})
    assert graph.run_upto(triple) == [7] * 150
    graph.close()


def run_batch(store: Path) -> None:
    """A batch of three items over one node."""
    graph = ProcessGraph(store=store)
    item = graph.add_constant_node("item", "item")
    square = graph.add_node("square", Square, {"item": item})
    stats = graph.process_batch([2, 3, 4], [square], lambda i, it: item.set_value(it))
    assert stats.failures == [] and stats.completed == [0, 1, 2]
    graph.close()


class Grid(Flow): ...


@Grid.register
class Data(Layer):
    def __call__(self) -> None:
        note("flow")
        self.table = list(range(400))
        self.shard(rows=[[i] * 50 for i in range(3)])


@Grid.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="rows")]))
class Fit(Layer):
    def __call__(self, data: Data) -> None:
        note("flow")
        self.model = [x + 1 for x in data.rows] + data.table[:2]
        self.score = sum(data.rows)


def run_flow(store: Path) -> None:
    """A flow whose ForEach forks three tasks; every artifact is read back."""
    execution = Grid(store=store)()
    assert execution[Data].table == list(range(400))
    assert list(execution[Fit].score) == [50 * i for i in range(3)]
    assert [execution.layer(Fit, index=i).model[-2:] for i in range(3)] == [[0, 1]] * 3


def halve(x: int) -> float:
    note("pipeline")
    return x / 2


def run_pipeline(store: Path) -> None:
    """A one-task pipeline over four items."""
    pipeline = iq.Pipeline(store=store)
    out = pipeline.chain([iq.Task(halve)], iq.Queue([10, 20, 30, 40]))
    report = pipeline.run()
    assert report.failures == [] and list(out) == [5.0, 10.0, 15.0, 20.0]


def cube(x: int) -> list[int]:
    note("memoize")
    return [x**3] * 100


def run_memoize(store: Path) -> None:
    """Three calls of a memoized function; its run log is written at the end."""
    cached = memoize(store=store)(cube)
    assert [cached(x)[0] for x in (1, 2, 3)] == [1, 8, 27]
    cached.close()


RUNS: dict[str, Callable[[Path], None]] = {
    "graph": run_graph,
    "batch": run_batch,
    "flow": run_flow,
    "pipeline": run_pipeline,
    "memoize": run_memoize,
}


@dataclass
class Case:
    """One gc: its options, and which front-ends gc's documented policy keeps whole."""

    options: dict[str, Any]
    kept: Callable[[dict[str, list[RunInfo]]], set[str]] | None = None
    """From each front-end's runs: those kept whole (None: depends on sizes; not predicted)."""
    cli: bool = False
    pin: str | None = None
    """Pin the results of this front-end (through ``pins=`` / ``--pin``) as well."""
    name: str = field(default="")


def everything(runs: dict[str, list[RunInfo]]) -> set[str]:
    return set(FRONT_ENDS)


def nothing(runs: dict[str, list[RunInfo]]) -> set[str]:
    return set()


def only(*names: str) -> Callable[[dict[str, list[RunInfo]]], set[str]]:
    """Just these front-ends (the pinned ones) are kept."""
    return lambda runs: set(names)


def last(n: int, *, plus: tuple[str, ...] = ()) -> Callable[[dict[str, list[RunInfo]]], set[str]]:
    """What ``keep_runs=n`` keeps: the front-ends whose runs all started at or after the
    oldest of the last ``n`` runs (rules 2 and 3), and ``plus`` (pinned)."""

    def kept(runs: dict[str, list[RunInfo]]) -> set[str]:
        every = sorted((run for mine in runs.values() for run in mine), key=_order)
        if n <= 0:
            return set(plus)
        oldest = _order(every[-n:][0])
        recent = {name for name, mine in runs.items() if min(map(_order, mine)) >= oldest}
        return recent | set(plus)

    return kept


def _order(run: RunInfo) -> tuple[float, int]:
    return (run.started, run.id)


CASES = [
    Case({}, everything, name="defaults"),
    Case({"grace": 0}, everything, name="grace-0"),
    Case({"keep_runs": 0}, everything, name="keep-0-in-grace"),
    Case({"keep_runs": 0, "grace": 0}, nothing, name="keep-0"),
    Case({"keep_runs": 2, "grace": 0}, last(2), name="keep-2"),
    Case({"keep_runs": 4, "grace": 0}, last(4), name="keep-4"),
    Case({"keep_runs": 99, "grace": 0}, everything, name="keep-more-than-logged"),
    Case({"keep_runs": 0, "grace": 0}, last(0, plus=("graph",)), pin="graph", name="keep-0-pin"),
    Case({"keep_runs": 1, "grace": 0, "dry_run": True}, everything, name="dry-run"),
    Case({"max_bytes": 0, "grace": 0}, nothing, name="budget-0"),
    Case({"max_bytes": 0}, everything, name="budget-0-in-grace"),
    Case({"max_bytes": 10**9, "grace": 0}, everything, name="budget-ample"),
    Case({"max_bytes": 6_000, "grace": 0}, None, name="budget-tight"),
    Case({"max_bytes": 0, "grace": 0}, only("flow"), pin="flow", name="budget-0-pin"),
    Case({"keep_runs": 3, "max_bytes": 4_000, "grace": 0}, None, name="keep-3-and-budget"),
    Case({"keep_runs": 2, "grace": 0}, last(2), cli=True, name="cli-keep-2"),
    Case({"keep_runs": 0, "grace": 0, "dry_run": True}, everything, cli=True, name="cli-dry"),
    Case({"max_bytes": 0, "grace": 0}, only("batch"), cli=True, pin="batch", name="cli-pin"),
    Case({"keep_runs": 1, "max_bytes": 5_000, "grace": 0}, None, cli=True, name="cli-mixed"),
]


def _runs_of_each(store: Path) -> dict[str, list[RunInfo]]:
    """Run every front-end once on a fresh store; its runs in the run log, by front-end."""
    runs: dict[str, list[RunInfo]] = {}
    seen: set[int] = set()
    for name, run in RUNS.items():
        run(store)
        with open_store(store) as opened:
            runs[name] = [r for r in opened.runs() if r.id not in seen]
        seen |= {r.id for r in runs[name]}
        assert runs[name], f"{name} logged no run"
    assert computed() == set(FRONT_ENDS)
    return runs


def _keys_of(store: Store, runs: dict[str, list[RunInfo]]) -> dict[str, set[str]]:
    """Each front-end's keys: those its runs hit or wrote."""
    ids = {run.id: name for name, mine in runs.items() for run in mine}
    keys: dict[str, set[str]] = {name: set() for name in runs}
    for run_id, (hits, written) in store.ledger.run_keys(list(ids)).items():
        keys[ids[run_id]] |= set(hits) | set(written)
    return keys


def _gc(store_path: Path, case: Case, pins: list[str]) -> set[str]:
    """Run the case's gc; return the keys it removed (none for a dry run)."""
    if not case.cli:
        with open_store(store_path) as store:
            report: GcReport = store.gc(pins=pins, **case.options)
            assert report.dry_run == case.options.get("dry_run", False)
            return set() if report.dry_run else {rec.key for rec in report.removed}
    with open_store(store_path) as store:
        before = {rec.key for rec in store.index.records()}
    argv = ["gc", "--store", str(store_path), "--grace", str(case.options["grace"])]
    if "keep_runs" in case.options:
        argv += ["--keep-runs", str(case.options["keep_runs"])]
    if "max_bytes" in case.options:
        argv += ["--max-bytes", str(case.options["max_bytes"])]
    if case.options.get("dry_run"):
        argv.append("--dry-run")
    for key in pins:
        argv += ["--pin", key]
    assert main(argv) == 0
    with open_store(store_path) as store:
        return before - {rec.key for rec in store.index.records()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_gc_with_each_option_then_every_front_end_reruns_right(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After gc with these options and a clean verify, a front-end none of whose results gc
    removed reruns as all hits; the others recompute the right values; then all are hits."""
    monkeypatch.delenv("INCGRAPH_MAX_BYTES", raising=False)
    computed()
    runs = _runs_of_each(tmp_path)
    with open_store(tmp_path) as store:
        keys = _keys_of(store, runs)
    pins = sorted(keys[case.pin]) if case.pin else []
    removed = _gc(tmp_path, case, pins)
    with open_store(tmp_path) as store:
        assert store.verify().ok
    touched = {name for name, mine in keys.items() if mine & removed}
    if case.kept is not None:
        assert set(FRONT_ENDS) - touched == case.kept(runs)
    for name, run in RUNS.items():
        run(tmp_path)  # asserts the values
        assert computed() <= ({name} if name in touched else set()), name
    for run in RUNS.values():
        run(tmp_path)
    assert computed() == set()
    with open_store(tmp_path) as store:
        assert store.verify().ok
