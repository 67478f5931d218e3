"""Building graphs: validation at add_node time, with messages that name node, input and fix."""

from __future__ import annotations

from typing import Any

import pytest

from incgraph import (
    ConstantNotSetError,
    GraphDefinitionError,
    InputTypeError,
    ProcessGraph,
    Processor,
)


class SumInt(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b


class ToStr(Processor):
    def process(self, x: int) -> str:
        return str(x)


class Model(Processor):
    def __init__(self, size: int) -> None:
        self.size = size

    def process(self, x: int) -> int:
        return x * self.size


@pytest.fixture
def graph() -> ProcessGraph:
    return ProcessGraph(store=":memory:")


def test_duplicate_id_is_rejected(graph: ProcessGraph) -> None:
    """A second node with the same id raises, naming the id and the node that holds it."""
    graph.add_node(1, SumInt, {"a": 1, "b": 2})
    with pytest.raises(
        GraphDefinitionError, match=r"node id 1 is already used by node 1 \(SumInt\)"
    ):
        graph.add_node(1, SumInt, {"a": 1, "b": 2})


def test_unknown_input_names_the_parameters(graph: ProcessGraph) -> None:
    """Binding an input process() does not take lists the inputs it does take."""
    with pytest.raises(
        GraphDefinitionError,
        match=r"node 1 \(SumInt\): unknown input 'c'; SumInt.process takes a, b",
    ):
        graph.add_node(1, SumInt, {"a": 1, "b": 2, "c": 3})


def test_missing_required_input(graph: ProcessGraph) -> None:
    """Leaving a required parameter unbound raises at add_node."""
    with pytest.raises(GraphDefinitionError, match=r"missing required input\(s\) 'b'"):
        graph.add_node(1, SumInt, {"a": 1})


def test_constant_of_wrong_type(graph: ProcessGraph) -> None:
    """An inline constant that does not fit the annotation raises InputTypeError (also a TypeError)."""
    with pytest.raises(TypeError, match=r"node 1 \(SumInt\): input 'a' expects int, got list"):
        graph.add_node(1, SumInt, {"a": [1], "b": 2})


def test_upstream_return_type_mismatch(graph: ProcessGraph) -> None:
    """An upstream processor annotated to return str cannot feed an int parameter."""
    c = graph.add_constant_node(0, "c", value=1)
    s = graph.add_node(1, ToStr, {"x": c})
    with pytest.raises(InputTypeError, match=r"expects int, but node 1 \(ToStr\) returns str"):
        graph.add_node(2, SumInt, {"a": s, "b": 1})


def test_set_value_is_checked_against_consumers(graph: ProcessGraph) -> None:
    """set_value with a value a consumer cannot take raises, naming the consumer and its input."""
    c = graph.add_constant_node(0, "c")
    graph.add_node(1, SumInt, {"a": c, "b": 2})
    with pytest.raises(InputTypeError, match=r"node 1 \(SumInt\): input 'a' expects int, got str"):
        c.set_value("nope")


def test_node_from_another_graph_is_rejected(graph: ProcessGraph) -> None:
    """Nodes can only read nodes of their own graph."""
    other = ProcessGraph(store=":memory:")
    c = other.add_constant_node(0, "c", value=1)
    with pytest.raises(GraphDefinitionError, match="from another graph"):
        graph.add_node(1, SumInt, {"a": c, "b": 1})


def test_bad_init_kwargs(graph: ProcessGraph) -> None:
    """node_init_kwargs that the constructor does not accept raise at add_node."""
    with pytest.raises(GraphDefinitionError, match=r"node_init_kwargs do not fit Model\(\)"):
        graph.add_node(1, Model, {"x": 1}, node_init_kwargs={"colour": "red"})


def test_not_a_processor(graph: ProcessGraph) -> None:
    """A class without process() is refused."""
    with pytest.raises(GraphDefinitionError, match="has no process"):
        graph.add_node(1, dict, {})  # type: ignore[arg-type]


def test_constant_id_keyword_and_name(graph: ProcessGraph) -> None:
    """add_constant_node accepts seed 003's id= spelling; name() gives the constant's name."""
    c = graph.add_constant_node(id=7, name="MyConst")
    assert c.id == 7 and c.name() == "MyConst" and c.is_constant


def test_unset_constant_raises_when_needed(graph: ProcessGraph) -> None:
    """Running a node whose constant was never set raises ConstantNotSetError naming it."""
    c = graph.add_constant_node(0, "MyConst")
    n = graph.add_node(1, SumInt, {"a": c, "b": 2})
    with pytest.raises(ConstantNotSetError, match=r"constant node 0 \(MyConst\) has no value"):
        graph.run_upto(n)


def test_set_value_on_processor_node_is_refused(graph: ProcessGraph) -> None:
    """Only constant nodes take set_value."""
    n = graph.add_node(1, SumInt, {"a": 1, "b": 2})
    with pytest.raises(GraphDefinitionError, match="not a constant node"):
        n.set_value(3)


def test_set_alias(graph: ProcessGraph) -> None:
    """node.set('value', v) (seed 003's spelling) sets the constant; other attributes are refused."""
    c = graph.add_constant_node(0, "c")
    c.set("value", 5)
    assert c.value == 5
    with pytest.raises(GraphDefinitionError):
        c.set("colour", 1)


def test_topological_sort_orders_inputs_first(graph: ProcessGraph) -> None:
    """Every node comes after all of its inputs, and only nodes the target needs are listed."""
    c = graph.add_constant_node(0, "c", value=1)
    a = graph.add_node(1, SumInt, {"a": c, "b": 1})
    b = graph.add_node(2, SumInt, {"a": c, "b": a})
    graph.add_node(3, SumInt, {"a": 1, "b": 1})  # unrelated
    d = graph.add_node(4, SumInt, {"a": b, "b": a})
    order = graph.topological_sort(d)
    assert [n.id for n in order] == [0, 1, 2, 4]
    assert [n.id for n in graph.topological_sort()] == [0, 1, 2, 3, 4]


def test_topological_sort_rejects_foreign_targets(graph: ProcessGraph) -> None:
    """Asking for a node of another graph is an error, not an empty order."""
    other = ProcessGraph(store=":memory:")
    n = other.add_node(1, SumInt, {"a": 1, "b": 1})
    with pytest.raises(GraphDefinitionError, match="not a node of this graph"):
        graph.topological_sort(n)


def test_var_keyword_processor_accepts_any_input(graph: ProcessGraph) -> None:
    """A process(**kwargs) binds any input names."""

    class Collect(Processor):
        def process(self, **kw: Any) -> dict[str, Any]:
            return kw

    n = graph.add_node(1, Collect, {"x": 1, "y": "z"})
    assert graph.run_upto(n) == {"x": 1, "y": "z"}


def test_add_nodes_builds_what_add_node_builds(graph: ProcessGraph) -> None:
    """add_nodes gives the same nodes, keys and results as one add_node call per node."""
    a = graph.add_constant_node("a", "a", value=10)
    bulk = graph.add_nodes(SumInt, {"a": a}, ((f"s{i}", {"b": i}) for i in range(3)))
    single = [graph.add_node(f"t{i}", SumInt, {"a": a, "b": i}) for i in range(3)]
    assert [n.id for n in bulk] == ["s0", "s1", "s2"]
    assert [graph.run_upto(n) for n in bulk] == [10, 11, 12]
    for b, s in zip(bulk, single, strict=True):
        assert b.bindings == s.bindings and b.code_version() == s.code_version()
        assert b.fixed_input_versions() == s.fixed_input_versions()
    with pytest.raises(InputTypeError, match=r"'a' expects int"):
        a.set_value("ten")  # every bulk-added node is a registered reader of the shared constant


def test_add_nodes_checks_each_nodes_own_inputs(graph: ProcessGraph) -> None:
    """A bad per-node input, a missing input or a reused id fails naming that node."""
    a = graph.add_constant_node("a", "a", value=1)
    with pytest.raises(InputTypeError, match=r"node s1 \(SumInt\): input 'b' expects int"):
        graph.add_nodes(SumInt, {"a": a}, [("s0", {"b": 1}), ("s1", {"b": "x"})])
    with pytest.raises(GraphDefinitionError, match=r"node m1 \(SumInt\): missing required"):
        graph.add_nodes(SumInt, {}, [("m0", {"a": 1, "b": 2}), ("m1", {"a": 1})])
    with pytest.raises(GraphDefinitionError, match="already used"):
        graph.add_nodes(SumInt, {"a": a}, [("d0", {"b": 1}), ("d0", {"b": 2})])
    with pytest.raises(InputTypeError, match=r"node w0 \(SumInt\): input 'a' expects int"):
        graph.add_nodes(SumInt, {"a": "shared"}, [("w0", {"b": 1}), ("w1", {"b": 2})])
    assert graph.add_nodes(SumInt, {"a": a}, []) == []


class Tagged(Processor):
    """Takes any inputs; only ``scale`` is annotated."""

    def process(self, scale: int = 1, **rest: Any) -> int:
        return scale * len(rest)


def test_add_nodes_still_checks_members_of_a_keyword_only_processor(graph: ProcessGraph) -> None:
    """Members of a process(**inputs) fan-out skip no check that could fail: an annotated input
    with a bad value, or a node of another graph, is still reported naming the member."""
    with pytest.raises(InputTypeError, match=r"node t1 \(Tagged\): input 'scale' expects int"):
        graph.add_nodes(Tagged, {}, [("t0", {"scale": 1, "x": 1}), ("t1", {"scale": "2", "x": 2})])
    other = ProcessGraph(store=":memory:").add_constant_node("o", "o", value=1)
    with pytest.raises(GraphDefinitionError, match=r"node u1 \(Tagged\): input 'x' is .*another"):
        graph.add_nodes(Tagged, {}, [("u0", {"x": 1}), ("u1", {"x": other})])
    nodes = graph.add_nodes(Tagged, {}, [(f"v{i}", {"x": i, "y": "any"}) for i in range(3)])
    assert [graph.run_upto(n) for n in nodes] == [2, 2, 2]


def test_add_nodes_marks_a_fan_out_only_when_members_differ_in_inline_inputs(
    graph: ProcessGraph,
) -> None:
    """Nodes whose own inputs are inline constants form one fan-out sharing the upstream nodes;
    a member binding a node of its own (or rebinding a shared one) makes it no fan-out, and
    that member is still a registered reader of the node it binds."""
    a = graph.add_constant_node("a", "a", value=1)
    b = graph.add_constant_node("b", "b", value=2)
    fan = graph.add_nodes(SumInt, {"a": a}, ((f"f{i}", {"b": i}) for i in range(3)))
    assert fan[0].fanout is not None and all(n.fanout is fan[0].fanout for n in fan)
    assert fan[0].fanout.shared == {"a": a}
    mixed = graph.add_nodes(SumInt, {"a": a}, [("m0", {"b": 1}), ("m1", {"b": b})])
    assert [n.fanout for n in mixed] == [None, None]
    rebound = graph.add_nodes(SumInt, {"a": a, "b": 0}, [("r0", {"b": 1}), ("r1", {"a": b})])
    assert [n.fanout for n in rebound] == [None, None]
    assert graph.run_upto(rebound[1]) == 2  # a=b (2), b=0
    with pytest.raises(InputTypeError, match=r"node m1 \(SumInt\): input 'b' expects int"):
        b.set_value("two")  # m1 reads b: set_value checks it
    assert graph.add_nodes(SumInt, {"a": a}, [("one", {"b": 1})])[0].fanout is None


def test_a_processor_instance_fails_at_add_node_naming_the_node() -> None:
    """Passing an instance instead of the class fails at add_node, naming the node and the fix."""

    class Scale(Processor):
        def __init__(self, factor: int = 2) -> None:
            self.factor = factor

        def process(self, x: int) -> int:
            return self.factor * x

    graph = ProcessGraph(store=":memory:")
    with pytest.raises(GraphDefinitionError) as info:
        graph.add_node("scaled", Scale(3), {"x": 1})
    message = str(info.value)
    assert message.startswith("node scaled: got an instance of Scale")
    assert "pass Scale itself" in message and "node_init_kwargs" in message
    assert "scaled" not in graph.nodes
    with pytest.raises(GraphDefinitionError, match="node many0: got an instance of Scale"):
        graph.add_nodes(Scale(), {}, [("many0", {"x": 1})])
    with pytest.raises(GraphDefinitionError, match="node f: 'text' is not a class"):
        graph.add_node("f", "text", {"x": 1})  # type: ignore[arg-type]


def test_explain_shows_small_constants_by_value_next_to_their_hash() -> None:
    """A small constant's plan row shows its value and data version; a large one only the hash."""
    from incgraph.hashing import data_version

    graph = ProcessGraph(store=":memory:")
    small = graph.add_constant_node(0, "small", value=100)
    big = graph.add_constant_node(1, "big", value="x" * 100)
    plan = graph.explain([small, big])
    assert plan[small].reason == f"value 100 ({data_version(100)[:12]}), set by the caller"
    assert plan[big].reason == f"value set by the caller ({data_version('x' * 100)[:12]})"
