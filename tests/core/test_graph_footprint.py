"""A built graph: who reads whom, and what it costs in memory per node."""

from __future__ import annotations

import tracemalloc

import pytest

from incgraph import InputTypeError, ProcessGraph, Processor


class SumInt(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b


class Model(Processor):
    def __init__(self, size: int = 1) -> None:
        self.size = size

    def process(self, x: int) -> int:
        return x * self.size


def test_consumers_follow_nodes_added_after_they_were_asked() -> None:
    """consumers() lists readers added before and after an earlier consumers() call, in order."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    g.add_node(1, SumInt, {"a": c, "b": c})
    assert [(n.id, name) for n, name in g.consumers(c)] == [(1, "a"), (1, "b")]
    g.add_node(2, SumInt, {"a": 5, "b": c})
    g.add_nodes(SumInt, {"a": c}, [(3, {"b": 1}), (4, {"b": 2})])
    assert [(n.id, name) for n, name in g.consumers(c)] == [
        (1, "a"),
        (1, "b"),
        (2, "b"),
        (3, "a"),
        (4, "a"),
    ]
    assert g.consumers(g.nodes[4]) == []


def test_set_value_checks_a_reader_added_after_a_first_set_value() -> None:
    """set_value checks readers added since its previous call (the index is not stale)."""
    g = ProcessGraph(store=":memory:")
    c = g.add_constant_node(0, "c", value=1)
    c.set_value(2)
    g.add_node(1, SumInt, {"a": c, "b": 2})
    with pytest.raises(InputTypeError, match=r"node 1 \(SumInt\): input 'a' expects int"):
        c.set_value("two")


def test_nodes_without_init_kwargs_keep_their_own_when_given() -> None:
    """Nodes given no init kwargs have none; a node given some keeps a copy of its own."""
    g = ProcessGraph(store=":memory:")
    kwargs = {"size": 3}
    plain = g.add_node(1, Model, {"x": 1})
    sized = g.add_node(2, Model, {"x": 1}, node_init_kwargs=kwargs)
    members = g.add_nodes(Model, {}, [(3, {"x": 1}), (4, {"x": 2})], node_init_kwargs=kwargs)
    kwargs["size"] = 4
    assert plain.init_kwargs == {}
    assert sized.init_kwargs == {"size": 3}
    assert [m.init_kwargs for m in members] == [{"size": 3}, {"size": 3}]
    assert members[0].init_kwargs is not members[1].init_kwargs
    assert g.run_upto(sized) == 3 and g.run_upto(plain) == 1


def test_a_built_graph_costs_well_under_a_kilobyte_per_node() -> None:
    """Building 20k nodes of two inputs each allocates under 720 bytes per node."""
    g = ProcessGraph(store=":memory:")
    nodes = [g.add_constant_node(0, "seed", value=1)]
    nodes.append(g.add_node(1, SumInt, {"a": nodes[0], "b": nodes[0]}))
    n = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2, n + 2):
            nodes.append(g.add_node(i, SumInt, {"a": nodes[i - 1], "b": nodes[i // 2]}))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / n < 720, f"{grown / n:.0f} bytes per node"
