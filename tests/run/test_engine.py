"""The engine loop: hits, early cutoff, lazy instances, what gets loaded, failures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from incgraph import (
    DEFAULT_SETTINGS,
    HashingError,
    InputTypeError,
    NodeError,
    NotCachedError,
    ProcessGraph,
    Processor,
    Settings,
)
from incgraph.store import Store, memory_store


@pytest.fixture(autouse=True, params=["serial", "threads"])
def executor_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the serial executor and on a thread pool (graphs made without
    an executor get the pool): the loop behaves the same whatever the executor."""
    if request.param == "threads":
        from incgraph import graph as graph_module

        real = graph_module.resolve_executor
        monkeypatch.setattr(
            graph_module, "resolve_executor", lambda spec: real("threads" if spec is None else spec)
        )
    return str(request.param)


class Counting(Processor):
    """Counts constructions, setups, releases and process calls per class."""

    calls: ClassVar[list[str]] = []

    def __init__(self) -> None:
        Counting.calls.append(f"init {type(self).__name__}")

    def setup(self) -> None:
        Counting.calls.append(f"setup {type(self).__name__}")

    def release(self) -> None:
        Counting.calls.append(f"release {type(self).__name__}")


class SumInt(Counting):
    def process(self, a: int, b: int) -> int:
        Counting.calls.append("process SumInt")
        return a + b


class Parity(Counting):
    def process(self, x: int) -> int:
        Counting.calls.append("process Parity")
        return x % 2


class Label(Counting):
    def process(self, p: int) -> str:
        Counting.calls.append("process Label")
        return "odd" if p else "even"


class Opaque:
    """A picklable value with no content hash (no registered hasher)."""

    def __init__(self, v: int) -> None:
        self.v = v


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    Counting.calls.clear()


def processes() -> list[str]:
    return [c for c in Counting.calls if c.startswith("process")]


def test_seed_003_example_gives_600_501_600_with_a_pure_hit(tmp_path: Path) -> None:
    """Seed 003: 600, then 501 after set_value(1), then 600 again with zero process calls."""
    graph = ProcessGraph(store=tmp_path / "store")
    node_const = graph.add_constant_node(id=0, name="MyConst")
    node1 = graph.add_node(1, SumInt, {"a": node_const, "b": 200})
    node2 = graph.add_node(2, SumInt, {"a": 300, "b": node1})
    node_const.set_value(100)
    assert graph.run_upto(node2) == 600
    node_const.set_value(1)
    assert graph.run_upto(node2) == 501
    node_const.set_value(100)
    Counting.calls.clear()
    assert graph.run_upto(node2) == 600
    assert Counting.calls == []  # not even constructed


def test_rerun_in_a_new_graph_object_is_all_hits(tmp_path: Path) -> None:
    """A second graph over the same store (as in a new process) computes nothing."""

    def build() -> tuple[ProcessGraph, Any]:
        g = ProcessGraph(store=tmp_path / "s")
        c = g.add_constant_node(0, "c", value=5)
        n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
        return g, g.add_node(2, SumInt, {"a": n1, "b": n1})

    g, target = build()
    assert g.run_upto(target) == 12
    g.close()
    Counting.calls.clear()
    g2, target2 = build()
    assert g2.run_upto(target2) == 12
    assert Counting.calls == []
    assert [n.id for n in g2.last_run.hits] == [1, 2]


def test_early_cutoff_keeps_dependents_cached() -> None:
    """An upstream node recomputing to the same result leaves downstream nodes as hits."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=3)
    parity = g.add_node(1, Parity, {"x": c})
    label = g.add_node(2, Label, {"p": parity})
    assert g.run_upto(label) == "odd"
    c.set_value(5)  # still odd: Parity recomputes to 1
    Counting.calls.clear()
    assert g.run_upto(label) == "odd"
    assert processes() == ["process Parity"]
    assert g.explain(label).actions() == {"0": "constant", "1": "hit", "2": "hit"}


def test_instances_are_lazy_and_released() -> None:
    """Only computing nodes construct instances; release_resources calls release() and drops them."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=2)
    n1 = g.add_node(1, Parity, {"x": c})
    n2 = g.add_node(2, Label, {"p": n1})
    g.run_upto(n1)
    assert Counting.calls == ["init Parity", "setup Parity", "process Parity"]
    assert n1.initialized and not n2.initialized
    Counting.calls.clear()
    g.run_upto(n2)  # n1 is a hit now: its live instance is not used
    assert Counting.calls == ["init Label", "setup Label", "process Label"]
    Counting.calls.clear()
    n1.release_resources()
    assert Counting.calls == ["release Parity"] and not n1.initialized
    g.release_resources()
    assert Counting.calls == ["release Parity", "release Label"]
    assert not n2.initialized
    g.release_resources()  # idempotent
    assert Counting.calls == ["release Parity", "release Label"]


class CountingStore(Store):
    """A memory store that counts blob loads."""

    def __init__(self) -> None:
        base = memory_store()
        super().__init__(base.index, base.blobs)
        self.loads: list[str] = []

    def load(self, record_or_data_version: Any) -> Any:
        self.loads.append(str(record_or_data_version))
        return super().load(record_or_data_version)


def test_hits_load_nothing_but_the_target() -> None:
    """A fully cached rerun loads exactly one value: the target's."""
    store = CountingStore()
    g = ProcessGraph(store=store)
    c = g.add_constant_node(0, "c", value=1)
    prev: Any = c
    for i in range(1, 6):
        prev = g.add_node(i, SumInt, {"a": prev, "b": 1})
    assert g.run_upto(prev) == 6
    assert store.loads == []  # everything was computed in this run
    g2 = ProcessGraph(store=store)
    c2 = g2.add_constant_node(0, "c", value=1)
    prev = c2
    for i in range(1, 6):
        prev = g2.add_node(i, SumInt, {"a": prev, "b": 1})
    assert g2.run_upto(prev) == 6
    assert len(store.loads) == 1


def test_a_computing_node_loads_only_its_inputs() -> None:
    """When only the last node's code changes, only its input is loaded from the store."""
    store = CountingStore()
    g = ProcessGraph(store=store)
    c = g.add_constant_node(0, "c", value=1)
    n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
    n2 = g.add_node(2, SumInt, {"a": n1, "b": 1})
    g.run_upto(n2)
    g2 = ProcessGraph(store=store)
    c2 = g2.add_constant_node(0, "c", value=1)
    m1 = g2.add_node(1, SumInt, {"a": c2, "b": 1})
    m2 = g2.add_node(2, SumInt, {"a": m1, "b": 1}, version=2)
    Counting.calls.clear()
    assert g2.run_upto(m2) == 3
    assert processes() == ["process SumInt"]
    assert len(store.loads) == 1  # m1's value, as m2's input


def test_version_bump_invalidates_node_and_downstream() -> None:
    """A processor's version attribute and a node's version are both part of the key."""

    class V1(Counting):
        version = 1

        def process(self, x: int) -> int:
            Counting.calls.append("process V")
            return x

    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    n = g.add_node(1, V1, {"x": c})
    g.run_upto(n)
    store = g.store
    g2 = ProcessGraph(store=store)
    c2 = g2.add_constant_node(0, "c", value=1)
    n2 = g2.add_node(1, V1, {"x": c2}, version="b")
    assert g2.explain(n2)[n2].action == "compute"
    V1.version = 2
    g3 = ProcessGraph(store=store)
    c3 = g3.add_constant_node(0, "c", value=1)
    n3 = g3.add_node(1, V1, {"x": c3})
    assert g3.explain(n3)[n3].reason == "code changed"


def test_cache_false_always_computes() -> None:
    """A cache=False node runs every time and stores nothing; its dependents still cache on content."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=4)
    n1 = g.add_node(1, Parity, {"x": c}, cache=False)
    n2 = g.add_node(2, Label, {"p": n1})
    g.run_upto(n2)
    Counting.calls.clear()
    g.run_upto(n2)
    assert processes() == ["process Parity"]
    assert g.explain(n2)[n1].reason == "cache=False: always computes"


def test_force_recomputes_the_target() -> None:
    """run_upto(force=True) recomputes the target even on a hit."""
    g = ProcessGraph(store=":memory:")
    n = g.add_node(1, SumInt, {"a": 1, "b": 2})
    g.run_upto(n)
    Counting.calls.clear()
    assert g.run_upto(n, force=True) == 3
    assert processes() == ["process SumInt"]


def test_none_is_a_cached_result() -> None:
    """A processor returning None is a hit on the rerun (None is not 'missing')."""

    class Nothing(Counting):
        def process(self, x: int) -> None:
            Counting.calls.append("process Nothing")

    g = ProcessGraph(store=":memory:")
    n = g.add_node(1, Nothing, {"x": 1})
    assert g.run_upto(n) is None
    Counting.calls.clear()
    assert g.run_upto(n) is None
    assert processes() == []


def test_failure_raises_node_error_with_the_original() -> None:
    """A raising processor gives a NodeError naming the node and chaining the exception."""

    class Boom(Processor):
        def process(self, x: int) -> int:
            raise ZeroDivisionError("bad x")

    g = ProcessGraph(store=":memory:")
    n = g.add_node(3, Boom, {"x": 1})
    with pytest.raises(
        NodeError, match=r"node 3 \(Boom\) failed: ZeroDivisionError: bad x"
    ) as info:
        g.run_upto(n)
    assert isinstance(info.value.exception, ZeroDivisionError)
    assert info.value.__cause__ is info.value.exception
    assert info.value.node == "3"
    assert len(g.store.index.get_many([])) == 0


def test_wrong_return_type_is_caught_at_run_time() -> None:
    """A process() that returns something its annotation rules out raises InputTypeError."""

    class Liar(Processor):
        def process(self, x: int) -> int:
            return "not an int"  # type: ignore[return-value]

    g = ProcessGraph(store=":memory:")
    n = g.add_node(1, Liar, {"x": 1})
    with pytest.raises(
        InputTypeError,
        match=r"node 1 \(Liar\) returned str, but its process\(\) is annotated -> int",
    ):
        g.run_upto(n)


def test_unannotated_upstream_value_is_checked_at_run_time() -> None:
    """When the upstream has no return annotation, the value itself is checked against the parameter."""

    class Loose(Processor):
        def process(self, x: int):  # type: ignore[no-untyped-def]
            return "text"

    g = ProcessGraph(store=":memory:")
    up = g.add_node(1, Loose, {"x": 1})
    down = g.add_node(2, SumInt, {"a": up, "b": 1})
    with pytest.raises(InputTypeError, match=r"node 2 \(SumInt\): input 'a' expects int, got str"):
        g.run_upto(down)


def test_unhashable_constant_names_node_and_input() -> None:
    """An input without a deterministic hash raises HashingError naming node and input."""

    class Opaque:
        pass

    class Take(Processor):
        def process(self, x: Any) -> int:
            return 1

    g = ProcessGraph(store=":memory:")
    n = g.add_node(1, Take, {"x": Opaque()})
    with pytest.raises(HashingError, match=r"node 1 \(Take\): input 'x'.*cache=False"):
        g.run_upto(n)
    m = g.add_node(2, Take, {"x": Opaque()}, cache=False)
    assert g.run_upto(m) == 1


def test_unhashable_result_still_caches_downstream() -> None:
    """A result with no content hash gets a version derived from its key; downstream still hits."""

    class Make(Counting):
        def process(self, x: int) -> Opaque:
            Counting.calls.append("process Make")
            return Opaque(x)

    class Use(Counting):
        def process(self, o: Opaque) -> int:
            Counting.calls.append("process Use")
            return o.v + 1

    g = ProcessGraph(store=":memory:")
    m = g.add_node(1, Make, {"x": 1})
    u = g.add_node(2, Use, {"o": m})
    assert g.run_upto(u) == 2
    Counting.calls.clear()
    assert g.run_upto(u) == 2
    assert processes() == []


def test_run_only_uses_stored_inputs() -> None:
    """run_only computes the node from stored upstream results and never computes upstream."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
    n2 = g.add_node(2, SumInt, {"a": n1, "b": 10})
    with pytest.raises(NotCachedError, match=r"node 1 \(SumInt\).*run_upto"):
        g.run_only(n2)
    g.run_upto(n1)
    Counting.calls.clear()
    assert g.run_only(n2) == 12
    assert processes() == ["process SumInt"]


def test_run_upto_list_returns_last_value() -> None:
    """run_upto([a, b]) runs both and returns b's value."""
    g = ProcessGraph(store=":memory:")
    a = g.add_node(1, SumInt, {"a": 1, "b": 1})
    b = g.add_node(2, SumInt, {"a": 2, "b": 2})
    assert g.run_upto([a, b]) == 4
    assert set(g.last_run.computed) == {a, b}


def test_explain_reasons() -> None:
    """explain says new / which input changed / maybe (early cutoff) / hit."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
    n2 = g.add_node(2, SumInt, {"a": n1, "b": 1})
    plan = g.explain(n2)
    assert plan[n1].reason == "no stored result for this node yet"
    assert plan[n2].action == "maybe"  # node 1, computing first, may store node 2's key
    g.run_upto(n2)
    assert g.explain(n2).actions() == {"0": "constant", "1": "hit", "2": "hit"}
    c.set_value(5)  # (not 2: SumInt(2, 1) is node 2's stored computation, a hit by content)
    plan = g.explain(n2)
    assert (plan[n1].action, plan[n1].reason) == ("compute", "input 'a' changed")
    assert "node 1 (SumInt) computes first" in plan[n2].reason
    assert plan[n2].action == "maybe"
    assert g.explain(n2, force=True)[n2].action == "compute"
    assert "1 (SumInt): compute - input 'a' changed" in str(plan)


def test_render_marks_explained_nodes() -> None:
    """render(explain=True) marks nodes as hit or compute in mermaid and DOT."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
    g.add_node(2, SumInt, {"a": n1, "b": 1})
    g.run_upto(n1)
    text = g.render(explain=True)
    assert 'n_1["1: SumInt"]:::hit' in text and 'n_2["2: SumInt"]:::compute' in text
    assert 'n_0 -- "a" --> n_1' in text
    dot = g.render("dot", explain=True)
    assert '"1" [label="1: SumInt", shape=box, style=filled, fillcolor="#d4f7d4"];' in dot


def test_persist_writes_readable_json(tmp_path: Path) -> None:
    """persist(path) writes each node's name, key, data version and JSON-able output after runs."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    n1 = g.add_node(1, SumInt, {"a": c, "b": 1})
    path = tmp_path / "deep" / "state.json"
    g.persist(path)
    g.run_upto(n1)
    data = json.loads(path.read_text())
    assert data["nodes"]["1"]["name"] == "SumInt"
    assert data["nodes"]["1"]["output"] == 2
    assert data["nodes"]["1"]["status"] == "computed"
    assert len(data["nodes"]["1"]["cache_key"]) == 32
    assert data["nodes"]["0"]["output"] == 1


def test_long_chain_runs_iteratively() -> None:
    """A 100k-node chain runs and reruns (no recursion limit)."""

    class Inc(Processor):
        def process(self, x: int) -> int:
            return x + 1

    g = ProcessGraph(store=":memory:")
    prev: Any = g.add_constant_node(0, "c", value=0)
    for i in range(1, 100_001):
        prev = g.add_node(i, Inc, {"x": prev})
    assert g.run_upto(prev) == 100_000
    assert g.run_upto(prev) == 100_000
    assert len(g.last_run.hits) == 100_000


def test_close_leaves_a_passed_in_store_open(tmp_path: Path) -> None:
    """ProcessGraph.close() closes a store it opened itself, not one the caller passed in."""
    from incgraph.store import open_store

    store = open_store(tmp_path / "shared")
    g = ProcessGraph(store=store)
    n = g.add_node(1, SumInt, {"a": 1, "b": 2})
    assert g.run_upto(n) == 3
    g.close()
    g2 = ProcessGraph(store=store)
    m = g2.add_node(1, SumInt, {"a": 1, "b": 2})
    assert g2.run_upto(m) == 3 and g2.last_run.hits == [m]
    store.close()
    with ProcessGraph(store=tmp_path / "own") as g3:
        assert g3.run_upto(g3.add_node(1, SumInt, {"a": 2, "b": 2})) == 4
    assert g3._store is None


class Inc(Processor):
    def process(self, x: int) -> int:
        return x + 1


CHEAP_UNDER_50MS = DEFAULT_SETTINGS.replace(lease_min_seconds=0.05)
"""A threshold a trivial compute stays under even on a loaded machine."""


def _record_claims(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The keys of every ``Lessee.claim_many`` call from now on, one list per call."""
    from incgraph.store.leases import Lessee

    calls: list[list[str]] = []
    claim_many = Lessee.claim_many

    def recording(self: Lessee, keys: Any, **kw: Any) -> Any:
        keys = list(keys)
        calls.append(keys)
        return claim_many(self, keys, **kw)

    monkeypatch.setattr(Lessee, "claim_many", recording)
    return calls


def _claims_of_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: str | None = None,
    settings: Settings = CHEAP_UNDER_50MS,
) -> list[int]:
    """Keys claimed by a first run of a 40-node chain, then by a rerun after its seed changed."""
    calls = _record_claims(monkeypatch)
    counts = []
    for seed in (1, 10**6):
        with ProcessGraph(store=tmp_path / "store", executor=executor, settings=settings) as g:
            nodes = [g.add_constant_node(0, "seed", value=seed)]
            for i in range(1, 41):
                nodes.append(g.add_node(i, Inc, {"x": nodes[-1]}))
            assert g.run_upto(nodes[-1]) == seed + 40 and len(g.last_run.computed) == 40
        counts.append(sum(map(len, calls)))
        calls.clear()
    return counts


@pytest.mark.parametrize("executor", [None, "threads"])
def test_cheap_nodes_recompute_without_a_lease_but_first_computes_are_leased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str | None
) -> None:
    """A node's first compute claims its key, until its processor proved cheap in the run.

    A recompute of a node whose stored result was cheap claims nothing.
    """
    assert _claims_of_runs(tmp_path, monkeypatch, executor) == [1, 0]


class SlowOnce(Processor):
    def process(self, x: int) -> int:
        if x % 10 == 5:
            time.sleep(0.15)
        return x + 1


def test_a_processor_with_one_slow_compute_stays_leased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Computes over lease_min_seconds on average: the processor is leased again from then on."""
    calls = _record_claims(monkeypatch)
    tuned = DEFAULT_SETTINGS.replace(lease_min_seconds=0.01)
    with ProcessGraph(store=tmp_path / "store", settings=tuned) as g:
        nodes = [g.add_constant_node(0, "seed", value=0)]
        for i in range(1, 41):
            nodes.append(g.add_node(i, SlowOnce, {"x": nodes[-1]}))
        assert g.run_upto(nodes[-1]) == 40
    # the first compute is leased, x = 1..5 are not (the processor proved cheap), then x = 5
    # was slow: one in ten that slow keeps the average over the threshold to the end
    assert sum(map(len, calls)) == 35


def test_a_node_that_was_slow_is_leased_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a threshold no stored duration is below, every recompute claims its key."""
    never_cheap = DEFAULT_SETTINGS.replace(lease_min_seconds=0.0)
    assert _claims_of_runs(tmp_path, monkeypatch, settings=never_cheap) == [40, 40]


def test_a_wave_of_siblings_claims_its_leases_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Independent cold nodes (like ForEach tasks) are one wave: claimed in one transaction."""
    calls = _record_claims(monkeypatch)
    with ProcessGraph(store=tmp_path / "store") as g:
        seed = g.add_constant_node(0, "seed", value=7)
        tasks = [g.add_node(i, SumInt, {"a": seed, "b": i}) for i in range(1, 101)]
        total = g.add_node("total", Collect100, {"xs": tasks[0]})
        assert g.run_upto([*tasks, total]) == 8
        assert len(g.last_run.computed) == 101
    assert [len(keys) for keys in calls] == [100, 1]  # the tasks' wave; then the total


def test_hits_found_by_the_look_ahead_are_not_looked_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Siblings the claim look-ahead found stored (older results, not the latest) settle as hits
    from that one bulk query: no single-key look-up each."""
    store = tmp_path / "store"

    def build(seed_value: int, extra: bool) -> tuple[ProcessGraph, list[Any]]:
        g = ProcessGraph(store=store)
        seed = g.add_constant_node(0, "seed", value=seed_value)
        first = [g.add_node("new", SumInt, {"a": seed, "b": 1000})] if extra else []
        return g, [*first, *(g.add_node(i, SumInt, {"a": seed, "b": i}) for i in range(1, 21))]

    for value in (7, 8):  # results for seed 7 stay stored, but seed 8's are the latest
        g, nodes = build(value, extra=False)
        with g:
            g.run_upto(nodes)
    single: list[str] = []
    lookup_version = Store.lookup_version

    def counting(self: Store, key: str) -> Any:
        single.append(key)
        return lookup_version(self, key)

    monkeypatch.setattr(Store, "lookup_version", counting)
    g, nodes = build(7, extra=True)  # deciding "new" looks ahead at the 20
    with g:
        g.run_upto(nodes)
        assert len(g.last_run.computed) == 1 and len(g.last_run.hits) == 20
    assert single == []  # "new" and its 20 siblings: one bulk look-up


class Collect100(Processor):
    def process(self, xs: int) -> int:
        return xs


class GcState(Processor):
    """Notes, while it runs, whether the GC is on, how many objects are frozen, the gen-0 threshold."""

    seen: ClassVar[list[tuple[bool, int, int]]] = []

    def process(self, x: int) -> int:
        import gc

        GcState.seen.append((gc.isenabled(), gc.get_freeze_count(), gc.get_threshold()[0]))
        return x


def test_the_serial_walk_hides_the_graph_from_the_gc_and_leaves_a_users_freeze_alone() -> None:
    """During the walk the GC stays on with the graph frozen; afterwards nothing is left frozen,
    and objects the caller froze before the run are still frozen after it."""
    import gc

    graph = ProcessGraph(store=memory_store())
    x = graph.add_constant_node("x", "x", value=1)
    node = graph.add_node("g", GcState, {"x": x}, cache=False)
    GcState.seen.clear()
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    graph.run_upto(node)
    ((enabled, frozen, young),) = GcState.seen
    assert enabled and frozen > 0 and young >= 20_000  # young collections made rarer
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds  # both restored
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        graph.run_upto(node)
        # still frozen (a few frozen objects may have been freed meanwhile), not unfrozen
        assert gc.get_freeze_count() > before // 2
    finally:
        gc.unfreeze()
