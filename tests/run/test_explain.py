"""explain is the run's decide step with a read-only look-up: what it says, the run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from incgraph import ProcessGraph, Processor
from incgraph.core.graph import Node
from incgraph.store import open_store
from incgraph.store.store import Store


class Inc(Processor):
    def process(self, x: int) -> int:
        return x + 1


class Double(Processor):
    def process(self, x: int) -> int:
        return 2 * x


def _chain(store: Store, seed: int, version: int = 1) -> tuple[ProcessGraph, Node, Node]:
    graph = ProcessGraph(store=store)
    c = graph.add_constant_node("c", "c", value=seed)
    first = graph.add_node("first", Inc, {"x": c})
    second = graph.add_node("second", Double, {"x": first}, version=version)
    return graph, first, second


def _statuses(graph: ProcessGraph, *nodes: Node) -> list[str]:
    return [graph.last_run.statuses[n].status for n in nodes]


def test_own_code_changed_downstream_of_a_compute_says_compute(tmp_path: Path) -> None:
    """A node whose code changed says compute, even while its input is still computing."""
    with open_store(tmp_path / "s") as store:
        graph, first, second = _chain(store, 1)
        graph.run_upto(second)
        graph, first, second = _chain(store, 2, version=2)
        plan = graph.explain(second)
        assert [plan[first].action, plan[second].action] == ["compute", "compute"]
        assert plan[second].reason == "code changed: no stored result has them"
        graph.run_upto(second)
        assert _statuses(graph, first, second) == ["computed", "computed"]


def test_code_changed_back_is_only_a_maybe(tmp_path: Path) -> None:
    """Code changed back to a version with stored results may hit: explain says maybe."""
    with open_store(tmp_path / "s") as store:
        for version in (1, 2):
            graph, first, second = _chain(store, 1, version=version)
            graph.run_upto(second)
        graph, first, second = _chain(store, 1, version=1)
        graph.run_upto(first, force=True)  # first recomputes to the same value: second hits
        plan = graph.explain(second, force=[first])
        assert [plan[first].action, plan[second].action] == ["compute", "maybe"]
        assert "computed unless its result comes out unchanged" in plan[second].reason
        graph.run_upto(second, force=[first])
        assert _statuses(graph, first, second) == ["computed", "hit"]


def test_forced_nodes_say_compute_wherever_they_are(tmp_path: Path) -> None:
    """A forced node says compute, also downstream of another forced one, and computes."""
    with open_store(tmp_path / "s") as store:
        graph, first, second = _chain(store, 1)
        graph.run_upto(second)
        plan = graph.explain(second, force=[first, second])
        assert [plan[first].reason, plan[second].reason] == ["forced", "forced"]
        graph.run_upto(second, force=[first, second])
        assert _statuses(graph, first, second) == ["computed", "computed"]


def test_explain_claims_nothing_and_writes_nothing(tmp_path: Path) -> None:
    """explain takes no lease and stores no result: it only looks up."""
    with open_store(tmp_path / "s") as store:
        graph, _, second = _chain(store, 1)
        assert graph.explain(second).summary() == "0 hit(s), 2 to compute, 0 maybe"
        assert store.ledger.lease_states() == {}
        assert store.stats().results == 0


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_wide_graph_explained_then_run(tmp_path: Path, executor: str | None) -> None:
    """A fan-out's members and a node after them: explain's hits and computes are the run's."""
    with open_store(tmp_path / "s") as store:
        for values in ([1, 2, 3, 4] * 10, [1, 2, 30, 4] * 10):
            graph = ProcessGraph(store=store)
            members = graph.add_nodes(Inc, {}, ((f"m{i}", {"x": v}) for i, v in enumerate(values)))
            tail = graph.add_node("tail", Double, {"x": members[2]})
            plan = graph.explain([*members, tail])
            graph.run_upto([*members, tail], executor=executor)
            for node in [*members, tail]:
                want = {"hit": "hit", "compute": "computed"}.get(plan[node].action)
                assert want in (None, graph.last_run.statuses[node].status), plan[node]
