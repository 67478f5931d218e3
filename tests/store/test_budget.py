"""The store's byte budget, enforced after every run that writes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import incgraph.queues as iq
from incgraph import (
    DEFAULT_SETTINGS,
    ConfigurationError,
    NotCachedError,
    ProcessGraph,
    Processor,
    memoize,
    open_store,
)
from incgraph.flow import Flow, Layer
from incgraph.store import Record, Store
from incgraph.store.budget import stored_bytes

HOUR = 3600.0


class Zeros(Processor):
    def process(self, n: int) -> np.ndarray:
        return np.zeros(n)


def _old_results(store: Store, count: int, nbytes: int) -> list[str]:
    """``count`` results of ``nbytes`` each, created two hours ago, oldest first."""
    keys = []
    start = time.time() - 2 * HOUR
    for i in range(count):
        key = f"{i:032x}"
        store.save(Record(key, f"{i + 1000:032x}", f"old{i}", "m.P", "c", "i", {}, start + i),
                   b"x" * nbytes)  # fmt: skip
        keys.append(key)
    return keys


def test_run_that_writes_enforces_the_budget_least_recently_used_first(tmp_path: Path) -> None:
    """After a run over budget, the oldest unused results go and the run's report says so."""
    store = open_store(tmp_path / "s", max_bytes=60_000)
    keys = _old_results(store, 5, 20_000)
    g = ProcessGraph(store=store)
    n = g.add_node(1, Zeros, {"n": 1000})  # 8 KB, new
    g.run_upto(n)
    report = g.last_run.budget
    assert report is not None and not report.over_budget
    assert [r.key for r in report.removed] == keys[:3]  # oldest first, until it fits
    assert report.kept_bytes <= 60_000
    assert g.run_upto(n).shape == (1000,) and g.last_run.budget is None  # a hit writes nothing


def test_pinned_and_recent_results_are_never_dropped(tmp_path: Path) -> None:
    """A pinned result and one younger than the grace period stay, even over budget."""
    store = open_store(tmp_path / "s")
    keys = _old_results(store, 3, 20_000)
    store.pin(keys[0])
    g = ProcessGraph(store=store, max_bytes=10_000)
    n = g.add_node(1, Zeros, {"n": 1000})
    g.run_upto(n)
    report = g.last_run.budget
    assert report is not None and report.over_budget
    assert sorted(r.key for r in report.removed) == keys[1:]
    assert store.lookup_version(keys[0]) == f"{1000:032x}"
    assert g.explain(n)[n].action == "hit"


def test_environment_sets_the_budget_and_a_bad_value_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$INCGRAPH_MAX_BYTES is every opened store's budget; a value that is no size raises."""
    monkeypatch.setenv("INCGRAPH_MAX_BYTES", "1.5GiB")
    assert open_store(tmp_path / "a").max_bytes == int(1.5 * 1024**3)
    assert open_store(tmp_path / "b", max_bytes=5).max_bytes == 5
    monkeypatch.setenv("INCGRAPH_MAX_BYTES", "lots")
    with pytest.raises(ConfigurationError, match=r"INCGRAPH_MAX_BYTES.*'lots'"):
        open_store(tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_memoized_function_log_enforces_the_budget(tmp_path: Path) -> None:
    """A memoized function's run log, written at close, brings the store under budget."""
    store = open_store(tmp_path / "s", max_bytes=30_000)
    keys = _old_results(store, 3, 20_000)

    @memoize(store=store)
    def ones(n: int) -> np.ndarray:
        return np.ones(n)

    ones(100)
    ones.close()
    assert [store.lookup_version(k) for k in keys].count(f"{1002:032x}") == 1
    assert ones.check_call_in_cache(100)


def test_negative_budget_is_refused(tmp_path: Path) -> None:
    """max_bytes below zero raises at once."""
    with pytest.raises(ValueError, match="max_bytes"):
        ProcessGraph(store=tmp_path / "s", max_bytes=-1)


def test_batch_enforces_the_budget_and_reports_it(tmp_path: Path) -> None:
    """process_batch ends under budget and its stats say what the budget removed."""
    store = open_store(tmp_path / "s", max_bytes=30_000)
    keys = _old_results(store, 3, 20_000)
    g = ProcessGraph(store=store)
    n = g.add_constant_node("n", "n")
    z = g.add_node("z", Zeros, {"n": n})
    stats = g.process_batch([10, 20], [z], progress=False)
    assert stats.budget is not None
    assert [r.key for r in stats.budget.removed] == keys[:2]


def test_under_budget_collects_nothing(tmp_path: Path) -> None:
    """A run that wrote but stays under budget removes nothing and reports no collection."""
    store = open_store(tmp_path / "s", max_bytes=10**9)
    _old_results(store, 3, 20_000)
    g = ProcessGraph(store=store)
    n = g.add_node(1, Zeros, {"n": 1000})
    g.run_upto(n)
    assert g.last_run.budget is None and len(list(store.index.records())) == 4


class Seeded(Layer):
    """A layer whose one artifact is a 400 KB array filled with the flow's ``seed``."""

    def __call__(self) -> None:
        self.big = np.full(50_000, float(self.params.seed))


NO_GRACE = DEFAULT_SETTINGS.replace(gc_grace_seconds=0)
"""Results count as old at once (as they would ten minutes later)."""


def test_flow_run_enforces_the_budget_counting_its_artifacts(
    tmp_path: Path,
) -> None:
    """A flow run brings the store under budget, counting the artifacts its manifests
    reference; the artifacts of what is kept still load, what went is recomputed right."""

    class Seeds(Flow): ...

    Seeds.register(Seeded)
    store = open_store(tmp_path / "s", max_bytes=500_000, settings=NO_GRACE)
    flow = Seeds(store=store)
    assert flow(seed=1).budget is None  # under budget
    for seed in (2, 3):
        execution = flow(seed=seed)
        assert execution.budget is not None and execution.budget.removed
        assert stored_bytes(store) <= 500_000
    again = flow(seed=3)
    assert again.computed == [] and again[Seeded].big[0] == 3.0
    first = flow(seed=1)
    assert first.computed == ["Seeded"] and first[Seeded].big[0] == 1.0
    assert stored_bytes(store) <= 500_000


def test_pipeline_run_enforces_the_budget(tmp_path: Path) -> None:
    """A queue pipeline's run brings the store under budget and its report says what went."""
    store = open_store(tmp_path / "s", max_bytes=500_000, settings=NO_GRACE)

    def filled(seed: int) -> np.ndarray:
        return np.full(50_000, float(seed))

    reports = []
    for seed in (1, 2, 1):
        pipeline = iq.Pipeline(store=store)
        out = pipeline.map(filled, iq.Queue([seed]))
        reports.append(pipeline.run())
        assert [a[0] for a in out] == [float(seed)] and stored_bytes(store) <= 500_000
    assert reports[0].budget is None
    assert reports[1].budget is not None and len(reports[1].budget.removed) == 1
    assert reports[2].computed == 1  # seed 1 went to make room for seed 2


def test_past_flow_execution_whose_layer_the_budget_removed_says_so(
    tmp_path: Path,
) -> None:
    """Reading a past execution's layer the budget removed raises NotCachedError naming the
    execution, the layer and the fix, not a bare KeyError."""

    class Seeds(Flow): ...

    Seeds.register(Seeded)
    flow = Seeds(store=open_store(tmp_path / "s", max_bytes=500_000, settings=NO_GRACE))
    first = flow(seed=1)
    assert flow(seed=2).budget is not None
    with pytest.raises(NotCachedError, match=rf"execution {first.id} of Seeds.*layer Seeded"):
        flow.execution(first.id)[Seeded]


def test_a_run_larger_than_the_budget_keeps_what_it_wrote_until_the_next_run(
    tmp_path: Path,
) -> None:
    """The budget never removes what the run enforcing it wrote (it says it is over budget),
    so the run's execution still reads its artifacts; the next run's budget removes them."""

    class Seeds(Flow): ...

    Seeds.register(Seeded)
    flow = Seeds(store=open_store(tmp_path / "s", max_bytes=100_000, settings=NO_GRACE))
    first = flow(seed=1)
    assert first.budget is not None and first.budget.over_budget and not first.budget.removed
    assert first[Seeded].big[0] == 1.0
    second = flow(seed=2)
    assert second.budget is not None and second[Seeded].big[0] == 2.0
    assert "Seeds/Seeded" in {r.node for r in second.budget.removed}
    assert flow(seed=1).computed == ["Seeded"]
