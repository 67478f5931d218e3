"""Results are immutable once computed: nothing a consumer or the caller does to a value
changes what is stored, what a later hit returns, or what another consumer sees."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from incgraph import ProcessGraph, Processor
from incgraph.core.graph import Node

CALLS: list[str] = []


class MakeList(Processor):
    def process(self, n: int) -> list[int]:
        CALLS.append("make")
        return list(range(n))


class AppendAndCount(Processor):
    def process(self, xs: list[int]) -> int:
        CALLS.append("append")
        xs.append(99)
        return len(xs)


class Count(Processor):
    def process(self, xs: list[int]) -> int:
        CALLS.append("count")
        return len(xs)


class Identity(Processor):
    def process(self, xs: list[int]) -> list[int]:
        return xs


class MakeArray(Processor):
    def process(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.float64)


class SubtractInPlace(Processor):
    def process(self, x: np.ndarray) -> float:
        x -= 1
        return float(x.sum())


class MakeFrame(Processor):
    def process(self, n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": range(n)})


class AddColumn(Processor):
    def process(self, df: pd.DataFrame) -> int:
        df["b"] = 1
        return len(df.columns)


def _graph(store: Path | str, n: int = 3) -> tuple[ProcessGraph, Node, Node, Node]:
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeList, {"n": n})
    mutate = g.add_node("append", AppendAndCount, {"xs": make})
    count = g.add_node("count", Count, {"xs": make})
    return g, make, mutate, count


@pytest.fixture(params=["folder", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An on-disk store folder, or one store in memory shared by the graphs of a test."""
    if request.param == "folder":
        return tmp_path / "store"
    from incgraph.store import memory_store

    return memory_store()


def test_consumer_mutating_its_input_does_not_change_the_stored_result(store: Any) -> None:
    """A consumer appending to its input in the producer's run leaves the stored result intact."""
    g, _, mutate, _ = _graph(store)
    assert g.run_upto(mutate) == 4
    CALLS.clear()
    fresh, make2, _, _ = _graph(store)
    assert fresh.run_upto(make2) == [0, 1, 2]
    assert CALLS == []  # a hit, served as it was computed


def test_every_consumer_sees_the_value_as_computed(store: Any) -> None:
    """A consumer running after another that mutated the shared input sees the pristine value."""
    g, _, mutate, count = _graph(store)
    assert g.run_upto([mutate, count]) == 3
    assert g.last_run.values[mutate] == 4


def test_consumers_of_a_hit_each_get_their_own_value(store: Any) -> None:
    """Consumers computing from a stored (hit) input do not see each other's mutations."""
    g, make, _, _ = _graph(store)
    g.run_upto(make)
    g2, _, mutate, count = _graph(store)
    assert g2.run_upto([mutate, count]) == 3


def test_caller_mutating_a_computed_result_does_not_change_later_hits(store: Any) -> None:
    """Appending to the list run_upto returned does not change what the next run_upto returns."""
    g, make, _, _ = _graph(store)
    first = g.run_upto(make)
    first.append(7)
    CALLS.clear()
    assert g.run_upto(make) == [0, 1, 2]
    assert CALLS == []


def test_caller_mutating_a_loaded_hit_does_not_change_later_hits(store: Any) -> None:
    """A value loaded from a hit is the caller's own: mutating it changes no later hit."""
    g, make, _, _ = _graph(store)
    g.run_upto(make)
    loaded = g.run_upto(make)
    loaded.append(7)
    assert g.run_upto(make) == [0, 1, 2]


def test_target_read_by_another_target_is_returned_as_computed(store: Any) -> None:
    """When a mutating consumer is in the same run, the target's returned value is pristine."""
    g, make, mutate, _ = _graph(store)
    g.run_upto([mutate, make])
    assert g.last_run.values[make] == [0, 1, 2]


def test_result_passed_through_unchanged_does_not_alias_its_input(store: Any) -> None:
    """A processor returning its input as is: mutating one result changes neither stored value."""
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeList, {"n": 2})
    same = g.add_node("same", Identity, {"xs": make})
    count = g.add_node("append", AppendAndCount, {"xs": same})
    assert g.run_upto(count) == 3
    g2 = ProcessGraph(store=store)
    make2 = g2.add_node("make", MakeList, {"n": 2})
    same2 = g2.add_node("same", Identity, {"xs": make2})
    assert g2.run_upto(same2) == [0, 1]
    assert g2.run_upto(make2) == [0, 1]


def test_numpy_in_place_subtraction_leaves_the_stored_array(store: Any) -> None:
    """``x -= 1`` on an input array does not change the producer's stored array."""
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeArray, {"n": 5})
    sub = g.add_node("sub", SubtractInPlace, {"x": make})
    assert g.run_upto(sub) == 5.0
    g2 = ProcessGraph(store=store)
    make2 = g2.add_node("make", MakeArray, {"n": 5})
    np.testing.assert_array_equal(g2.run_upto(make2), np.arange(5.0))


def test_large_array_mutated_in_place_leaves_the_stored_array(store: Any) -> None:
    """The same holds for an array large enough to be stored as its own file."""
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeArray, {"n": 300_000})
    sub = g.add_node("sub", SubtractInPlace, {"x": make})
    g.run_upto(sub)
    g2 = ProcessGraph(store=store)
    make2 = g2.add_node("make", MakeArray, {"n": 300_000})
    assert float(g2.run_upto(make2)[0]) == 0.0


def test_pandas_column_assignment_leaves_the_stored_frame(store: Any) -> None:
    """``df["b"] = 1`` on an input frame does not add the column to the stored frame."""
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeFrame, {"n": 4})
    add = g.add_node("add", AddColumn, {"df": make})
    assert g.run_upto(add) == 2
    g2 = ProcessGraph(store=store)
    make2 = g2.add_node("make", MakeFrame, {"n": 4})
    assert list(g2.run_upto(make2).columns) == ["a"]


def test_fanout_members_each_get_their_own_shared_input(store: Any) -> None:
    """Nodes of one add_nodes fan-out do not see a sibling's mutation of their shared input."""
    g = ProcessGraph(store=store)
    make = g.add_node("make", MakeList, {"n": 3})
    members = g.add_nodes(Tagged, {"xs": make}, [(f"t{i}", {"tag": i}) for i in range(4)])
    assert g.run_upto(members) == 4
    assert [g.last_run.values[m] for m in members] == [4, 4, 4, 4]


class Tagged(Processor):
    def process(self, xs: list[int], tag: int) -> int:
        xs.append(tag)
        return len(xs)


# -- constants -------------------------------------------------------------------------


def test_set_value_takes_a_copy(tmp_path: Path) -> None:
    """Mutating a value after set_value does not change what the run uses, nor its key."""
    g = ProcessGraph(store=tmp_path)
    c = g.add_constant_node("c", "c")
    count = g.add_node("count", Count, {"xs": c})
    value = [1, 2]
    c.set_value(value)
    value.append(3)
    assert g.run_upto(count) == 2
    fresh = ProcessGraph(store=tmp_path / "fresh")
    c2 = fresh.add_constant_node("c", "c", value=[1, 2])
    count2 = fresh.add_node("count", Count, {"xs": c2})
    assert fresh.run_upto(count2) == 2
    assert g.last_run.statuses[count].key == fresh.last_run.statuses[count2].key


def test_consumer_mutating_a_constant_does_not_change_it(tmp_path: Path) -> None:
    """A consumer appending to a constant's value changes neither the constant nor a sibling."""
    g = ProcessGraph(store=tmp_path)
    c = g.add_constant_node("c", "c", value=[1, 2])
    mutate = g.add_node("append", AppendAndCount, {"xs": c})
    count = g.add_node("count", Count, {"xs": c})
    assert g.run_upto([mutate, count]) == 2
    CALLS.clear()
    assert g.run_upto([mutate, count]) == 2
    assert CALLS == []
    assert c.value == [1, 2]


def test_constant_value_read_back_is_a_copy(tmp_path: Path) -> None:
    """``node.value`` hands out a copy: mutating it does not change the constant's data version."""
    g = ProcessGraph(store=tmp_path)
    c = g.add_constant_node("c", "c", value=[1, 2])
    count = g.add_node("count", Count, {"xs": c})
    g.run_upto(count)
    c.value.append(5)
    CALLS.clear()
    assert g.run_upto(count) == 2
    assert CALLS == []


# -- batches ---------------------------------------------------------------------------


def test_batch_consumers_do_not_see_each_others_mutations(tmp_path: Path) -> None:
    """In process_batch, a mutating consumer leaves the stored result and a sibling's input
    (every executor: tests/executors/test_immutable_inputs.py)."""
    g = ProcessGraph(store=tmp_path)
    c = g.add_constant_node("n", "n")
    make = g.add_node("make", MakeList, {"n": c})
    mutate = g.add_node("append", AppendAndCount, {"xs": make})
    count = g.add_node("count", Count, {"xs": make})
    with g:
        stats = g.process_batch([2, 3], [mutate, count], lambda i, item: c.set_value(item))
    assert stats.failures == []
    check = ProcessGraph(store=tmp_path)
    n2 = check.add_constant_node("n", "n")
    make2 = check.add_node("make", MakeList, {"n": n2})
    count2 = check.add_node("count", Count, {"xs": make2})
    for n in (2, 3):
        n2.set_value(n)
        assert check.run_upto(make2) == list(range(n))
        assert check.run_upto(count2) == n


class Handle:
    """Hashable by its ``n``, but not picklable (it holds a lock)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()

    def __incgraph_hash__(self) -> object:
        return self.n


class ReadHandle(Processor):
    def process(self, h: Handle) -> int:
        CALLS.append("read")
        return h.n


def test_unpicklable_constant_is_shared_and_hashed_at_each_run(tmp_path: Path) -> None:
    """A constant that cannot be copied is used as is, and a change to it is seen next run."""
    g = ProcessGraph(store=tmp_path)
    handle = Handle(1)
    c = g.add_constant_node("h", "h", value=handle)
    read = g.add_node("read", ReadHandle, {"h": c})
    assert g.run_upto(read) == 1
    assert c.value is handle
    handle.n = 2
    CALLS.clear()
    assert g.run_upto(read) == 2
    assert CALLS == ["read"]
