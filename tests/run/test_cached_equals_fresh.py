"""The cache's promise as a property: over random graphs and random edits between runs,
a cached rerun returns what a fresh run on an empty store returns, and only nodes whose
code, init kwargs or input values changed call ``process``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import GraphSpec, graph_edits, graph_specs

from incgraph import ProcessGraph, Processor
from incgraph.core.graph import Node

CALLS: list[str] = []


class Binary(Processor):
    """``process(a, b)`` with an init kwarg ``k``; each kind defines :meth:`combine`."""

    def __init__(self, k: int) -> None:
        self.k = k

    def process(self, a: int, b: int) -> int:
        CALLS.append(type(self).__name__)
        return self.combine(a, b) + self.k

    def combine(self, a: int, b: int) -> int:
        raise TypeError("a kind of Binary defines combine()")


class Add(Binary):
    def combine(self, a: int, b: int) -> int:
        return a + b


class Sub(Binary):
    def combine(self, a: int, b: int) -> int:
        return a - b


class Mod3(Binary):
    def combine(self, a: int, b: int) -> int:
        return (a + b) % 3


class Max(Binary):
    def combine(self, a: int, b: int) -> int:
        return max(a, b)


PROCESSORS: dict[str, type[Binary]] = {"add": Add, "sub": Sub, "mod3": Mod3, "max": Max}


def build(spec: GraphSpec, store: Any) -> tuple[ProcessGraph, list[Node]]:
    """The graph of ``spec`` on ``store``; returns it and its processor nodes."""
    g = ProcessGraph(store=store)
    handles: list[Node] = [
        g.add_constant_node(f"c{i}", f"c{i}", value=v) for i, v in enumerate(spec.constants)
    ]
    nodes = []
    for j, n in enumerate(spec.nodes):
        node = g.add_node(
            f"n{j}",
            PROCESSORS[n.kind],
            {"a": handles[n.a], "b": handles[n.b]},
            node_init_kwargs={"k": n.k},
            version=n.version,
        )
        handles.append(node)
        nodes.append(node)
    return g, nodes


def keys_of(spec: GraphSpec) -> list[tuple[Any, ...]]:
    """What each node's cache key stands for: kind, version, k and its inputs' values."""
    values: list[int] = list(spec.constants)
    keys = []
    for n in spec.nodes:
        a, b = values[n.a], values[n.b]
        keys.append((n.kind, n.version, n.k, a, b))
        values.append(PROCESSORS[n.kind].combine(None, a, b) + n.k)  # type: ignore[arg-type]
    return keys


def run(spec: GraphSpec, store: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every node of ``spec`` on ``store``: values and statuses by node id."""
    g, nodes = build(spec, store)
    with g:
        g.run_upto(nodes)
        report = g.last_run
    values = {str(n.id): report.values[n] for n in nodes}
    return values, {str(n.id): report.statuses[n].status for n in nodes}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_cached_rerun_equals_fresh_run_after_random_edits(data: st.DataObject) -> None:
    """After every edit, each node's cached value equals a fresh run's, and each key never
    seen before is computed by a node of the run (``process`` runs only for computed nodes)."""
    spec = data.draw(graph_specs())
    edits = data.draw(st.lists(graph_edits(spec), min_size=1, max_size=4))
    with tempfile.TemporaryDirectory() as tmp:
        cached = Path(tmp) / "cached"
        seen: set[tuple[Any, ...]] = set()
        for step, edit in enumerate([None, *edits]):
            if edit is not None:
                spec = spec.edited(edit)
            CALLS.clear()
            values, statuses = run(spec, cached)
            calls = len(CALLS)
            fresh, _ = run(spec, Path(tmp) / f"fresh{step}")
            assert values == fresh
            keys = keys_of(spec)
            computed = [j for j, s in enumerate(statuses.values()) if s == "computed"]
            assert calls == len(computed)
            for key in set(keys):
                # nodes sharing a key: one the loop reaches first computes (which one follows
                # the ready waves, not the nodes' order; twins in one wave both compute)
                found = [statuses[f"n{j}"] for j, other in enumerate(keys) if other == key]
                if key in seen:
                    assert set(found) == {"hit"}, (step, key, found)
                else:
                    assert "computed" in found, (step, key, found)
            seen.update(keys)


class Grow(Processor):
    """Changes both its inputs in place, then combines them: must see them as computed."""

    def __init__(self, k: int) -> None:
        self.k = k

    def process(self, a: list[int], b: list[int]) -> list[int]:
        a.append(self.k)
        b.append(-1)
        return [sum(a) + 2 * sum(b), len(a) + len(b)]


def grow_model(spec: GraphSpec) -> list[list[int]]:
    """Each node's value when every input is seen as computed (never as a sibling left it)."""
    values: list[list[int]] = [[v] for v in spec.constants]
    for n in spec.nodes:
        a, b = [*values[n.a], n.k], [*values[n.b], -1]
        values.append([sum(a) + 2 * sum(b), len(a) + len(b)])
    return values[len(spec.constants) :]


def run_grow(spec: GraphSpec, store: Any) -> list[Any]:
    g = ProcessGraph(store=store)
    handles: list[Node] = [
        g.add_constant_node(f"c{i}", f"c{i}", value=[v]) for i, v in enumerate(spec.constants)
    ]
    nodes = []
    for j, n in enumerate(spec.nodes):
        node = g.add_node(
            f"n{j}", Grow, {"a": handles[n.a], "b": handles[n.b]}, node_init_kwargs={"k": n.k}
        )
        handles.append(node)
        nodes.append(node)
    with g:
        g.run_upto(nodes)
        return [g.last_run.values[n] for n in nodes]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutating_consumers_cached_rerun_equals_fresh_run(data: st.DataObject) -> None:
    """Nodes that change their inputs in place: cached reruns, fresh runs and the model agree."""
    spec = data.draw(graph_specs(max_nodes=6))
    edits = data.draw(st.lists(graph_edits(spec), min_size=1, max_size=3))
    with tempfile.TemporaryDirectory() as tmp:
        for step, edit in enumerate([None, *edits]):
            if edit is not None:
                spec = spec.edited(edit)
            expected = grow_model(spec)
            assert run_grow(spec, Path(tmp) / "cached") == expected
            assert run_grow(spec, Path(tmp) / f"fresh{step}") == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_explain_says_what_the_run_then_does(data: st.DataObject) -> None:
    """Over random graphs and edits, every node explain calls a hit is a hit in the run that
    follows, and every node it says computes is computed (forced targets included)."""
    spec = data.draw(graph_specs())
    edits = data.draw(st.lists(graph_edits(spec), min_size=1, max_size=4))
    executor = data.draw(st.sampled_from([None, "threads"]))
    with tempfile.TemporaryDirectory() as tmp:
        for edit in [None, *edits]:
            if edit is not None:
                spec = spec.edited(edit)
            g, nodes = build(spec, Path(tmp) / "store")
            forced = data.draw(st.lists(st.sampled_from(nodes), max_size=2, unique=True))
            with g:
                plan = g.explain(nodes, force=forced)
                g.run_upto(nodes, force=forced, executor=executor)
                statuses = g.last_run.statuses
            for node in nodes:
                expected = {"hit": "hit", "compute": "computed"}.get(plan[node].action)
                if expected is not None:
                    assert statuses[node].status == expected, (node, plan[node])
