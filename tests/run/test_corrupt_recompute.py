"""A result whose stored blob turns out corrupt is computed again and reported as computed."""

from __future__ import annotations

from pathlib import Path

from incgraph import ProcessGraph, Processor

CALLS: list[int] = []


class Blob(Processor):
    """A 40 KB result (a blob file of its own); every call is noted in CALLS."""

    def process(self, x: int) -> bytes:
        CALLS.append(x)
        return bytes([x % 256]) * 40_000


class Length(Processor):
    def process(self, data: bytes) -> int:
        return len(data) + data[0]


class Twice(Processor):
    def process(self, data: bytes) -> int:
        return 2 * len(data) + data[0]


def corrupt_every_blob(store: Path) -> int:
    """Overwrite a few bytes in the middle of every blob file; return how many."""
    files = [f for f in (store / "blobs").glob("*/*") if f.is_file()]
    for path in files:
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(b"garbage!")
    return len(files)


def test_run_upto_reports_the_recomputed_node_as_computed(tmp_path: Path) -> None:
    """A hit whose blob fails its checksum is recomputed: the report lists it as computed."""
    graph = ProcessGraph(store=tmp_path / "store")
    x = graph.add_constant_node(0, "x", value=7)
    blob = graph.add_node(1, Blob, {"x": x})
    graph.run_upto(blob)
    assert corrupt_every_blob(tmp_path / "store") == 1
    CALLS.clear()
    assert graph.run_upto(blob) == bytes([7]) * 40_000
    assert CALLS == [7]
    assert graph.last_run.computed == [blob] and graph.last_run.hits == []
    assert graph.last_run.statuses[blob].status == "computed"
    assert graph.run_upto(blob) == bytes([7]) * 40_000
    assert graph.last_run.hits == [blob]  # stored again


def test_a_batch_recomputes_a_corrupt_input_and_counts_it_computed(tmp_path: Path) -> None:
    """A downstream pass loading a corrupt input recomputes it; the item does not fail."""
    graph = ProcessGraph(store=tmp_path / "store")
    x = graph.add_constant_node(0, "x")
    blob = graph.add_node(1, Blob, {"x": x})
    length = graph.add_node(2, Length, {"data": blob})
    graph.process_batch([1, 2, 3], [blob], progress=False)
    assert corrupt_every_blob(tmp_path / "store") == 3
    CALLS.clear()
    stats = graph.process_batch([1, 2, 3], [length], progress=False)
    assert stats.failures == [] and stats.completed == [0, 1, 2]
    assert sorted(CALLS) == [1, 2, 3]
    assert (stats.nodes[blob].computed, stats.nodes[blob].cached) == (3, 0)
    assert stats.nodes[length].computed == 3
    twice = graph.add_node(3, Twice, {"data": blob})
    CALLS.clear()
    again = graph.process_batch([1, 2, 3], [twice], progress=False)
    assert CALLS == [] and again.nodes[blob].cached == 3  # the recomputed blobs were stored
