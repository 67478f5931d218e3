"""Drawing flows: mermaid stateDiagram-v2 like the seed's diagrams, and graphviz DOT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from incgraph.errors import ConfigurationError
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.render import write_image

from .test_seed_examples import grid_flow, sharded_flow


def test_plain_flow_matches_the_seed_diagram() -> None:
    """Seed 000's first diagram, exactly."""
    assert sharded_flow()().render() == (
        "stateDiagram-v2\n"
        "    state ShardedFlow {\n"
        "        direction LR\n"
        "        Shard --> Process\n"
        "    }"
    )


def join_flow() -> type[Flow]:
    class JoinFlow(Flow): ...

    @JoinFlow.register
    class Shard(Layer):
        def __call__(self) -> None: ...

    @JoinFlow.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class Process(Layer):
        def __call__(self, shard: Shard) -> None: ...

    @JoinFlow.register
    class Join(Layer):
        def __call__(self, process: Process) -> None: ...

    return JoinFlow


def test_foreach_join_diagram() -> None:
    """A ForEach read downstream is drawn fork -> tasks -> join, as in the seed."""
    text = join_flow()().render()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["stateDiagram-v2", "state JoinFlow {", "direction LR"]
    for expected in [
        "state fork_Process <<fork>>",
        "state join_Process <<join>>",
        'state "Process[0]" as Process_0',
        'state "Process[...]" as Process_2',
        'state "Process[N]" as Process_3',
        "Shard --> fork_Process",
        "fork_Process --> Process_0",
        "Process_3 --> join_Process",
        "join_Process --> Join",
    ]:
        assert expected in lines


def test_grid_diagram_uses_two_indices() -> None:
    """A two-parameter grid labels its tasks [0,0] ... [M,N] like the seed."""
    text = grid_flow()().render()
    assert 'state "Process[0,0]" as Process_0' in text
    assert 'state "Process[M,N]" as Process_3' in text


def test_chained_foreach_is_drawn_task_to_task() -> None:
    """An aligned ForEach (index=None) connects First[i] to Second[i] without a join."""

    class ChainedFlow(Flow): ...

    @ChainedFlow.register
    class Shard(Layer):
        def __call__(self) -> None: ...

    @ChainedFlow.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class First(Layer):
        def __call__(self, shard: Shard) -> None: ...

    @ChainedFlow.register(
        foreach=ForEach(parameters=[Parameter(layer=First, attribute="foo", index=None)])
    )
    class Second(Layer):
        def __call__(self, first: First) -> None: ...

    text = ChainedFlow().render()
    for i in range(4):
        assert f"First_{i} --> Second_{i}" in text
    assert "join" not in text
    assert "fork_Second" not in text


def test_dot_output() -> None:
    """DOT text has a node per state (forks and joins as diamonds) and the same arrows."""
    dot = join_flow()().render("dot")
    assert dot.startswith('digraph "JoinFlow" {')
    assert '"fork_Process" [label="fork", shape=diamond];' in dot
    assert '"Process_1" [label="Process[1]", shape=box];' in dot
    assert '"join_Process" -> "Join";' in dot


def test_unknown_format() -> None:
    """An unknown format raises ConfigurationError listing the valid ones."""
    with pytest.raises(ConfigurationError, match="use 'mermaid' or 'dot'"):
        join_flow()().render("svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_image(tmp_path: Path) -> None:
    """The DOT text renders to an image with graphviz."""
    out = write_image(join_flow()().render("dot"), tmp_path / "flow.png")
    assert out.stat().st_size > 0
