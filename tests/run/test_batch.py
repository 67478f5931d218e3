"""process_batch: counts, failures as data, prep_fn, persist, strategies, options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incgraph.core.graph import Node
from incgraph.core.processor import Processor
from incgraph.errors import ConfigurationError, ConstantNotSetError, NodeError
from incgraph.graph import ProcessGraph
from incgraph.run.batch import process_batch

CALLS: list[str] = []


class Parse(Processor):
    def process(self, text: str) -> int:
        CALLS.append(f"Parse {text}")
        if text == "boom":
            raise ValueError("cannot parse boom")
        return len(text)


class Square(Processor):
    def process(self, n: int) -> int:
        CALLS.append(f"Square {n}")
        return n * n


class Shout(Processor):
    def process(self, text: str) -> str:
        CALLS.append(f"Shout {text}")
        return text.upper()


class Join(Processor):
    def process(self, n: int, loud: str) -> str:
        CALLS.append(f"Join {loud}")
        return f"{loud}:{n}"


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def docs_graph(store: Any = ":memory:") -> tuple[ProcessGraph, Node, dict[str, Node]]:
    """text -> Parse -> Square -> Join; text -> Shout -> Join (two branches)."""
    g = ProcessGraph(store=store)
    text = g.add_constant_node(0, "text")
    parse = g.add_node(1, Parse, {"text": text})
    square = g.add_node(2, Square, {"n": parse})
    shout = g.add_node(3, Shout, {"text": text})
    join = g.add_node(4, Join, {"n": square, "loud": shout})
    return g, text, {"parse": parse, "square": square, "shout": shout, "join": join}


ITEMS = ["a", "bb", "boom", "dddd"]


@pytest.mark.parametrize("strategy", ["breadth_first", "depth_first"])
def test_failure_skips_only_that_items_downstream(strategy: str) -> None:
    """A failing item-node skips its downstream only: its other branch and other items go on."""
    g, _, n = docs_graph()
    stats = g.process_batch(ITEMS, [n["join"], n["shout"]], strategy=strategy)
    assert stats.completed == [0, 1, 3]
    assert stats.failed == [2]
    (failure,) = stats.failures
    assert (failure.index, failure.item, failure.node) == (2, "boom", n["parse"])
    assert isinstance(failure.exception, ValueError)
    assert isinstance(failure.error, NodeError)
    assert "cannot parse boom" in failure.traceback and "ValueError" in failure.traceback
    assert "Shout boom" in CALLS  # the other branch of the failing item still ran
    assert stats.nodes[n["square"]].skipped == 1 and stats.nodes[n["join"]].skipped == 1
    assert (stats.computed, stats.cached, stats.skipped) == (3 * 4 + 1, 0, 2)


def test_rerun_is_all_hits_and_calls_nothing() -> None:
    """A second batch over the same items is all cache hits (failures are retried)."""
    g, _, n = docs_graph()
    g.process_batch(ITEMS, [n["join"]])
    CALLS.clear()
    stats = g.process_batch(ITEMS, [n["join"]])
    assert CALLS == ["Parse boom"]  # only the failure is tried again
    assert stats.cached == 3 * 4 + 1 and stats.computed == 0


def test_batch_and_run_upto_share_keys() -> None:
    """Results of a batch are hits for run_upto with the same constant, and the reverse."""
    g, text, n = docs_graph()
    text.set_value("xyz")
    assert g.run_upto(n["join"]) == "XYZ:9"
    CALLS.clear()
    stats = g.process_batch(["xyz", "pq"], [n["join"]])
    assert stats.cached == 4 and stats.computed == 4
    text.set_value("pq")
    assert g.run_upto(n["join"]) == "PQ:4"
    assert g.last_run.computed == []


@pytest.mark.parametrize("strategy", ["breadth_first", "depth_first"])
@pytest.mark.parametrize("chunk_size", [1, 3, 512])
def test_strategies_and_chunk_sizes_compute_each_item_node_once(
    strategy: str, chunk_size: int
) -> None:
    """Whatever the strategy and chunk size, each item-node computes once, in a valid order."""
    g, _, n = docs_graph()
    items = ["d" * i for i in range(1, 8)]  # distinct lengths: no two items share a key
    stats = g.process_batch(items, n["join"], strategy=strategy, chunk_size=chunk_size)
    assert stats.computed == 4 * 7 and stats.completed == list(range(7))
    assert len(CALLS) == len(set(CALLS)) == 4 * 7
    if strategy == "breadth_first":  # every Parse before any Square
        kinds = [c.split()[0] for c in CALLS]
        assert kinds == sorted(kinds, key=["Parse", "Square", "Shout", "Join"].index)


def test_items_with_the_same_key_compute_once() -> None:
    """Items whose key is the same in one pass compute once; the others count as cached."""
    g, _, n = docs_graph()
    stats = g.process_batch(["ab", "cd", "ab"], [n["join"]])
    assert CALLS.count("Square 2") == 1 and CALLS.count("Parse ab") == 1
    assert stats.nodes[n["square"]].computed == 1 and stats.nodes[n["square"]].cached == 2
    assert stats.completed == [0, 1, 2]


def test_depth_first_streams_a_generator_in_chunks() -> None:
    """Depth-first reads a generator chunk by chunk: each chunk finishes before the next starts."""
    g, _, n = docs_graph()
    seen: list[int] = []

    def items() -> Any:
        for i in range(6):
            seen.append(i)
            yield f"x{i}"

    def prep(index: int, item: str) -> None:
        assert max(seen) < index + 2  # never more than one chunk (of 2) read ahead
        g.nodes[0].set_value(item)

    stats = g.process_batch(items(), [n["join"]], prep, strategy="depth_first", chunk_size=2)
    assert stats.items == 6 and stats.completed == list(range(6))


def test_fault_tolerant_false_reraises_the_node_error_after_saving() -> None:
    """fault_tolerant=False raises the NodeError; what finished before it is stored."""
    g, _, n = docs_graph()
    with pytest.raises(NodeError, match="cannot parse boom") as info:
        g.process_batch(ITEMS, [n["parse"]], fault_tolerant=False)
    assert isinstance(info.value.exception, ValueError)
    CALLS.clear()
    stats = g.process_batch(ITEMS[:2], [n["parse"]])
    assert stats.cached == 2 and CALLS == []


def test_prep_fn_failure_is_recorded_and_the_item_skipped() -> None:
    """prep_fn raising records a failure with node None; the item runs no node."""
    g, text, n = docs_graph()

    def prep(index: int, item: str) -> None:
        if index == 1:
            raise KeyError("no such document")
        text.set_value(item)

    stats = g.process_batch(["a", "b", "c"], [n["join"]], prep)
    (failure,) = stats.failures
    assert failure.node is None and failure.where == "prep_fn" and failure.index == 1
    assert stats.completed == [0, 2] and stats.skipped == 4


def test_unset_constant_is_a_failure_naming_it() -> None:
    """A constant prep_fn never sets fails each item at that constant with a clear error."""
    g = ProcessGraph(store=":memory:")
    text = g.add_constant_node(0, "text")
    suffix = g.add_constant_node(1, "suffix")
    join = g.add_node(2, Join, {"n": g.add_node(3, Parse, {"text": text}), "loud": suffix})
    stats = g.process_batch(["a", "b"], [join], lambda i, item: text.set_value(item))
    assert [f.node for f in stats.failures] == [suffix, suffix]
    assert isinstance(stats.failures[0].exception, ConstantNotSetError)
    assert stats.nodes[join].skipped == 2 and stats.computed == 2  # Parse still ran


def test_without_prep_fn_the_single_constant_takes_the_item() -> None:
    """With no prep_fn, a graph with one constant node gets each item as its value."""
    g, _, n = docs_graph()
    g.process_batch(["hello"], [n["join"]])
    assert "Join HELLO" in CALLS


def test_without_prep_fn_several_constants_is_an_error() -> None:
    """With no prep_fn and two constant nodes, the error names them and asks for prep_fn."""
    g = ProcessGraph(store=":memory:")
    a = g.add_constant_node(0, "text")
    b = g.add_constant_node(1, "loud")
    join = g.add_node(2, Join, {"n": g.add_node(3, Parse, {"text": a}), "loud": b})
    with pytest.raises(ConfigurationError, match="prep_fn"):
        g.process_batch(["x"], [join])


def test_unknown_options_are_configuration_errors() -> None:
    """An unknown strategy or parallel target, or both executor and parallel, raise clearly."""
    g, _, n = docs_graph()
    with pytest.raises(ConfigurationError, match="breadth_first, depth_first"):
        g.process_batch(["x"], [n["parse"]], strategy="sideways")
    with pytest.raises(ConfigurationError, match="threads, nogil, async, mpc"):
        g.process_batch(["x"], [n["parse"]], parallel="gpu")
    with pytest.raises(ConfigurationError, match="not both"):
        g.process_batch(["x"], [n["parse"]], parallel="threads", executor="threads")
    with pytest.raises(ConfigurationError, match="chunk_size"):
        g.process_batch(["x"], [n["parse"]], chunk_size=0)


def test_empty_batch_does_nothing() -> None:
    """An empty batch completes nothing, calls nothing and constructs nothing."""
    g, _, n = docs_graph()
    stats = g.process_batch([], [n["join"]])
    assert (stats.items, stats.completed, stats.computed, CALLS) == (0, [], 0, [])


def test_persist_in_prep_fn_writes_each_items_states(tmp_path: Path) -> None:
    """graph.persist in prep_fn gives each item a JSON of its own nodes' states and outputs."""
    g, text, n = docs_graph(tmp_path / "store")

    def prep(index: int, item: str) -> None:
        text.set_value(item)
        g.persist(tmp_path / "out" / f"item{index}.json")

    g.process_batch(["ab", "boom"], [n["join"]], prep)
    first = json.loads((tmp_path / "out" / "item0.json").read_text())["nodes"]
    assert first["0"]["output"] == "ab" and first["4"]["output"] == "AB:4"
    assert first["1"]["status"] == "computed" and first["1"]["cache_key"]
    second = json.loads((tmp_path / "out" / "item1.json").read_text())["nodes"]
    assert [second[k]["status"] for k in "01234"] == [
        "constant",
        "failed",
        "skipped",
        "computed",
        "skipped",
    ]
    (tmp_path / "out" / "item0.json").unlink()
    g.process_batch(["ab"], [n["join"]], prep)  # a cached rerun still records every output
    first = json.loads((tmp_path / "out" / "item0.json").read_text())["nodes"]
    assert [first[k]["status"] for k in "1234"] == ["hit"] * 4
    assert [first[k]["output"] for k in "01234"] == ["ab", 2, 4, "AB", "AB:4"]


def test_stats_report_per_node_counts_and_a_readable_summary() -> None:
    """Per-node stats and str(stats) say what was computed, cached, failed and skipped."""
    g, _, n = docs_graph()
    stats = g.process_batch(ITEMS, [n["join"]])
    assert stats.nodes[n["parse"]].computed == 3 and stats.nodes[n["parse"]].failed == 1
    assert stats.nodes[n["parse"]].compute_seconds >= 0.0
    text = str(stats)
    assert "4 items (breadth_first): 3 completed, 1 failed" in text
    assert "failure: item 2 ('boom') at node 1 (Parse): ValueError: cannot parse boom" in text


def test_cache_false_nodes_always_compute_and_keep_downstream_cached() -> None:
    """A cache=False node computes on every batch; an unchanged result keeps dependents hits."""
    g = ProcessGraph(store=":memory:")
    text = g.add_constant_node(0, "text")
    parse = g.add_node(1, Parse, {"text": text}, cache=False)
    square = g.add_node(2, Square, {"n": parse})
    g.process_batch(["ab", "cde"], [square])
    CALLS.clear()
    stats = g.process_batch(["ab", "cde"], [square])
    assert CALLS == ["Parse ab", "Parse cde"]
    assert stats.nodes[square].cached == 2


def test_prep_fn_must_bind_the_same_value_again() -> None:
    """A prep_fn that binds another value when called again for an item fails that item."""
    g, text, n = docs_graph()
    g.process_batch(["ab"], [n["parse"]])  # Parse(ab) cached, so only Shout reads text again
    calls = {"n": 0}

    def prep(index: int, item: str) -> None:
        calls["n"] += 1
        text.set_value(item * calls["n"])

    stats = g.process_batch(["ab"], [n["join"]], prep)
    assert "prep_fn bound a different value" in str(stats.failures[0].exception)


def test_progress_bar_counts_item_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """progress=True draws a tqdm bar on stderr ending at items x nodes with the counts."""
    g, _, n = docs_graph()
    g.process_batch(ITEMS, [n["join"]], progress=True)
    err = capsys.readouterr().err
    assert "16/16" in err and "computed=13" in err and "failed=1" in err


def test_progress_is_off_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """The default (progress=None) shows no bar when stderr is captured."""
    g, _, n = docs_graph()
    g.process_batch(ITEMS, [n["join"]])
    assert capsys.readouterr().err == ""


def test_process_batch_function_equals_the_method() -> None:
    """incgraph.run.batch.process_batch(graph, ...) is what graph.process_batch calls."""
    g, _, n = docs_graph()
    stats = process_batch(g, ["ab"], [n["join"]], None, strategy="depth_first")
    assert stats.strategy == "depth_first" and stats.completed == [0]


class Counted(Processor):
    made: ClassVar[int] = 0

    def __init__(self) -> None:
        Counted.made += 1

    def process(self, text: str) -> int:
        return len(text)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.text(max_size=4), max_size=12), st.sampled_from(["breadth_first", "depth_first"])
)
def test_batch_equals_running_each_item_alone(items: list[str], strategy: str) -> None:
    """For any items, a batch stores exactly what run_upto per item computes (same keys, values)."""
    g, text, n = docs_graph()
    items = [i for i in items if i != "boom"]
    stats = g.process_batch(items, [n["join"]], strategy=strategy, chunk_size=5)
    assert stats.completed == list(range(len(items)))
    for item in items:
        text.set_value(item)
        assert g.run_upto(n["join"]) == f"{item.upper()}:{len(item) ** 2}"
        assert g.last_run.computed == []


def lose_value(store: Any, data_version: str) -> None:
    """Lose a stored value behind the store's back: its blob, or the bytes its rows hold."""
    store.blobs.delete(data_version)
    store.index.file.write(
        lambda conn: conn.execute(
            "UPDATE results SET data = NULL, checksum = NULL WHERE data_version = ?",
            (data_version,),
        )
    )


def test_an_unreadable_upstream_result_is_recomputed_in_the_batch(
    tmp_path: Path,
) -> None:
    """A lost upstream blob is computed again by the pass that needs it, counted as computed."""
    g, _, n = docs_graph(tmp_path / "store")
    g.process_batch(["ab", "cde"], [n["parse"]])
    victim = next(r for r in g.store.index.records() if g.store.load(r) == 3)
    lose_value(g.store, victim.data_version)
    CALLS.clear()
    stats = g.process_batch(["ab", "cde"], [n["square"]])
    assert stats.failures == [] and stats.completed == [0, 1]
    assert "Parse cde" in CALLS and "Parse ab" not in CALLS
    assert (stats.nodes[n["parse"]].computed, stats.nodes[n["parse"]].cached) == (1, 1)
    CALLS.clear()
    stats = g.process_batch(["ab", "cde"], [n["square"]])
    assert stats.completed == [0, 1] and CALLS == [] and stats.computed == 0


def test_constant_run_nodes_complete_once_bound() -> None:
    """A batch whose run node is a constant calls prep_fn per item and completes each one."""
    g = ProcessGraph(store=":memory:")
    text = g.add_constant_node(0, "text")
    seen: list[int] = []

    def prep(index: int, item: str) -> None:
        seen.append(index)
        text.set_value(item)

    stats = g.process_batch(["a", "b"], [text], prep)
    assert seen == [0, 1] and stats.completed == [0, 1] and stats.computed == 0


def test_batch_tuning_comes_from_the_graphs_settings() -> None:
    """A tiny batch_job_target_seconds sends one item per job; the default groups trivial items."""
    from incgraph import Settings
    from incgraph.executors.base import SerialExecutor

    class Counting(SerialExecutor):
        def __init__(self) -> None:
            self.jobs = 0

        def submit(self, fn: Any, /, *args: Any) -> Any:
            self.jobs += 1
            return super().submit(fn, *args)

    counts = []
    for tuned in (Settings(batch_job_target_seconds=1e-9), Settings()):
        g = ProcessGraph(store=":memory:", settings=tuned)
        text = g.add_constant_node(0, "text")
        shout = g.add_node(1, Shout, {"text": text})
        executor = Counting()
        g.process_batch([f"item {i}" for i in range(40)], [shout], executor=executor)
        counts.append(executor.jobs)
    assert counts[0] == 40 and counts[1] < 10
