"""Invalidating a flow's results: the next run recomputes exactly what was invalidated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from incgraph.cli import main
from incgraph.flow import Flow, ForEach, Layer, Parameter

TRAINED: list[float] = []


class Grid(Layer):
    def __call__(self) -> None:
        self.shard(lr=[0.1, 0.2, 0.3])


class Train(Layer):
    def __call__(self, grid: Grid) -> None:
        TRAINED.append(grid.lr)
        self.w = np.full(1000, grid.lr)


class Pick(Layer):
    def __call__(self, train: Train) -> None:
        self.best = max(float(w[0]) for w in train.w)


def _flow(tmp_path: Path) -> Flow:
    class Search(Flow): ...

    Search.register(Grid)
    Search.register(foreach=ForEach(parameters=[Parameter(layer="Grid", attribute="lr")]))(Train)
    Search.register(Pick)
    return Search(store=tmp_path / "s")


@pytest.mark.parametrize("downstream", [True, False])
def test_invalidated_foreach_task_is_recomputed_on_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], downstream: bool
) -> None:
    """`incgraph invalidate` of one ForEach task makes the next run compute that task
    (its layer's memo, which would skip every task, goes with it) and nothing else of it."""
    flow = _flow(tmp_path)
    assert flow()[Pick].best == 0.3
    TRAINED.clear()
    extra = [] if downstream else ["--no-downstream"]
    assert (
        main(["invalidate", "--store", str(tmp_path / "s"), "--node", "Search/Train[1]", *extra])
        == 0
    )
    capsys.readouterr()
    execution = flow()
    assert TRAINED == [0.2] and execution[Pick].best == 0.3
    assert "Train[1]" in execution.computed and "Train[0]" not in execution.computed
    TRAINED.clear()
    assert flow().computed == [] and TRAINED == []  # the memo is back
