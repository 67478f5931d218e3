"""Artifacts are immutable once a layer made them: a layer changing what it read in place
changes neither the stored artifact nor what another layer reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.flow import Flow, ForEach, Layer, Parameter


def mutating_flow() -> tuple[type[Flow], dict[str, type[Layer]]]:
    """Data makes a list; Grow appends to it in place; Count reads it after Grow."""

    class Mutating(Flow): ...

    @Mutating.register
    class Data(Layer):
        def __call__(self) -> None:
            self.rows = [1, 2]
            self.table = {"a": [1]}

    @Mutating.register
    class Grow(Layer):
        def __call__(self, data: Data) -> None:
            data.rows.append(3)
            data.table["a"].append(2)
            self.n = len(data.rows)

    @Mutating.register
    class Count(Layer):
        def __call__(self, data: Data, grow: Grow) -> None:
            self.n = len(data.rows) + 10 * len(data.table["a"]) + 100 * grow.n

    return Mutating, {"Data": Data, "Grow": Grow, "Count": Count}


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_layer_mutating_an_artifact_it_read(tmp_path: Path, executor: str) -> None:
    """A later layer reads the artifact as made; a new run reads it as made, from the store."""
    Mutating, layers = mutating_flow()
    first = Mutating(store=tmp_path)(executor=executor)
    assert first[layers["Count"]].n == 312
    again = Mutating(store=tmp_path)()
    assert again.computed == []
    assert again[layers["Data"]].rows == [1, 2]
    assert again[layers["Data"]].table == {"a": [1]}


def test_foreach_tasks_each_read_their_own_copy(tmp_path: Path) -> None:
    """ForEach tasks mutating a shared upstream artifact do not see each other's changes."""

    class Grid(Flow): ...

    @Grid.register
    class Data(Layer):
        def __call__(self) -> None:
            self.rows = [0]
            self.shard(k=[1, 2, 3])

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="k")]))
    class Work(Layer):
        def __call__(self, data: Data) -> None:
            data.rows.append(data.k)
            self.seen = list(data.rows)

    @Grid.register
    class Join(Layer):
        def __call__(self, work: Work) -> None:
            self.all = list(work.seen)

    execution: Any = Grid(store=tmp_path)()
    assert execution[Join].all == [[0, 1], [0, 2], [0, 3]]
    again: Any = Grid(store=tmp_path)()
    assert again.computed == []
    assert again[Data].rows == [0]


def test_layers_in_this_process_share_the_runs_context(tmp_path: Path) -> None:
    """Layers get the run's own context (and its write-back buffer), never a reopened store."""
    from incgraph.flow import processors

    Mutating, _ = mutating_flow()
    before = dict(processors._OPENED)
    Mutating(store=tmp_path / "ctx")()
    assert before == processors._OPENED
