"""graph.persist(path): every node's JSON-representable output, written only when it changes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from incgraph.core.processor import Processor
from incgraph.graph import ProcessGraph
from incgraph.settings import DEFAULT_SETTINGS

OUTPUT_LOAD_BYTES = DEFAULT_SETTINGS.persist_output_load_bytes


class Words(Processor):
    def process(self, text: str) -> list[str]:
        return text.split()


class Count(Processor):
    def process(self, words: list[str]) -> int:
        return len(words)


class Letters(Processor):
    def process(self, words: list[str]) -> set[str]:
        return {c for w in words for c in w}


class Padded(Processor):
    def process(self, n: int) -> str:
        return "x" * (2 * OUTPUT_LOAD_BYTES + n)


def text_graph(store: Any) -> ProcessGraph:
    """text -> Words -> Count; Words -> Letters (a set: not JSON); Count -> Padded (large)."""
    g = ProcessGraph(store=store)
    text = g.add_constant_node(0, "text")
    words = g.add_node(1, Words, {"text": text})
    count = g.add_node(2, Count, {"words": words})
    g.add_node(3, Letters, {"words": words})
    g.add_node(4, Padded, {"n": count})
    return g


def nodes(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())["nodes"]
    return loaded


def stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_run_upto_records_every_nodes_output(tmp_path: Path) -> None:
    """After run_upto, intermediate nodes' outputs are recorded too; non-JSON ones have none."""
    g = text_graph(tmp_path / "store")
    g.nodes[0].set_value("to be or not")
    path = tmp_path / "state.json"
    g.persist(path)
    g.run_upto([g.nodes[2], g.nodes[3]])
    got = nodes(path)
    assert got["0"]["output"] == "to be or not"
    assert got["1"]["output"] == ["to", "be", "or", "not"]
    assert got["2"]["output"] == 4
    assert "output" not in got["3"] and got["3"]["data_version"]  # a set: recorded, no output
    assert [got[k]["name"] for k in "123"] == ["Words", "Count", "Letters"]
    assert [got[k]["status"] for k in "123"] == ["computed"] * 3


def test_a_cached_rerun_loads_small_stored_results_into_a_new_file(tmp_path: Path) -> None:
    """Hits are recorded with their stored outputs when small; a large one has no output."""
    g = text_graph(tmp_path / "store")
    g.nodes[0].set_value("a bc")
    g.run_upto(g.nodes[4])
    g2 = text_graph(tmp_path / "store")  # a new process, in effect: nothing held in memory
    g2.nodes[0].set_value("a bc")
    path = tmp_path / "state.json"
    g2.persist(path)
    g2.run_upto(g2.nodes[4])
    got = nodes(path)
    assert [got[k]["status"] for k in "124"] == ["hit"] * 3
    assert got["1"]["output"] == ["a", "bc"] and got["2"]["output"] == 2
    assert got["2"]["duration_s"] >= 0 and len(got["2"]["cache_key"]) == 32
    assert "output" not in got["4"] and got["4"]["data_version"]  # too large to load for it


def test_a_cached_run_upto_leaves_the_file_untouched(tmp_path: Path) -> None:
    """Rerunning with nothing changed does not rewrite the record; a new input does."""
    g = text_graph(tmp_path / "store")
    g.nodes[0].set_value("one two")
    path = tmp_path / "state.json"
    g.persist(path)
    g.run_upto(g.nodes[2])
    before = stamp(path)
    g.run_upto(g.nodes[2])
    g.persist(path)
    assert stamp(path) == before and len(g.last_run.hits) == 2
    g.nodes[0].set_value("one two three")
    g.run_upto(g.nodes[2])
    assert stamp(path) != before and nodes(path)["2"]["output"] == 3


def test_a_cached_batch_persisting_per_item_rewrites_no_file(tmp_path: Path) -> None:
    """prep_fn persisting per item: a fully cached rerun leaves every item's file as it was."""
    g = text_graph(tmp_path / "store")
    text = g.nodes[0]
    items = ["a b", "c d e", "f", "g h i j"]

    def prep_fn(index: int, item: str) -> None:
        text.set_value(item)
        g.persist(tmp_path / "out" / f"item{index}.json")

    g.process_batch(items, [g.nodes[2], g.nodes[3]], prep_fn, progress=False)
    paths = [tmp_path / "out" / f"item{i}.json" for i in range(len(items))]
    before = [stamp(p) for p in paths]
    for _ in range(2):
        stats = g.process_batch(items, [g.nodes[2], g.nodes[3]], prep_fn, progress=False)
        assert stats.computed == 0 and [stamp(p) for p in paths] == before
    got = [nodes(p) for p in paths]
    assert [n["2"]["output"] for n in got] == [2, 3, 1, 4]
    assert [n["1"]["output"] for n in got][1] == ["c", "d", "e"]  # an intermediate node
    assert all("output" not in n["3"] for n in got)


def test_a_batch_rewrites_only_the_items_whose_record_changed(tmp_path: Path) -> None:
    """A batch over partly new items rewrites just the files whose item's state changed."""
    g = text_graph(tmp_path / "store")
    text = g.nodes[0]

    def prep_fn(index: int, item: str) -> None:
        text.set_value(item)
        g.persist(tmp_path / "out" / f"item{index}.json")

    g.process_batch(["a", "b c"], [g.nodes[2]], prep_fn, progress=False)
    first, second = tmp_path / "out" / "item0.json", tmp_path / "out" / "item1.json"
    before = stamp(first), stamp(second)
    g.process_batch(["a", "b c d"], [g.nodes[2]], prep_fn, progress=False)
    assert stamp(first) == before[0] and stamp(second) != before[1]
    changed = nodes(second)["2"]
    assert (changed["status"], changed["output"]) == ("computed", 3)


def test_a_batch_writes_only_the_files_its_prep_fn_asks_for(tmp_path: Path) -> None:
    """A path given to persist before a batch is not written per item, and is kept after it."""
    g = text_graph(tmp_path / "store")
    text = g.nodes[0]
    path = tmp_path / "graph.json"
    g.persist(path)
    g.process_batch(["a b", "c"], [g.nodes[2]], lambda i, item: text.set_value(item))
    assert not path.exists()
    text.set_value("x y z")
    g.run_upto(g.nodes[2])
    assert nodes(path)["2"]["output"] == 3
