"""Seeds 000/001 ("Scaling Out"): every example, with incgraph imports.

Typos fixed as DESIGN.md says: ``Parameter`` (not ``Parameters``) and
``@JoinFlow.register`` (not ``@JoinFlow.layer``). The seed shows printed strings
in quotes (``0 1 "a"``, ``0 'First' 1``); ``print`` writes them without quotes,
which is what these tests expect. Each flow runs with its store in ``tmp_path``;
the last test runs one with the default store (``$INCGRAPH_STORE``, pointed at
a temporary folder by ``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from incgraph.flow import Flow, ForEach, Layer, Parameter


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def sharded_flow() -> type[Flow]:
    class ShardedFlow(Flow): ...

    @ShardedFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2, 3])

    @ShardedFlow.register
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            print(list(shard.foo))
            print(shard.foo[1])
            print(shard.foo[1:])

    return ShardedFlow


def test_sharded_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sharded artifacts read downstream as an Accessor: list, index and slice as in the seed."""
    ShardedFlow = sharded_flow()
    if flow := ShardedFlow(store=tmp_path):
        flow()
    assert lines(capsys) == ["[1, 2, 3]", "2", "[2, 3]"]


def test_foreach_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ForEach over a two-element shard runs two tasks, each seeing its element and index."""

    class ForeachFlow(Flow): ...

    @ForeachFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2])

    @ForeachFlow.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            print(self.index, shard.foo)

    if flow := ForeachFlow(store=tmp_path):
        flow()
    assert lines(capsys) == ["0 1", "1 2"]


def test_foreach_with_unsharded_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An attribute that was not sharded is passed whole to every ForEach task."""

    class ForeachFlow(Flow): ...

    @ForeachFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.bar = "a"
            self.shard(foo=[1, 2])

    @ForeachFlow.register(
        foreach=ForEach(
            parameters=[
                Parameter(layer=Shard, attribute="foo"),
                Parameter(layer=Shard, attribute="bar"),
            ]
        )
    )
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            print(self.index, shard.foo, shard.bar)

    if flow := ForeachFlow(store=tmp_path):
        flow()
    assert lines(capsys) == ["0 1 a", "1 2 a"]


def grid_flow() -> type[Flow]:
    class GridFlow(Flow): ...

    @GridFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2, 3], bar=["a", "b"])

    @GridFlow.register(
        foreach=ForEach(
            parameters=[
                Parameter(layer=Shard, attribute="foo"),
                Parameter(layer=Shard, attribute="bar"),
            ]
        )
    )
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            print(self.index, shard.foo, shard.bar)

    return GridFlow


GRID_OUTPUT = ["0 1 a", "1 2 a", "2 3 a", "3 1 b", "4 2 b", "5 3 b"]


def test_grid_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two sharded parameters run the cartesian product, the first parameter varying fastest."""
    GridFlow = grid_flow()
    if flow := GridFlow(store=tmp_path):
        flow()
    assert lines(capsys) == GRID_OUTPUT


def test_foreach_join(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ForEach layer read downstream joins its tasks' attribute as an Accessor in task order."""

    class JoinFlow(Flow): ...

    @JoinFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2])

    @JoinFlow.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            self.foo = shard.foo

    @JoinFlow.register
    class Join(Layer):
        def __call__(self, process: Process) -> None:
            print(list(process.foo))
            print(process.foo[1])

    if flow := JoinFlow(store=tmp_path):
        flow()
    assert lines(capsys) == ["[1, 2]", "2"]


def test_chained_foreach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Parameter(index=None) maps task i of one ForEach to task i of the next."""

    class ChainedFlow(Flow): ...

    @ChainedFlow.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2, 3])

    @ChainedFlow.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class First(Layer):
        def __call__(self, shard: Shard) -> None:
            print(self.index, "First", shard.foo)
            self.foo = shard.foo

    @ChainedFlow.register(
        foreach=ForEach(parameters=[Parameter(layer=First, attribute="foo", index=None)])
    )
    class Second(Layer):
        def __call__(self, first: First) -> None:
            print(self.index, "Second", first.foo)

    if flow := ChainedFlow(store=tmp_path):
        flow()
    assert lines(capsys) == [
        "0 First 1",
        "1 First 2",
        "2 First 3",
        "0 Second 1",
        "1 Second 2",
        "2 Second 3",
    ]


def test_seed_rerun_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rerunning a seed flow on the same store is fully cached: no layer runs, nothing prints."""
    GridFlow = grid_flow()
    GridFlow(store=tmp_path)()
    assert lines(capsys) == GRID_OUTPUT
    execution = GridFlow(store=tmp_path)()
    assert lines(capsys) == []
    assert execution.computed == []


def test_default_store(capsys: pytest.CaptureFixture[str]) -> None:
    """Without store=, a flow uses the default store ($INCGRAPH_STORE) and caches across runs."""
    ShardedFlow = sharded_flow()
    if flow := ShardedFlow():
        flow()
    assert lines(capsys) == ["[1, 2, 3]", "2", "[2, 3]"]
    again = ShardedFlow()()
    assert again.computed == []
    assert lines(capsys) == []
