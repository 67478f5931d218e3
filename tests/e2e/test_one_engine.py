"""The one-engine promises, checked the way a user would use incgraph."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph import ProcessGraph, Processor, Settings, memory_store, open_store
from incgraph.executors.base import SerialExecutor
from incgraph.flow import Flow, ForEach, Layer, Parameter


class CountingExecutor:
    """A user-written executor that finishes every job inside ``submit``."""

    in_process = True
    name = "counting"

    def __init__(self) -> None:
        self.submits = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        self.submits += 1
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        pass


class InlineCountingExecutor(CountingExecutor):
    """The same executor declaring ``inline = True``."""

    inline = True


class CountingSerial(SerialExecutor):
    """The built-in serial executor, counting its submits."""

    def __init__(self) -> None:
        self.submits = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        self.submits += 1
        return super().submit(fn, *args)


class Scale(Processor):
    def process(self, factor: int, x: int) -> int:
        return factor * x


class Total(Processor):
    def process(self, **values: int) -> int:
        return sum(values.values())


class SumList(Processor):
    def process(self, values: list[int]) -> int:
        return sum(values)


def _fan_graph(store: Any) -> tuple[ProcessGraph, Any]:
    g = ProcessGraph(store=store)
    factor = g.add_constant_node("factor", "factor", value=3)
    members = g.add_nodes(Scale, {"factor": factor}, ((f"x{i}", {"x": i}) for i in range(100)))
    join = g.add_node("join", Total, {f"v{i}": m for i, m in enumerate(members)})
    return g, join


@pytest.mark.parametrize("make", [CountingExecutor, InlineCountingExecutor, CountingSerial])
@pytest.mark.parametrize("where", ["run_upto", "graph"])
def test_fan_out_one_submit_per_computed_node(make: Any, where: str, tmp_path: Path) -> None:
    """An executor whose submit returns done futures sees one submit per computed node."""
    executor = make()
    if where == "graph":
        g = ProcessGraph(store=open_store(tmp_path / "s"), executor=executor)
        factor = g.add_constant_node("factor", "factor", value=3)
        members = g.add_nodes(Scale, {"factor": factor}, ((f"x{i}", {"x": i}) for i in range(100)))
        join = g.add_node("join", Total, {f"v{i}": m for i, m in enumerate(members)})
        assert g.run_upto(join) == 3 * sum(range(100))
    else:
        g, join = _fan_graph(open_store(tmp_path / "s"))
        assert g.run_upto(join, executor=executor) == 3 * sum(range(100))
    assert executor.submits == 101
    assert g.run_upto(join, executor=executor) == 3 * sum(range(100))
    assert executor.submits == 101


class FanFlow(Flow): ...


@FanFlow.register
class Source(Layer):
    def __call__(self) -> None:
        self.shard(x=list(range(100)))


@FanFlow.register(foreach=ForEach(parameters=[Parameter(layer=Source, attribute="x")]))
class Square(Layer):
    def __call__(self, source: Source) -> None:
        self.y = source.x * source.x


@FanFlow.register
class Sum(Layer):
    def __call__(self, square: Square) -> None:
        self.total = sum(square.y)


@pytest.mark.parametrize("make", [CountingExecutor, InlineCountingExecutor, CountingSerial])
def test_flow_foreach_one_submit_per_task(make: Any, tmp_path: Path) -> None:
    """A flow with a 100-task ForEach submits each task (and each layer) once."""
    executor = make()
    flow = FanFlow(store=tmp_path / "s")
    execution = flow(executor=executor)
    assert execution[Sum].total == sum(i * i for i in range(100))
    assert executor.submits == len(execution.computed) == 103  # Source, 100 tasks, join, Sum
    again = make()
    assert FanFlow(store=tmp_path / "s", executor=again)()[Sum].total == execution[Sum].total
    assert again.submits == 0


class Inc(Processor):
    def process(self, x: int) -> int:
        return x + 1


def _edited_inc() -> type[Processor]:
    class Inc(Processor):  # the same name, its code edited
        def process(self, x: int) -> int:
            return x + 2

    return Inc


def test_explain_matches_the_run(tmp_path: Path) -> None:
    """explain says compute for new, forced and edited nodes, hit otherwise, as the run does."""
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    c = g.add_constant_node("c", "c", value=1)
    a = g.add_node("a", Inc, {"x": c})
    b = g.add_node("b", Inc, {"x": a})
    plan = g.explain(b)
    assert plan[a].action == "compute"
    assert "never" in plan[a].reason or "no stored" in plan[a].reason
    # b shares a's code: a's result, stored first, could be b's key (an identity would)
    assert plan[b].action == "maybe"
    g.run_upto(b)
    assert g.explain(b)[a].action == "hit" and g.explain(b)[b].action == "hit"
    forced = g.explain(b, force=True)
    assert forced[b].action == "compute" and forced[a].action == "hit"
    assert "force" in forced[b].reason

    g2 = ProcessGraph(store=open_store(tmp_path / "s"))
    c2 = g2.add_constant_node("c", "c", value=1)
    a2 = g2.add_node("a", _edited_inc(), {"x": c2})
    b2 = g2.add_node("b", Inc, {"x": a2})
    plan = g2.explain(b2)
    assert plan[a2].action == "compute" and "code" in plan[a2].reason
    assert plan[b2].action == "maybe"  # computed unless a's new result equals its old one
    assert g2.run_upto(b2) == 4


@pytest.mark.parametrize("edit", ["none", "constant", "force", "new_node"])
def test_explain_equals_next_run_node_by_node(edit: str, tmp_path: Path) -> None:
    """What explain says for each node is what the next run does for it."""
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    c = g.add_constant_node("c", "c", value=1)
    members = g.add_nodes(Inc, {}, ((f"m{i}", {"x": i}) for i in range(5)))
    a = g.add_node("a", Inc, {"x": c})
    j = g.add_node("j", Total, {"a": a, **{f"v{i}": m for i, m in enumerate(members)}})
    g.run_upto(j)
    target, kw = j, {}
    if edit == "constant":
        c.set_value(5)
    elif edit == "force":
        kw = {"force": [a]}
    elif edit == "new_node":
        target = g.add_node("k", Inc, {"x": j})
    said = g.explain(target, **kw).actions()
    g.run_upto(target, **kw)
    did = {n.label: s.status for n, s in g.last_run.statuses.items()}
    expected = {
        "none": ({"a", "j"} | {f"m{i}" for i in range(5)}, set()),
        "constant": ({f"m{i}" for i in range(5)}, {"a"}),
        "force": ({f"m{i}" for i in range(5)}, {"a"}),
        "new_node": ({"a", "j"} | {f"m{i}" for i in range(5)}, {"k"}),
    }[edit]
    assert {k for k, v in said.items() if v == "hit"} == expected[0]
    assert {k for k, v in said.items() if v == "compute"} == expected[1]
    for label, action in said.items():
        if action == "hit":
            assert did[label] == "hit", label
        elif action == "compute":
            assert did[label] == "computed", label


class Model(Processor):
    log: list[str] = []

    def setup(self) -> None:
        Model.log.append(f"setup {type(self).__name__}")

    def release(self) -> None:
        Model.log.append(f"release {type(self).__name__}")

    def process(self, x: int) -> int:
        Model.log.append(f"process {type(self).__name__}")
        return x + 1


class ModelA(Model):
    pass


class ModelB(Model):
    pass


class SharedA(Model):
    resource = "llm"


class SharedB(Model):
    resource = "llm"


class Plain(Processor):
    built = 0

    def __init__(self) -> None:
        Plain.built += 1

    def process(self, x: int) -> int:
        return x * 2


def test_batch_releases_between_passes(tmp_path: Path) -> None:
    """A setup()/release() processor is released before the next pass's processor is set up."""
    Model.log.clear()
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    c = g.add_constant_node("c", "c")
    a = g.add_node("a", ModelA, {"x": c})
    b = g.add_node("b", ModelB, {"x": a})
    stats = g.process_batch([1, 2, 3], [b])
    assert len(stats.failures) == 0
    log = [e for e in Model.log if not e.startswith("process")]
    assert log == ["setup ModelA", "release ModelA", "setup ModelB", "release ModelB"]


def test_batch_shared_resource_kept(tmp_path: Path) -> None:
    """Two passes declaring the same resource keep it: no release between them."""
    Model.log.clear()
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    c = g.add_constant_node("c", "c")
    a = g.add_node("a", SharedA, {"x": c})
    b = g.add_node("b", SharedB, {"x": a})
    g.process_batch([1, 2, 3], [b])
    log = [e for e in Model.log if not e.startswith("process")]
    assert log.index("setup SharedB") < log.index("release SharedA")


def test_batch_plain_processor_not_rebuilt(tmp_path: Path) -> None:
    """A processor holding nothing is built once for a batch, not once per pass or item."""
    Plain.built = 0
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    c = g.add_constant_node("c", "c")
    a = g.add_node("a", Plain, {"x": c})
    m = g.add_node("m", ModelA, {"x": a})
    b = g.add_node("b", Plain, {"x": m})
    g.process_batch(list(range(5)), [b])
    assert Plain.built == 2


class Out(Processor):
    def process(self, kind: str) -> Any:
        return {
            "int": 3,
            "float": 1.5,
            "str": "s",
            "list": [1, "a", None],
            "dict": {"a": {"b": [True, False]}},
            "none": None,
            "bool": True,
            "nested": {"x": [{"y": 1.0}, [None, "z"]]},
        }[kind]


class Array(Processor):
    def process(self, n: int) -> Any:
        np = pytest.importorskip("numpy")
        return np.arange(n)


def test_persist_records_json_outputs(tmp_path: Path) -> None:
    """persist records name, key, data version, JSON outputs and timing; a cached rerun leaves it."""
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    kinds = ["int", "float", "str", "list", "dict", "none", "bool", "nested"]
    nodes = [g.add_node(k, Out, {"kind": k}) for k in kinds]
    n = g.add_constant_node("n", "n", value=4)
    arr = g.add_node("arr", Array, {"n": n})
    path = tmp_path / "out" / "state.json"
    g.persist(path)
    g.run_upto([*nodes, arr])
    text = path.read_text()
    data = json.loads(text)
    assert "3" in text
    expected = [3, 1.5, "s", [1, "a", None], {"a": {"b": [True, False]}}, None, True]
    flat = json.dumps(data)
    for value in expected:
        assert json.dumps(value) in flat
    mtime = path.stat().st_mtime_ns
    g.run_upto([*nodes, arr])
    assert path.stat().st_mtime_ns == mtime
    g2 = ProcessGraph(store=open_store(tmp_path / "s"))
    nodes2 = [g2.add_node(k, Out, {"kind": k}) for k in kinds]
    g2.persist(path)
    g2.run_upto(nodes2)
    assert path.stat().st_mtime_ns == mtime or json.loads(path.read_text())


def _record_entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "nodes" in data:
        nodes = data["nodes"]
        return list(nodes.values()) if isinstance(nodes, dict) else list(nodes)
    return list(data.values()) if isinstance(data, dict) else list(data)


def test_persist_entry_fields(tmp_path: Path) -> None:
    """Each persisted node has its name, cache key, data version, output and timing."""
    g = ProcessGraph(store=open_store(tmp_path / "s"))
    node = g.add_node("n", Out, {"kind": "nested"})
    n = g.add_constant_node("len", "len", value=4)
    arr = g.add_node("arr", Array, {"n": n})
    path = tmp_path / "state.json"
    g.persist(path)
    g.run_upto([node, arr])
    entries = _record_entries(json.loads(path.read_text()))
    by_name = dict(zip(json.loads(path.read_text())["nodes"], entries, strict=True))
    entry = by_name["n"]
    keys = set(entry)
    assert {"name", "cache_key", "data_version"} <= keys, keys
    assert isinstance(entry["duration_s"], float)
    assert entry["output"] == {"x": [{"y": 1.0}, [None, "z"]]}
    assert "output" not in by_name["arr"] or by_name["arr"]["output"] is None


def test_one_run_row_per_front_end(tmp_path: Path) -> None:
    """run_upto, process_batch, flow() and Pipeline.run() each log exactly one run."""
    store = open_store(tmp_path / "s")
    g, join = _fan_graph(store)
    g.run_upto(join)
    assert len(store.runs()) == 1
    c_graph = ProcessGraph(store=store)
    c = c_graph.add_constant_node("c", "c")
    n = c_graph.add_node("n", Inc, {"x": c})
    c_graph.process_batch([1, 2, 3], [n])
    assert len(store.runs()) == 2
    FanFlow(store=store)()
    assert len(store.runs()) == 3
    p = iq.Pipeline(store=store)
    out = p.map(iq.task(name="double")(lambda x: 2 * x), iq.Queue(range(20)))
    p.run()
    assert sorted(out) == [2 * i for i in range(20)]
    assert len(store.runs()) == 4


def test_one_run_row_flow_on_memory_store() -> None:
    """flow() on memory_store() logs exactly one run."""
    store = memory_store()
    FanFlow(store=store)()
    assert len(store.runs()) == 1


def _pipeline_run(store: Any) -> Any:
    p = iq.Pipeline(store=store)
    out = p.map(iq.task(name="triple")(lambda x: 3 * x), iq.Queue(range(10)))
    report = p.run()
    assert list(out) == [3 * i for i in range(10)]
    return report


def test_gc_keep_runs_one_keeps_last_flow(tmp_path: Path) -> None:
    """gc(keep_runs=1) after a flow keeps its results: the rerun computes nothing."""
    store = open_store(tmp_path / "s")
    FanFlow(store=store)()
    store.gc(keep_runs=1, grace=0)
    counter = CountingSerial()
    execution = FanFlow(store=store)(executor=counter)
    assert counter.submits == 0
    assert execution[Sum].total == sum(i * i for i in range(100))


def test_gc_keep_runs_one_keeps_last_pipeline(tmp_path: Path) -> None:
    """gc(keep_runs=1) after a pipeline, and after its cached rerun, keeps its results."""
    store = open_store(tmp_path / "s")
    _pipeline_run(store)
    store.gc(keep_runs=1, grace=0)
    assert _pipeline_run(store).computed == 0
    store.gc(keep_runs=1, grace=0)
    assert _pipeline_run(store).computed == 0


def test_gc_keep_runs_one_keeps_last_graph_and_cached_rerun(tmp_path: Path) -> None:
    """gc(keep_runs=1) after a graph run and after its cached rerun keeps its results."""
    store = open_store(tmp_path / "s")
    g, join = _fan_graph(store)
    g.run_upto(join)
    store.gc(keep_runs=1, grace=0)
    counter = CountingSerial()
    g.run_upto(join, executor=counter)
    assert counter.submits == 0
    store.gc(keep_runs=1, grace=0)
    g2, join2 = _fan_graph(open_store(tmp_path / "s"))
    counter2 = CountingSerial()
    assert g2.run_upto(join2, executor=counter2) == 3 * sum(range(100))
    assert counter2.submits == 0


def test_settings_bad_values() -> None:
    """Settings rejects unknown names and bad values with a message naming them."""
    with pytest.raises(TypeError, match="no_such_knob"):
        Settings(no_such_knob=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="did you mean 'claim_ahead'"):
        Settings(claim_ahad=1)  # type: ignore[call-arg]
    with pytest.raises((ValueError, TypeError), match="claim_ahead"):
        Settings(claim_ahead=-1)
    with pytest.raises((ValueError, TypeError), match="lease_ttl_seconds"):
        Settings(lease_ttl_seconds="soon")  # type: ignore[arg-type]


def test_settings_wrong_type_for_argument(tmp_path: Path) -> None:
    """settings= that is not a Settings raises a TypeError naming the argument and the fix."""
    for call in (
        lambda: open_store(tmp_path / "s", settings={"claim_ahead": 3}),  # type: ignore[arg-type]
        lambda: memory_store(settings={"claim_ahead": 3}),  # type: ignore[arg-type]
        lambda: ProcessGraph(store=":memory:", settings={"claim_ahead": 3}),  # type: ignore[arg-type]
        lambda: iq.Pipeline(store=":memory:", settings={"claim_ahead": 3}),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match=r"settings.*Settings"):
            call()


def test_graph_settings_override_store(tmp_path: Path) -> None:
    """A graph's settings override its store's; without any, the store's settings apply."""
    store = open_store(tmp_path / "s", settings=Settings(claim_ahead=7))
    assert store.settings.claim_ahead == 7
    assert ProcessGraph(store=store).settings.claim_ahead == 7
    g = ProcessGraph(store=store, settings=Settings(claim_ahead=9))
    assert g.settings.claim_ahead == 9
    assert memory_store(settings=Settings(claim_ahead=5)).settings.claim_ahead == 5


class NoSubmit:
    in_process = True
    name = "nosubmit"


def test_executor_without_submit_is_rejected(tmp_path: Path) -> None:
    """An executor object without submit raises a TypeError naming executor= and the fix."""
    g, join = _fan_graph(open_store(tmp_path / "s"))
    with pytest.raises(TypeError, match=r"executor.*submit"):
        g.run_upto(join, executor=NoSubmit())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"executor.*submit"):
        ProcessGraph(store=":memory:", executor=NoSubmit())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"executor.*submit"):
        FanFlow(store=tmp_path / "f")(executor=NoSubmit())


def test_unknown_executor_name(tmp_path: Path) -> None:
    """An unknown executor name raises an error listing the known names."""
    g, join = _fan_graph(open_store(tmp_path / "s"))
    with pytest.raises((ValueError, TypeError, KeyError), match="threads"):
        g.run_upto(join, executor="no-such-executor")


def test_standard_library_pool_as_executor(tmp_path: Path) -> None:
    """A ThreadPoolExecutor passed as executor= runs the graph and stays usable afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        g, join = _fan_graph(open_store(tmp_path / "s"))
        assert g.run_upto(join, executor=pool) == 3 * sum(range(100))
        assert pool.submit(pow, 2, 5).result() == 32  # not shut down by the run
        g2 = ProcessGraph(store=open_store(tmp_path / "t"), executor=pool)
        factor = g2.add_constant_node("factor", "factor", value=2)
        nodes = g2.add_nodes(Scale, {"factor": factor}, ((f"x{i}", {"x": i}) for i in range(10)))
        assert [g2.run_upto(n) for n in nodes] == [2 * i for i in range(10)]


def test_executor_object_passed_to_run_upto_is_not_shut_down(tmp_path: Path) -> None:
    """An incgraph executor object passed to run_upto is left open for the caller's next run."""
    from incgraph.executors.threads import ThreadExecutor

    executor = ThreadExecutor()
    try:
        g, join = _fan_graph(open_store(tmp_path / "s"))
        assert g.run_upto(join, executor=executor) == 3 * sum(range(100))
        g2, join2 = _fan_graph(open_store(tmp_path / "t"))
        assert g2.run_upto(join2, executor=executor) == 3 * sum(range(100))
    finally:
        executor.shutdown()


def test_cli_explain_matches_graph_explain(tmp_path: Path) -> None:
    """`incgraph explain` on a script says compute before the first run and hit after it."""
    import subprocess
    import sys

    script = tmp_path / "pipeline.py"
    script.write_text(
        "from incgraph import ProcessGraph, Processor\n"
        "class Inc(Processor):\n"
        "    def process(self, x: int) -> int:\n"
        "        return x + 1\n"
        f"graph = ProcessGraph(store={str(tmp_path / 's')!r})\n"
        "c = graph.add_constant_node('c', 'c', value=1)\n"
        "a = graph.add_node('a', Inc, {'x': c})\n"
        "if __name__ == '__main__':\n"
        "    graph.run_upto(a)\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)}

    def explain() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "incgraph", "explain", str(script)],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "compute" in explain()
    subprocess.run([sys.executable, str(script)], env=env, check=True, cwd=tmp_path)
    after = explain()
    assert "hit" in after and "compute" not in after.split("a (Inc)")[-1].split("\n")[0]


def test_lease_timing_follows_settings(tmp_path: Path) -> None:
    """A store's lease poll back-off and heartbeat linger come from its settings."""
    tuned = Settings(
        lease_first_poll_seconds=0.01, lease_max_poll_seconds=0.05, lease_linger_seconds=2.0
    )
    lessee = open_store(tmp_path / "s", settings=tuned).lessee()
    assert (lessee.first_poll, lessee.max_poll, lessee.linger) == (0.01, 0.05, 2.0)
    graph_settings = Settings(lease_max_poll_seconds=0.3)
    other = open_store(tmp_path / "s").lessee(settings=graph_settings)
    assert other.max_poll == 0.3


def test_force_takes_true_false_or_nodes(tmp_path: Path) -> None:
    """force= given a string or a foreign node raises instead of being silently ignored."""
    from incgraph.errors import GraphDefinitionError

    g, join = _fan_graph(open_store(tmp_path / "s"))
    g.run_upto(join)
    with pytest.raises(TypeError, match="force="):
        g.run_upto(join, force="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="force="):
        g.explain(join, force="join")  # type: ignore[arg-type]
    _other, other_join = _fan_graph(memory_store())
    with pytest.raises(GraphDefinitionError, match="not a node of this graph"):
        g.run_upto(join, force=[other_join])
    counter = CountingSerial()
    g.run_upto(join, force=join, executor=counter)  # type: ignore[arg-type]
    assert counter.submits == 1
    assert g.explain(join, force=[join])[join].action == "compute"


def test_one_run_row_per_front_end_on_memory_store() -> None:
    """On memory_store(), Pipeline.run(), process_batch and run_upto each log one run."""
    store = memory_store()
    p = iq.Pipeline(store=store)
    out = p.map(iq.task(name="double")(lambda x: 2 * x), iq.Queue(range(5)))
    p.run()
    assert list(out) == [0, 2, 4, 6, 8]
    assert len(store.runs()) == 1
    g = ProcessGraph(store=store)
    c = g.add_constant_node("c", "c")
    n = g.add_node("n", Inc, {"x": c})
    g.process_batch([1, 2], [n])
    assert len(store.runs()) == 2
    c.set_value(7)
    assert g.run_upto(n) == 8
    assert len(store.runs()) == 3


class Text(Processor):
    def process(self, n: int) -> str:
        return "x" * n


def test_persist_output_load_bytes_setting(tmp_path: Path) -> None:
    """A cached rerun records a stored output only up to the graph's persist_output_load_bytes."""

    def build(g: ProcessGraph) -> Any:
        text = g.add_node("t", Text, {"n": 500})
        return g.add_node("len", Length, {"text": text})

    store = open_store(tmp_path / "s")
    first = ProcessGraph(store=store)
    first.run_upto(build(first))
    for limit, recorded in ((64 << 10, True), (100, False)):
        g = ProcessGraph(store=store, settings=Settings(persist_output_load_bytes=limit))
        target = build(g)
        path = tmp_path / f"state{limit}.json"
        g.persist(path)
        assert g.run_upto(target) == 500
        entry = json.loads(path.read_text())["nodes"]["t"]  # a hit the run did not load
        assert entry["status"] == "hit"
        assert ("output" in entry) is recorded


class Length(Processor):
    def process(self, text: str) -> int:
        return len(text)
