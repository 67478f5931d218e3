"""Seed 003's batch examples and recipes, as written (with DESIGN's typo fixes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from incgraph.core.processor import Processor
from incgraph.graph import ProcessGraph


class SumInt(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b


def test_seed_batch_example_runs_and_persists_each_item(tmp_path: Path) -> None:
    """The seed's batch example runs with no failures and writes one JSON per item."""
    graph = ProcessGraph()  # the default store (redirected into a temp folder by conftest)

    node_const = graph.add_constant_node(id=0, name="MyConst")
    node1 = graph.add_node(1, SumInt, {"a": node_const, "b": 200})

    def prep_fn(index: int, item: Any) -> None:
        # Initialize constants based on the item.
        node_const.set_value(item)
        # You must persist the data for batch running.
        graph.persist(tmp_path / f"persist_file{index}.json")

    # Results will be saved into the persisted files.
    stats = graph.process_batch(
        batch_items=[10, 9, 21, 5],
        run_nodes=[node1],
        prep_fn=prep_fn,
    )

    # In case of failures, this list will contain each index, item and exception for failures.
    assert len(stats.failures) == 0

    outputs = [
        json.loads((tmp_path / f"persist_file{i}.json").read_text())["nodes"]["1"]["output"]
        for i in range(4)
    ]
    assert outputs == [210, 209, 221, 205]
    assert stats.completed == [0, 1, 2, 3]


def test_seed_batch_example_with_graph_nodes_spelling(tmp_path: Path) -> None:
    """``nodes[0].set_value(item)`` works too when ``nodes`` is the graph's id -> node map."""
    graph = ProcessGraph(store=tmp_path / "store")
    nodes = graph.nodes
    graph.add_constant_node(id=0, name="MyConst")
    node1 = graph.add_node(1, SumInt, {"a": nodes[0], "b": 200})

    def prep_fn(index: int, item: Any) -> None:
        nodes[0].set_value(item)

    stats = graph.batch_process(batch_items=[1, 2], run_nodes=[node1], prep_fn=prep_fn)
    assert (len(stats.failures), stats.computed) == (0, 2)


# -- the breadth-first recipes -----------------------------------------------------------

LOG: list[str] = []


class Heavy(Processor):
    """A resource-intensive stand-in: logs construction, release and each call."""

    def __init__(self) -> None:
        LOG.append(f"init {self.name()}")

    def release(self) -> None:
        LOG.append(f"release {self.name()}")


class Source(Heavy):
    def process(self, x: int) -> int:
        return x + 1


class LLMSummary(Heavy):
    resource: ClassVar[str | None] = "llm"

    def process(self, x: int) -> int:
        return x * 2


class LLMCuration(Heavy):
    resource: ClassVar[str | None] = "llm"

    def process(self, x: int) -> int:
        return x * 3


class StableDiffusion(Heavy):
    resource: ClassVar[str | None] = "stable-diffusion"

    def process(self, x: int) -> int:
        return x - 1


class Combine(Heavy):
    def process(self, a: int, b: int) -> int:
        return a + b


def seed_graph(store: Path) -> tuple[ProcessGraph, Any, Any]:
    """The seed's diagram: 1 -> 2; 2 -> 3, 4, 5; 4, 5 -> 6 (node 1 is the item's constant)."""
    graph = ProcessGraph(store=store)
    node1 = graph.add_constant_node(id=1, name="source")
    node2 = graph.add_node(2, Source, {"x": node1})
    graph.add_node(3, StableDiffusion, {"x": node2})
    node4 = graph.add_node(4, LLMSummary, {"x": node2})
    node5 = graph.add_node(5, LLMCuration, {"x": node2})
    node6 = graph.add_node(6, Combine, {"a": node4, "b": node5})
    return graph, node1, node6


BATCH = [3, 1, 4, 1, 5]


def test_seed_breadth_first_recipe_runs_as_written(tmp_path: Path) -> None:
    """The hand-written breadth-first loop runs each node over the batch, then resets."""
    graph, node1, node6 = seed_graph(tmp_path / "store")
    LOG.clear()

    final_node = node6
    for node in graph.topological_sort(final_node):
        for source in BATCH:
            # Any initializations for this batch.
            graph.persist(tmp_path / "persist" / f"{source}.json")
            node1.set("value", source)
            # Run the current node.
            graph.run_upto(node)

        graph.release_resources()

    # A good idea to explicitly release resources once all processing is done.
    graph.release_resources()

    assert graph.run_upto(node6) == (5 + 1) * 5
    # every heavy node constructed once per pass, and released before the next pass
    assert LOG.count("init LLMSummary") == 1
    assert LOG.index("release LLMSummary") < LOG.index("init LLMCuration")


def test_seed_further_optimizations_recipe_runs_as_written(tmp_path: Path) -> None:
    """The grouped recipe keeps LLM instances across LLM passes and releases before others."""
    graph, node1, node6 = seed_graph(tmp_path / "store")
    graph.add_node(7, StableDiffusion, {"x": node6})
    final_node = graph.nodes[7]
    LOG.clear()

    sorted_nodes = graph.topological_sort(final_node)
    for i_node, node in enumerate(sorted_nodes):
        for source in BATCH:
            node1.set("value", source)
            graph.run_upto(node)

        # Hard reset if needed.
        next_node = sorted_nodes[i_node + 1] if i_node + 1 < len(sorted_nodes) else None
        if node.name() in ["LLMSummary", "LLMCuration", "StableDiffusion"]:  # noqa: SIM102 (seed)
            # This node is uses expensive resources.
            if next_node is not None and node.name().startswith(
                "LLM"
            ) != next_node.name().startswith("LLM"):
                # And the next node uses different resources.
                graph.release_resources()

    assert [n.id for n in sorted_nodes] == [1, 2, 4, 5, 6, 7]
    assert LOG.index("init LLMCuration") < LOG.index("release LLMSummary")
    assert LOG.index("release LLMCuration") < LOG.index("init StableDiffusion")


def test_process_batch_does_the_recipes_grouping_by_itself(tmp_path: Path) -> None:
    """process_batch gives the recipe's results, sharing LLM instances and releasing before SD."""
    graph, node1, node6 = seed_graph(tmp_path / "store")
    paint = graph.add_node(7, StableDiffusion, {"x": node6})
    LOG.clear()

    stats = graph.process_batch(BATCH, [paint], lambda i, item: node1.set("value", item))

    assert stats.completed == list(range(len(BATCH)))
    assert [LOG.count(f"init {n}") for n in ("LLMSummary", "LLMCuration", "StableDiffusion")] == [
        1,
        1,
        1,
    ]
    assert LOG.index("init LLMCuration") < LOG.index("release LLMSummary")
    assert LOG.index("release LLMCuration") < LOG.index("init StableDiffusion")
    assert LOG.count("release Source") == 1  # light: kept to the end, then released
    node1.set_value(BATCH[0])
    assert graph.run_upto(paint) == (3 + 1) * 5 - 1
    assert graph.last_run.computed == []  # the batch's results are the graph's cache
