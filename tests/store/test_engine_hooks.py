"""The engine's use of the store: run log rows, exactly-once leases, read-only stores."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from incgraph.core.processor import Processor
from incgraph.errors import NodeError, ReadOnlyStoreError
from incgraph.graph import ProcessGraph
from incgraph.store import Store, memory_store, open_store
from incgraph.store.leases import Lessee


class Work(Processor):
    """Adds one, and notes every call (the per-compute marker)."""

    calls: ClassVar[list[int]] = []
    gate: ClassVar[threading.Event | None] = None

    def process(self, x: int) -> int:
        if Work.gate is not None:
            Work.gate.wait(timeout=30)
        Work.calls.append(x)
        return x + 1


class Fails(Processor):
    def process(self, x: int) -> int:
        raise ValueError("no")


@pytest.fixture(autouse=True)
def _reset() -> Any:
    Work.calls = []
    Work.gate = None
    yield
    Work.gate = None


def chain(store: Any, length: int = 3, executor: str | None = None) -> tuple[ProcessGraph, list]:
    """A graph: constant 0 -> Work -> Work -> ... (``length`` Work nodes)."""
    graph = ProcessGraph(store=store, executor=executor)
    nodes = [graph.add_constant_node(0, "x", value=0)]
    for i in range(1, length + 1):
        nodes.append(graph.add_node(i, Work, {"x": nodes[-1]}))
    return graph, nodes


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    made = memory_store() if request.param == "memory" else open_store(tmp_path / "s")
    yield made
    made.close()


# -- run log ---------------------------------------------------------------------------------


def test_each_engine_run_logs_its_hits_and_writes(store: Store) -> None:
    """A cold run logs its computed keys, a rerun its hits: one run-log row each."""
    graph, nodes = chain(store)
    graph.run_upto(nodes[-1])
    graph.run_upto(nodes[-1])
    cold, warm = store.runs()
    keys = [graph.last_run.statuses[n].key for n in nodes[1:]]
    assert (cold.kind, cold.label, cold.status) == ("run", "3", "ok")
    assert (cold.computed, cold.hits, warm.computed, warm.hits) == (3, 0, 0, 3)
    assert store.ledger.run_keys([cold.id])[cold.id] == ([], keys)
    assert store.ledger.run_keys([warm.id])[warm.id] == (keys, [])


def test_a_failed_run_is_logged_and_holds_no_lease(store: Store) -> None:
    """A run whose node raises is logged as failed and leaves no lease behind."""
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node(0, "x", value=1)
    ok = graph.add_node(1, Work, {"x": x})
    bad = graph.add_node(2, Fails, {"x": ok})
    with pytest.raises(NodeError):
        graph.run_upto(bad)
    (run,) = store.runs()
    assert (run.status, run.computed) == ("failed", 1)
    assert store.ledger.lease_states() == {}


def test_gc_after_runs_keeps_the_latest_results(store: Store) -> None:
    """After runs with two inputs, gc keeping one run drops only the other input's results."""
    graph, nodes = chain(store)
    graph.run_upto(nodes[-1])
    nodes[0].set_value(10)
    graph.run_upto(nodes[-1])
    report = store.gc(keep_runs=1, grace=0)
    assert len(report.removed) == 3
    Work.calls = []
    assert graph.run_upto(nodes[-1]) == 13 and Work.calls == []


# -- leases ---------------------------------------------------------------------------------


def hold(store: Store, graph: ProcessGraph, node: Any) -> tuple[Lessee, str]:
    """Claim ``node``'s key as another claimant would; return the lessee and the key."""
    key = graph.explain(node)[node].key
    lessee = store.lessee()
    assert lessee.claim_many([key]).mine == [key]
    return lessee, key


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_key_another_claimant_holds_is_waited_for(
    store: Store, executor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another claimant computes a node, a run waits and then takes its result as a hit."""
    graph, nodes = chain(store, 1, executor=executor)
    other, key = hold(store, graph, nodes[1])
    polled = threading.Event()
    real_poll = Lessee.poll

    def poll(self: Lessee, keys: Any) -> Any:
        polled.set()
        return real_poll(self, keys)

    monkeypatch.setattr(Lessee, "poll", poll)
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(graph.run_upto(nodes[1])))
    runner.start()
    assert polled.wait(timeout=30)  # the run is waiting for the other claimant
    from incgraph.run.keys import make_record

    record = make_record(nodes[1], key, {"x": nodes[0].data_version_of_constant()}, "ab" * 16, 0.1)
    store.save(record, 1)
    other.release([key])
    runner.join(timeout=30)
    assert result == [1] and Work.calls == []
    assert [n.label for n in graph.last_run.hits] == ["1"]
    graph.close()


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_lease_released_without_a_result_is_taken_over(
    store: Store, executor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the other claimant gives up (fails), the waiting run computes the node itself."""
    graph, nodes = chain(store, 2, executor=executor)
    other, key = hold(store, graph, nodes[1])
    polled = threading.Event()
    real_poll = Lessee.poll
    monkeypatch.setattr(Lessee, "poll", lambda self, keys: polled.set() or real_poll(self, keys))
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(graph.run_upto(nodes[-1])))
    runner.start()
    assert polled.wait(timeout=30)
    other.release([key])
    runner.join(timeout=30)
    assert result == [2] and sorted(Work.calls) == [0, 1]
    graph.close()


def test_an_expired_lease_is_taken_over_at_once(store: Store) -> None:
    """A lease left by a dead process is taken over once expired: the run computes right away."""
    graph, nodes = chain(store, 1)
    key = graph.explain(nodes[1])[nodes[1]].key
    now = time.time()
    store.ledger.claim([key], "host:1:2:dead", expires=now - 1, now=now - 60)
    assert graph.run_upto(nodes[1]) == 1 and Work.calls == [0]
    assert store.ledger.lease_states() == {}


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_threads_running_one_graph_compute_each_node_once(store: Store, executor: str) -> None:
    """Four threads running the same cold graph on one store compute every node exactly once."""
    Work.gate = threading.Event()
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            graph, nodes = chain(store, 4, executor=executor)
            results.append(graph.run_upto(nodes[-1]))
            graph.close()  # closes the shared store too: other threads must not crash
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    Work.gate.set()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and results == [4] * 4
    assert sorted(Work.calls) == [0, 1, 2, 3]
    assert store.ledger.lease_states() == {}


def test_leases_are_released_after_their_results_are_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lease a run took is released, and only once its result's row is committed."""
    events: list[tuple[str, tuple[str, ...]]] = []
    real_save, real_release = Store.save_many, Lessee.release

    def save_many(self: Store, items: Any) -> Any:
        items = list(items)
        events.append(("save", tuple(record.key for record, _ in items)))
        return real_save(self, items)

    def release(self: Lessee, keys: Any) -> None:
        keys = tuple(keys)
        events.append(("release", keys))
        real_release(self, keys)

    monkeypatch.setattr(Store, "save_many", save_many)
    monkeypatch.setattr(Lessee, "release", release)
    graph, nodes = chain(store, 3)
    graph.run_upto(nodes[-1])
    saved = [keys for kind, keys in events if kind == "save"]
    released = [keys for kind, keys in events if kind == "release" and keys]
    assert saved and released[0] == saved[0]
    assert events.index(("release", released[0])) > events.index(("save", saved[0]))
    assert store.ledger.lease_states() == {}


# -- read-only ------------------------------------------------------------------------------


def test_a_read_only_store_runs_cached_graphs(tmp_path: Path) -> None:
    """ProcessGraph over a read-only store serves hits and logs nothing."""
    graph, nodes = chain(tmp_path / "s", 2)
    assert graph.run_upto(nodes[-1]) == 2
    graph.close()
    with open_store(tmp_path / "s", read_only=True) as read_only:
        again, more = chain(read_only, 2)
        Work.calls = []
        assert again.run_upto(more[-1]) == 2 and Work.calls == []
        assert len(read_only.runs()) == 1  # only the writable run's


def test_a_read_only_store_refuses_to_compute_naming_the_node(tmp_path: Path) -> None:
    """A node that must compute on a read-only store raises before anything computes."""
    graph, nodes = chain(tmp_path / "s", 2)
    graph.run_upto(nodes[-1])
    graph.close()
    with open_store(tmp_path / "s", read_only=True) as read_only:
        again, more = chain(read_only, 3)
        Work.calls = []
        with pytest.raises(ReadOnlyStoreError, match=r"node 3 \(Work\) must compute.*read-only"):
            again.run_upto(more[-1])
        assert Work.calls == []
