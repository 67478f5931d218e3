"""Executions: reading artifacts after a run, and by id from a later process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from incgraph.errors import ExecutionNotFoundError, FlowError
from incgraph.flow import Accessor, Flow, ForEach, Layer, Parameter


def small_flow() -> tuple[type[Flow], type[Layer], type[Layer]]:
    class Small(Flow): ...

    @Small.register
    class Src(Layer):
        def __call__(self) -> None:
            self.name = "src"
            self.shard(x=[1, 2, 3])

    @Small.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Sq(Layer):
        def __call__(self, src: Src) -> None:
            self.y = src.x**2

    return Small, Src, Sq


def test_read_layers_after_a_run(tmp_path: Path) -> None:
    """execution[Layer], execution.layer(Layer) and the layer name all read its artifacts."""
    Small, Src, Sq = small_flow()
    execution = Small(store=tmp_path)()
    assert execution[Src].name == "src"
    assert execution.layer("Src").name == "src"
    assert list(execution.layer(Src).x) == [1, 2, 3]
    ys = execution[Sq].y
    assert isinstance(ys, Accessor)
    assert list(ys) == [1, 4, 9]
    assert execution.layer(Sq, index=-1).y == 9
    assert "Sq" in execution
    assert Sq in execution
    assert list(execution) == ["Src", "Sq"]


def test_layer_views_are_the_users_classes(tmp_path: Path) -> None:
    """A view is an instance of the layer class, so its methods work on the artifacts."""

    class WithMethod(Flow): ...

    @WithMethod.register
    class Stats(Layer):
        def __call__(self) -> None:
            self.values = [1, 2, 3]

        def mean(self) -> float:
            return sum(self.values) / len(self.values)

    view = WithMethod(store=tmp_path)()[Stats]
    assert isinstance(view, Stats)
    assert view.mean() == 2.0


def test_bad_layer_reads(tmp_path: Path) -> None:
    """Unknown layers, task indices on plain layers and out-of-range tasks give clear errors."""
    Small, Src, Sq = small_flow()
    execution = Small(store=tmp_path)()
    with pytest.raises(KeyError, match="no layer 'Nope'"):
        execution.layer("Nope")
    with pytest.raises(FlowError, match="Src is not a ForEach layer"):
        execution.layer(Src, index=0)
    with pytest.raises(IndexError, match="ran 3 task"):
        execution.layer(Sq, index=3)


def test_counts_and_summary(tmp_path: Path) -> None:
    """computed/cached list node labels; summary counts them."""
    Small, _, _ = small_flow()
    first = Small(store=tmp_path)()
    assert first.counts == {"computed": 5, "cached": 0}
    assert first.summary().endswith(": 5 computed, 0 cached")
    again = Small(store=tmp_path)()
    assert sorted(again.cached) == ["Sq", "Sq[0]", "Sq[1]", "Sq[2]", "Src"]


def test_execution_by_id_and_latest(tmp_path: Path) -> None:
    """flow.execution(id) reopens a past run; flow.execution() is the latest one."""
    Small, _, Sq = small_flow()
    first = Small(store=tmp_path)()
    second = Small(store=tmp_path)()
    assert first.id != second.id
    again = Small(store=tmp_path).execution(first.id)
    assert (again.id, again.flow) == (first.id, "Small")
    assert list(again[Sq].y) == [1, 4, 9]
    assert again.counts == first.counts
    assert Small(store=tmp_path).execution().id == second.id


def test_params_are_recorded(tmp_path: Path) -> None:
    """An execution records the params it ran with, also when reloaded by id."""
    Small, _, _ = small_flow()
    execution = Small(store=tmp_path)(lr=0.1, tag="x")
    assert Small(store=tmp_path).execution(execution.id).params == {"lr": 0.1, "tag": "x"}


def test_unknown_execution(tmp_path: Path) -> None:
    """An id the store does not hold raises ExecutionNotFoundError naming the flow."""
    Small, _, _ = small_flow()
    with pytest.raises(ExecutionNotFoundError, match="no execution 'nope' of Small"):
        Small(store=tmp_path).execution("nope")
    with pytest.raises(ExecutionNotFoundError, match="no execution of Small"):
        Small(store=tmp_path).execution()


SCRIPT = """
import sys
from incgraph.flow import Flow, ForEach, Layer, Parameter

class Later(Flow): ...

@Later.register
class Src(Layer):
    def __call__(self) -> None:
        self.shard(x=[1, 2, 3])

@Later.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
class Sq(Layer):
    def __call__(self, src: Src) -> None:
        self.y = src.x ** 2

store = sys.argv[1]
if sys.argv[2] == "run":
    if flow := Later(store=store):
        print(flow().id)
else:
    execution = Later(store=store).execution(sys.argv[2])
    print(list(execution[Sq].y), execution.layer(Sq, index=1).y)
"""


def test_execution_by_id_in_a_later_process(tmp_path: Path) -> None:
    """An execution id printed by one process is readable by another on the same store."""
    script = tmp_path / "later.py"
    script.write_text(textwrap.dedent(SCRIPT))
    store = str(tmp_path / "store")
    run = subprocess.run(
        [sys.executable, str(script), store, "run"], capture_output=True, text=True, check=True
    )
    execution_id = run.stdout.strip()
    read = subprocess.run(
        [sys.executable, str(script), store, execution_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip() == "[1, 4, 9] 4"
