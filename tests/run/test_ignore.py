"""Processor.ignore: inputs and init kwargs left out of the cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph import GraphDefinitionError, ProcessGraph, Processor

CALLS: list[str] = []


class Embed(Processor):
    ignore = ("device", "verbose", "batch_size")

    def __init__(self, device: str = "cpu", scale: int = 1) -> None:
        self.device = device
        self.scale = scale

    def process(self, text: str, batch_size: int = 8, verbose: bool = False) -> int:
        CALLS.append(text)
        return len(text) * self.scale


class Length(Processor):
    def process(self, text: str) -> int:
        return len(text)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def _graph(tmp_path: Path) -> ProcessGraph:
    return ProcessGraph(store=tmp_path / "store")


def test_ignored_inline_input_change_is_a_hit(tmp_path: Path) -> None:
    """Changing an ignored inline input serves the stored result without computing."""
    g = _graph(tmp_path)
    assert g.run_upto(g.add_node(1, Embed, {"text": "abc", "batch_size": 8})) == 3
    g2 = _graph(tmp_path)
    node = g2.add_node(1, Embed, {"text": "abc", "batch_size": 64, "verbose": True})
    assert g2.run_upto(node) == 3
    assert CALLS == ["abc"]
    assert g2.last_run.computed == []


def test_ignored_init_kwarg_change_is_a_hit(tmp_path: Path) -> None:
    """Changing an ignored init kwarg (device) is a hit; a kept one (scale) recomputes."""
    g = _graph(tmp_path)
    g.run_upto(g.add_node(1, Embed, {"text": "ab"}, {"device": "cpu"}))
    g2 = _graph(tmp_path)
    assert g2.run_upto(g2.add_node(1, Embed, {"text": "ab"}, {"device": "cuda:0"})) == 2
    assert CALLS == ["ab"]
    g3 = _graph(tmp_path)
    assert g3.run_upto(g3.add_node(1, Embed, {"text": "ab"}, {"scale": 3})) == 6
    assert CALLS == ["ab", "ab"]


def test_ignored_upstream_node_change_is_a_hit(tmp_path: Path) -> None:
    """An ignored input bound to a constant node: changing the constant does not recompute."""
    g = _graph(tmp_path)
    bs = g.add_constant_node("bs", "batch size", value=8)
    text = g.add_constant_node("text", "text", value="abcd")
    node = g.add_node(1, Embed, {"text": text, "batch_size": bs})
    assert g.run_upto(node) == 4
    bs.set_value(128)
    assert g.run_upto(node) == 4
    text.set_value("xy")
    assert g.run_upto(node) == 2
    assert CALLS == ["abcd", "xy"]


def test_ignore_in_batches(tmp_path: Path) -> None:
    """process_batch keys items without the ignored input: a rerun with another value hits."""
    g = _graph(tmp_path)
    text = g.add_constant_node("text", "text")
    bs = g.add_constant_node("bs", "batch size")
    node = g.add_node(1, Embed, {"text": text, "batch_size": bs})

    def prep(size: int) -> Any:
        def prep_fn(i: int, item: str) -> None:
            text.set_value(item)
            bs.set_value(size)

        return prep_fn

    stats = g.process_batch(["a", "bb"], [node], prep(8))
    assert stats.completed == [0, 1] and CALLS == ["a", "bb"]
    stats = g.process_batch(["a", "bb", "ccc"], [node], prep(32))
    assert CALLS == ["a", "bb", "ccc"]
    assert stats.nodes[node].cached == 2


def test_explain_agrees_with_the_run(tmp_path: Path) -> None:
    """explain() builds the same key as the run: an ignored change is planned as a hit."""
    g = _graph(tmp_path)
    g.run_upto(g.add_node(1, Embed, {"text": "abc", "verbose": False}))
    g2 = _graph(tmp_path)
    node = g2.add_node(1, Embed, {"text": "abc", "verbose": True})
    assert g2.explain(node).decisions[-1].action == "hit"


def test_unknown_ignored_name_raises_at_add_node(tmp_path: Path) -> None:
    """A name in ignore that is neither an input nor an init kwarg fails at add_node, named."""

    class Typo(Processor):
        ignore = ("verbos",)

        def process(self, x: int, verbose: bool = False) -> int:
            return x

    g = _graph(tmp_path)
    with pytest.raises(GraphDefinitionError, match=r"node 7 \(Typo\).*'verbos'.*remove it"):
        g.add_node(7, Typo, {"x": 1})


def test_ignore_given_as_a_string_raises(tmp_path: Path) -> None:
    """ignore = "device" (a string, not a tuple) is refused with the fix."""

    class Bare(Processor):
        ignore = "device"

        def process(self, x: int, device: str = "cpu") -> int:
            return x

    g = _graph(tmp_path)
    with pytest.raises(GraphDefinitionError, match=r"node 1 \(Bare\).*ignore = \('device',\)"):
        g.add_node(1, Bare, {"x": 1})


def test_ignore_accepts_names_behind_var_keyword(tmp_path: Path) -> None:
    """A processor taking **kwargs may ignore any name it could receive."""

    class Loose(Processor):
        ignore = ("verbose",)

        def process(self, **inputs: Any) -> int:
            return int(inputs["x"])

    g = _graph(tmp_path)
    assert g.run_upto(g.add_node(1, Loose, {"x": 2, "verbose": 1})) == 2


def test_undeclared_processor_keys_are_unchanged(tmp_path: Path) -> None:
    """A processor declaring nothing keeps the key of (code, init kwargs, every input)."""
    from incgraph import hashing

    g = _graph(tmp_path)
    node = g.add_node(1, Length, {"text": "abc"})
    g.run_upto(node)
    expected = hashing.node_key(
        node.code_version(), hashing.data_version({}), {"text": hashing.data_version("abc")}
    )
    assert g.last_run.statuses[node].key == expected


@pytest.mark.parametrize("ignore", [5, "device", 1.5])
def test_an_ignore_that_is_not_a_tuple_of_names_is_refused_at_add_node(ignore: object) -> None:
    """`ignore = 5` or `ignore = "device"` fails at add_node with GraphDefinitionError naming the node."""

    class Bad(Processor):
        def process(self, x: int, device: str = "cpu") -> int:
            return x

    Bad.ignore = ignore  # type: ignore[assignment]
    graph = ProcessGraph(store=":memory:")
    with pytest.raises(GraphDefinitionError, match=r"node 1 .*ignore must be a tuple"):
        graph.add_node(1, Bad, {"x": 1})
