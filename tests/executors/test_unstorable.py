"""A result that cannot be pickled fails its own node (and item) only, the same on every executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import NodeError, UnstorableResultError
from incgraph.graph import ProcessGraph
from tests.executors.conftest import EXECUTOR_NAMES
from tests.executors.processors import Double, Unpicklable

PARTS = {
    "file": "result['model'].fh: _io.TextIOWrapper",
    "lock": "result: _thread.lock",
}


def build(tmp_path: Path, bad: tuple[int, ...], kind: str, executor: Any) -> tuple[Any, ...]:
    """x -> Unpicklable -> Double, on a store in ``tmp_path``."""
    (tmp_path / "model.txt").write_text("weights")
    g = ProcessGraph(store=tmp_path / "store", executor=executor)
    x = g.add_constant_node(0, "x")
    init = {"bad": bad, "kind": kind, "path": str(tmp_path / "model.txt")}
    made = g.add_node(1, Unpicklable, {"x": x}, node_init_kwargs=init)
    return g, x, made, g.add_node(2, Double, {"v": made})


@pytest.mark.parametrize("kind", ["file", "lock"])
@pytest.mark.parametrize("name", EXECUTOR_NAMES)
def test_an_unpicklable_result_fails_only_its_item_node(
    name: str, kind: str, make_executor: Any, tmp_path: Path
) -> None:
    """Items 3 and 7 fail at node 1 naming node, item and part; the 18 others are stored."""
    g, _, made, double = build(tmp_path, (3, 7), kind, make_executor(name))
    stats = g.process_batch(list(range(20)), [double], progress=False)
    assert stats.completed == [i for i in range(20) if i not in (3, 7)]
    assert sorted((f.index, f.node.label) for f in stats.failures) == [(3, "1"), (7, "1")]
    for failure in stats.failures:
        assert isinstance(failure.exception, UnstorableResultError)
        assert failure.exception.part == PARTS[kind]
        assert isinstance(failure.error, NodeError) and failure.error.node == made.label
        assert f"node 1 (Unpicklable), item {failure.index}: cannot store {PARTS[kind]}" in str(
            failure.error
        )
    assert stats.nodes[double].skipped == 2
    again = g.process_batch(list(range(20)), [double], progress=False)
    assert again.nodes[made].cached == 18 and again.nodes[double].cached == 18
    assert sorted(f.index for f in again.failures) == [3, 7]  # failures are not cached


@pytest.mark.parametrize("name", EXECUTOR_NAMES)
def test_run_upto_raises_a_node_error_naming_what_cannot_be_stored(
    name: str, make_executor: Any, tmp_path: Path
) -> None:
    """run_upto on an unpicklable result raises NodeError naming the node and the part."""
    g, x, made, double = build(tmp_path, (3,), "file", make_executor(name))
    x.set_value(3)
    with pytest.raises(NodeError, match=r"node 1 \(Unpicklable\).*result\['model'\]\.fh") as caught:
        g.run_upto(double)
    assert caught.value.node == made.label
    assert isinstance(caught.value.exception, UnstorableResultError)
    x.set_value(4)
    assert g.run_upto(double) == 16


def test_a_stop_on_the_first_failure_names_the_item(make_executor: Any, tmp_path: Path) -> None:
    """fault_tolerant=False raises the NodeError of the unstorable item, naming its index."""
    g, _, _, double = build(tmp_path, (2,), "lock", make_executor("serial"))
    with pytest.raises(NodeError, match=r"item 2: cannot store result: _thread\.lock"):
        g.process_batch(list(range(5)), [double], progress=False, fault_tolerant=False)


def test_an_uncached_node_in_a_worker_says_to_compute_it_in_process(
    make_executor: Any, tmp_path: Path
) -> None:
    """A cache=False node's unpicklable result cannot leave a worker: the fix says so."""
    (tmp_path / "model.txt").write_text("weights")
    g = ProcessGraph(store=tmp_path / "store", executor=make_executor("processes"))
    x = g.add_constant_node(0, "x")
    init = {"bad": (1,), "kind": "lock", "path": ""}
    made = g.add_node(1, Unpicklable, {"x": x}, node_init_kwargs=init, cache=False)
    stats = g.process_batch([0, 1, 2], [made], progress=False)
    assert stats.completed == [0, 2]
    assert "executor 'serial' or 'threads'" in str(stats.failures[0].error)


def test_depth_first_batches_fail_the_unstorable_item_only(
    make_executor: Any, tmp_path: Path
) -> None:
    """Depth-first, the unstorable item fails at node 1 and every other item completes."""
    g, _, made, double = build(tmp_path, (4,), "file", make_executor("threads"))
    stats = g.process_batch(
        list(range(10)), [double], progress=False, strategy="depth_first", chunk_size=3
    )
    assert stats.completed == [i for i in range(10) if i != 4]
    (failure,) = stats.failures
    assert (failure.index, failure.node) == (4, made)
    assert failure.exception.part == "result['model'].fh: _io.TextIOWrapper"  # type: ignore[attr-defined]
