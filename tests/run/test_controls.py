"""ProcessGraph.invalidate and ProcessGraph.accept on real SQLite stores."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from incgraph import (
    DEFAULT_SETTINGS,
    GraphDefinitionError,
    NotCachedError,
    ProcessGraph,
    Processor,
    open_store,
)
from incgraph.store import Record

COUNTS: dict[str, int] = {}


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


class Load(Processor):
    def process(self, n: int) -> np.ndarray:
        _count("load")
        return np.arange(n, dtype=float)


class Mean(Processor):
    def process(self, a: np.ndarray) -> float:
        _count("mean")
        return float(a.mean())


class Label(Processor):
    def process(self, m: float) -> str:
        _count("label")
        return f"mean={m}"


def _chain(store: object, n: int = 10) -> tuple[ProcessGraph, list]:
    g = ProcessGraph(store=store)
    c = g.add_constant_node("n", "n", value=n)
    load = g.add_node("load", Load, {"n": c})
    mean = g.add_node("mean", Mean, {"a": load})
    label = g.add_node("label", Label, {"m": mean})
    return g, [load, mean, label]


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    COUNTS.clear()


def test_invalidate_node_with_downstream_recomputes_it_and_what_reads_it(tmp_path: Path) -> None:
    """invalidate(node) removes its results and its readers'; the next run computes those only."""
    g, (_load, mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    report = g.invalidate(mean)
    assert sorted(r.node for r in report.removed) == ["label", "mean"] and report.downstream == 1
    COUNTS.clear()
    assert g.run_upto(label) == "mean=4.5"
    assert COUNTS == {"mean": 1, "label": 1}


def test_invalidate_without_downstream_keeps_readers_as_hits(tmp_path: Path) -> None:
    """With downstream=False only the node recomputes; an equal result keeps its readers hits."""
    g, (_load, mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    assert [r.node for r in g.invalidate(mean, downstream=False).removed] == ["mean"]
    COUNTS.clear()
    g.run_upto(label)
    assert COUNTS == {"mean": 1}


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    """invalidate(..., dry_run=True) reports and leaves every result in use."""
    g, (load, _mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    assert len(g.invalidate(load, dry_run=True).removed) == 3
    COUNTS.clear()
    g.run_upto(label)
    assert COUNTS == {}


def test_invalidate_by_processor_and_by_key(tmp_path: Path) -> None:
    """A key takes out one result and what was computed from it; a processor all its results."""
    g, (load, _mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    g.nodes["n"].set_value(20)
    g.run_upto(label)
    key = g.last_run.statuses[load].key
    assert key is not None
    report = g.invalidate(key[:10])
    assert sorted(r.node for r in report.removed) == ["label", "load", "mean"]
    assert report.downstream == 2
    report = g.invalidate(Mean, downstream=False)
    assert [r.processor.rsplit(".", 1)[1] for r in report.removed] == ["Mean"]
    COUNTS.clear()
    g.nodes["n"].set_value(10)
    g.run_upto(label)
    assert COUNTS == {"mean": 1}


def test_invalidate_keeps_bytes_other_results_share(tmp_path: Path) -> None:
    """Two nodes with equal large results share a blob: invalidating one leaves the other loadable."""
    store = open_store(tmp_path / "s")
    g = ProcessGraph(store=store)
    a = g.add_node("a", Load, {"n": 100_000})
    b = g.add_node("b", Load, {"n": 100_000}, version="other")
    g.run_upto([a, b])
    g.invalidate(a)
    g2 = ProcessGraph(store=store)
    b2 = g2.add_node("b", Load, {"n": 100_000}, version="other")
    assert g2.run_upto(b2).shape == (100_000,) and g2.last_run.hits == [b2]
    assert store.gc(grace=0).blobs_removed == []  # still referenced by b's row


def test_invalidate_unpins(tmp_path: Path) -> None:
    """An invalidated pinned result is unpinned (its row is gone)."""
    g, (_load, _mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    key = g.last_run.statuses[label].key
    assert key is not None
    g.store.pin(key)
    assert g.invalidate(label).unpinned == [key] and g.store.pins() == []


def test_invalidate_rejects_foreign_nodes_and_constants(tmp_path: Path) -> None:
    """A node of another graph or a constant node is refused with a message naming it."""
    g, (_load, _mean, _label) = _chain(tmp_path / "s")
    _other, (o_load, _, _) = _chain(tmp_path / "s")
    with pytest.raises(GraphDefinitionError, match="not a node of this graph"):
        g.invalidate(o_load)
    with pytest.raises(GraphDefinitionError, match="constant node"):
        g.invalidate(g.nodes["n"])


def _refactored_mean() -> type[Processor]:
    class Mean(Processor):  # same name and results, new code
        def process(self, a: np.ndarray) -> float:
            _count("mean")
            total = float(a.sum())
            return total / len(a)

    Mean.__qualname__ = "Mean"
    Mean.__module__ = __name__
    return Mean


def test_accept_makes_previous_results_hits_and_downstream_follows(tmp_path: Path) -> None:
    """After accept(node), a run with the refactored code computes nothing; it is recorded."""
    g, (_load, _mean, label) = _chain(tmp_path / "s")
    g.run_upto(label)
    g.nodes["n"].set_value(20)
    g.run_upto(label)
    g2 = ProcessGraph(store=tmp_path / "s")
    c = g2.add_constant_node("n", "n", value=10)
    load2 = g2.add_node("load", Load, {"n": c})
    mean2 = g2.add_node("mean", _refactored_mean(), {"a": load2})
    label2 = g2.add_node("label", Label, {"m": mean2})
    assert g2.explain(label2)[mean2].action == "compute"
    (report,) = g2.accept(mean2)
    assert len(report.accepted) == 2 and report.previous != report.current
    COUNTS.clear()
    assert g2.run_upto(label2) == "mean=4.5"
    c.set_value(20)
    g2.run_upto(label2)
    assert COUNTS == {}
    assert g2.accept(mean2)[0].accepted == []  # accepting again changes nothing


def test_accept_refuses_when_there_is_nothing_to_accept(tmp_path: Path) -> None:
    """accept on a node that never ran, or ran only with its current code, raises NotCachedError."""
    g, (_load, mean, label) = _chain(tmp_path / "s")
    with pytest.raises(NotCachedError, match=r"nothing to accept for node mean \(Mean\)"):
        g.accept(mean)
    g.run_upto(label)
    with pytest.raises(NotCachedError, match="only of its current code"):
        g.accept(Mean)
    with pytest.raises(GraphDefinitionError, match="not a key"):
        g.accept("abc")


def test_accept_takes_only_the_most_recent_earlier_code(tmp_path: Path) -> None:
    """Results of code older than the previous one are not accepted: nobody vouched for them."""
    store = open_store(tmp_path / "s")
    g = ProcessGraph(store=store)
    n = g.add_node("x", Load, {"n": 3})
    g.run_upto(n)  # code v1, n=3
    g_old = ProcessGraph(store=store)
    old_n = g_old.add_node("x", Load, {"n": 4}, version=2)
    g_old.run_upto(old_n)  # code v2, n=4 (most recent)
    g3 = ProcessGraph(store=store)
    n3a = g3.add_node("x", Load, {"n": 3}, version=3)
    (report,) = g3.accept(n3a)
    assert len(report.accepted) == 1
    g4 = ProcessGraph(store=store)
    a = g4.add_node("x", Load, {"n": 3}, version=3)
    b = g4.add_node("y", Load, {"n": 4}, version=3)
    assert g4.explain([a, b])[a].action == "compute"  # v1's result was not accepted
    assert g4.explain(a)[a].action == "compute"


def test_accepted_rows_survive_gc_run_log_trimming(tmp_path: Path) -> None:
    """The acceptance row of the run log is kept by gc, so show/lineage can still say it."""
    from incgraph.store.acceptance import acceptances

    store = open_store(tmp_path / "s", settings=DEFAULT_SETTINGS.replace(run_log_limit=3))
    store.save(Record("a" * 32, "b" * 32, "x", "m.P", "c" * 32, "i" * 32, {}, time.time()), 1)
    from incgraph.store.acceptance import accept

    accept(store, "x", "m.P", "d" * 32)
    for _ in range(store.settings.run_log_limit + 1):
        store.run_log("run", "filler").close()
    store.gc()
    assert len(acceptances(store)) == 1


class Twice(Processor):
    def process(self, x: int) -> int:
        return 2 * x


class Plus(Processor):
    def process(self, x: int) -> int:
        return x + 1


def test_key_downstream_follows_graph_edges_not_equal_values(tmp_path: Path) -> None:
    """A key's downstream is its readers in the graph, not results given an equal input."""
    g = ProcessGraph(store=tmp_path / "s")
    one = g.add_node("one", Twice, {"x": 1})  # returns 2
    reader = g.add_node("reader", Twice, {"x": one})  # reads 2 from `one`
    bystander = g.add_node("bystander", Plus, {"x": 2})  # a constant 2, equal by content
    g.run_upto([reader, bystander])
    key = g.last_run.statuses[one].key
    assert key is not None
    report = g.invalidate(key)
    assert sorted(r.node for r in report.removed) == ["one", "reader"]
    assert g.explain(bystander)[bystander].action == "hit"


def test_an_acceptance_is_not_a_run_for_keep_runs(tmp_path: Path) -> None:
    """gc --keep-runs 1 after an accept keeps what the last real run used, not just the accepted."""
    store = open_store(tmp_path / "s")
    g = ProcessGraph(store=store)
    a = g.add_node("a", Load, {"n": 3})
    other = g.add_node("other", Load, {"n": 4}, version="x")
    g.run_upto([a, other])
    g2 = ProcessGraph(store=store)
    a2 = g2.add_node("a", Load, {"n": 3}, version="refactored")
    g2.accept(a2)
    report = store.gc(keep_runs=1, grace=0)
    assert report.removed == []
