"""The serial walk's bulk path for a fan-out (``Graph.add_nodes``): keys, look-ups, leases."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from incgraph import DEFAULT_SETTINGS, InputTypeError, NodeError, ProcessGraph, Processor
from incgraph.store import Store, open_store
from incgraph.store.leases import Lessee


class Scale(Processor):
    """Multiplies; notes every compute."""

    calls: ClassVar[list[int]] = []

    def process(self, factor: int, x: int) -> int:
        if x == -1:
            raise ValueError("x must not be -1")
        Scale.calls.append(x)
        return factor * x


@pytest.fixture(autouse=True)
def _reset() -> None:
    Scale.calls = []


def fan(store: Any, xs: list[int], factor: int = 10) -> tuple[ProcessGraph, list[Any]]:
    graph = ProcessGraph(store=store)
    f = graph.add_constant_node("factor", "factor", value=factor)
    nodes = graph.add_nodes(Scale, {"factor": f}, ((f"s{i}", {"x": x}) for i, x in enumerate(xs)))
    return graph, nodes


def _record(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[list[str]]:
    """The keys of every ``cls.name(keys)`` call from now on, one list per call."""
    calls: list[list[str]] = []
    real = getattr(cls, name)

    def recording(self: Any, keys: Any, *args: Any, **kw: Any) -> Any:
        keys = list(keys)
        calls.append(keys)
        return real(self, keys, *args, **kw)

    monkeypatch.setattr(cls, name, recording)
    return calls


def test_a_fan_out_is_claimed_once_for_its_first_nodes_and_looked_up_in_bulk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold fan-out of 600 nodes is one wave, decided ``claim_ahead`` (512) nodes at a time:
    the first part's keys are claimed in one transaction, the rest (their processor proved
    cheap) need none; a rerun in a new graph finds all 600 with bulk look-ups, no single ones."""
    claims = _record(monkeypatch, Lessee, "claim_many")
    # "cheap" means under 50 ms here, so a loaded machine cannot make a trivial compute slow
    cheap_under_50ms = DEFAULT_SETTINGS.replace(lease_min_seconds=0.05)
    with open_store(tmp_path / "s", settings=cheap_under_50ms) as store:
        graph, nodes = fan(store, list(range(600)))
        assert graph.run_upto(nodes) == 5990
        assert len(graph.last_run.computed) == 600 and sorted(Scale.calls) == list(range(600))
        assert [len(keys) for keys in claims] == [512]
        single = _record(monkeypatch, Store, "lookup_version")
        bulk = _record(monkeypatch, Store, "lookup_versions")
        Scale.calls = []
        graph, nodes = fan(store, list(range(600)))
        assert [graph.run_upto(n) for n in nodes[:3]] == [0, 10, 20]
        assert [len(keys) for keys in bulk] == [1, 1, 1]  # small runs: no prefetch
        bulk.clear()
        graph.run_upto(nodes)
        assert len(graph.last_run.hits) == 600 and Scale.calls == [] and single == []
        assert bulk == []  # the prefetch of the latest entries answered every key


def test_a_partly_changed_fan_out_recomputes_only_the_changed_nodes(tmp_path: Path) -> None:
    """Members whose own input changed compute; the others are hits; results are right."""
    with open_store(tmp_path / "s") as store:
        graph, nodes = fan(store, [1, 2, 3, 4])
        graph.run_upto(nodes)
        Scale.calls = []
        graph, nodes = fan(store, [1, 20, 3, 40])
        graph.run_upto(nodes)
        report = graph.last_run
        assert [report.statuses[n].status for n in nodes] == ["hit", "computed", "hit", "computed"]
        assert sorted(Scale.calls) == [20, 40]
        assert [report.values[n] for n in nodes] == [10, 200, 30, 400]


def test_a_failing_member_names_itself_and_keeps_the_results_before_it(tmp_path: Path) -> None:
    """The walk stops at a member that raises, naming it; members computed before it are stored
    and are hits on the next run, which computes only the rest."""
    with open_store(tmp_path / "s") as store:
        graph, nodes = fan(store, [1, 2, -1, 4])
        with pytest.raises(NodeError, match=r"node s2 \(Scale\) failed: ValueError"):
            graph.run_upto(nodes)
        assert store.ledger.lease_states() == {}
        Scale.calls = []
        graph, nodes = fan(store, [1, 2, 3, 4])
        graph.run_upto(nodes)
        assert sorted(Scale.calls) == [3, 4]


def test_a_member_another_claimant_holds_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member whose key another claimant holds is waited for and then taken as a hit; the
    walk commits what it computed before it waits."""
    with open_store(tmp_path / "s") as store:
        graph, nodes = fan(store, [1, 2, 3])
        key = graph.explain(nodes[1])[nodes[1]].key
        other = store.lessee()
        assert other.claim_many([key]).mine == [key]
        waiting = threading.Event()
        real_wait = Lessee.wait

        def wait(self: Lessee, keys: Any, *args: Any, **kw: Any) -> Any:
            waiting.set()
            return real_wait(self, keys, *args, **kw)

        monkeypatch.setattr(Lessee, "wait", wait)
        result: list[Any] = []
        runner = threading.Thread(target=lambda: result.append(graph.run_upto(nodes)))
        runner.start()
        assert waiting.wait(timeout=30)
        from incgraph.run.keys import make_record

        factor_dv = graph.nodes["factor"].data_version_of_constant()
        inputs = {"factor": factor_dv, **nodes[1].fixed_input_versions()}
        store.save(make_record(nodes[1], key, inputs, "cd" * 16, 0.1), 20)
        other.release([key])
        runner.join(timeout=30)
        assert result == [30] and sorted(Scale.calls) == [1, 3]
        assert graph.last_run.statuses[nodes[1]].status == "hit"


def test_force_and_run_only_take_the_node_by_node_path(tmp_path: Path) -> None:
    """``force`` recomputes fan-out members; ``run_only`` needs them stored, as for any node."""
    from incgraph import NotCachedError

    with open_store(tmp_path / "s") as store:
        graph, nodes = fan(store, [1, 2])
        product = graph.add_node("product", Scale, {"factor": nodes[0], "x": nodes[1]})
        with pytest.raises(NotCachedError, match="s0"):
            graph.run_only(product)
        assert graph.run_upto(product) == 200
        Scale.calls = []
        assert graph.run_only(product) == 200 and Scale.calls == []
        graph.run_upto(nodes[0], force=True)
        assert Scale.calls == [1]


class Heavy(Processor):
    """Counts constructions, setups and releases."""

    made: ClassVar[list[str]] = []

    def __init__(self, size: int) -> None:
        self.size = size
        Heavy.made.append("init")

    def setup(self) -> None:
        Heavy.made.append("setup")

    def release(self) -> None:
        Heavy.made.append("release")

    def process(self, x: int) -> int:
        return x * self.size


def test_a_fan_out_constructs_its_processor_once_and_releases_it_once() -> None:
    """The members of a fan-out share one instance: one __init__ and setup() for all of them,
    one release() when the graph releases resources, and a new instance after that."""
    Heavy.made = []
    graph = ProcessGraph(store=":memory:")
    nodes = graph.add_nodes(
        Heavy, {}, ((f"h{i}", {"x": i}) for i in range(50)), node_init_kwargs={"size": 3}
    )
    assert graph.run_upto(nodes) == 147
    assert Heavy.made == ["init", "setup"]
    assert all(n.initialized for n in nodes) and nodes[0].instance() is nodes[49].instance()
    graph.release_resources()
    assert Heavy.made == ["init", "setup", "release"] and not nodes[7].initialized
    graph.run_upto(nodes[7], force=True)
    assert Heavy.made == ["init", "setup", "release", "init", "setup"]


class Fragile(Processor):
    """Fails to construct when asked to; checks its input's type; may return a coroutine."""

    def __init__(self, broken: bool = False) -> None:
        if broken:
            raise RuntimeError("no model file")

    def process(self, x: int, y: int = 0) -> Any:
        if x == 99:

            async def later() -> int:
                return 990

            return later()
        return x * 10 + y


class Loose(Processor):
    """Unannotated: what it returns is checked where it is read."""

    def process(self):  # type: ignore[no-untyped-def]
        return "one"


def test_fanout_computer_shares_one_instance_and_names_the_member_in_errors() -> None:
    """fanout_computer computes each member as compute_in_process would (a coroutine awaited),
    with one instance for all, and a bad input or a failure names the member it happened in."""
    from incgraph.run.jobs import fanout_computer

    graph = ProcessGraph(store=":memory:")
    loose = graph.add_node("loose", Loose, {})
    nodes = graph.add_nodes(Fragile, {"y": loose}, ((f"f{i}", {"x": i}) for i in range(3)))
    compute = fanout_computer(nodes[0])
    got = [compute(n, {"x": x, "y": 1}, None).value for n, x in zip(nodes, [1, 2, 99], strict=True)]
    assert got == [11, 21, 990]
    assert nodes[2].instance() is nodes[0].instance()
    with pytest.raises(InputTypeError, match=r"node f1 \(Fragile\): input 'y' expects int"):
        compute(nodes[1], {"x": 1, "y": "one"}, None)
    broken = graph.add_nodes(
        Fragile, {}, ((f"b{i}", {"x": i}) for i in range(2)), node_init_kwargs={"broken": True}
    )
    with pytest.raises(NodeError, match=r"node b1 \(Fragile\): constructing the processor"):
        fanout_computer(broken[0])(broken[1], {"x": 1}, None)
