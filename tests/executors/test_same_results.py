"""Whichever executor runs a graph or a batch, results, keys and records are the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.core.graph import Node
from incgraph.graph import ProcessGraph
from incgraph.store import open_store
from tests.executors.conftest import EXECUTOR_NAMES
from tests.executors.processors import Add, Negate, Square


def build(store: Path, log: Path) -> tuple[ProcessGraph, Node, Node]:
    """x -> Square -> Negate; x -> Add(+1) : two independent branches, then their sum."""
    g = ProcessGraph(store=store)
    x = g.add_constant_node(0, "x")
    sq = g.add_node(1, Square, {"x": x}, node_init_kwargs={"log": str(log)})
    neg = g.add_node(2, Negate, {"y": sq}, node_init_kwargs={"log": str(log)})
    inc = g.add_node(3, Add, {"a": x, "b": 1})
    return g, x, g.add_node(4, Add, {"a": neg, "b": inc})


def stored(store: Path) -> set[tuple[str, str, str]]:
    s = open_store(store)
    try:
        return {(r.node, r.key, r.data_version) for r in s.index.records()}
    finally:
        s.close()


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the serial executor stores for the graph run and for the batch."""
    tmp = tmp_path_factory.mktemp("serial")
    g, x, total = build(tmp / "run", tmp / "log")
    x.set_value(5)
    value = g.run_upto(total)
    g2, _, total2 = build(tmp / "batch", tmp / "log")
    stats = g2.process_batch(list(range(10, 17)), [total2], progress=False)
    return {
        "value": value,
        "run": stored(tmp / "run"),
        "batch": stored(tmp / "batch"),
        "completed": stats.completed,
        "log": str(tmp / "log"),
    }


@pytest.mark.parametrize("name", EXECUTOR_NAMES[1:])
def test_graph_run_gives_the_same_value_and_keys(
    name: str, make_executor: Any, serial_reference: dict[str, Any], tmp_path: Path
) -> None:
    """run_upto under each executor returns the serial value and stores the same records."""
    g, x, total = build(tmp_path / "store", Path(serial_reference["log"]))
    x.set_value(5)
    assert g.run_upto(total, executor=make_executor(name)) == serial_reference["value"] == -19
    assert stored(tmp_path / "store") == serial_reference["run"]


@pytest.mark.parametrize("name", EXECUTOR_NAMES[1:])
def test_batch_gives_the_same_keys_and_failures(
    name: str, make_executor: Any, serial_reference: dict[str, Any], tmp_path: Path
) -> None:
    """A batch under each executor stores the serial records and fails the same item alike."""
    g, _, total = build(tmp_path / "store", Path(serial_reference["log"]))
    stats = g.process_batch(list(range(10, 17)), [total], executor=make_executor(name))
    assert stored(tmp_path / "store") == serial_reference["batch"]
    assert stats.completed == serial_reference["completed"] == [0, 1, 2, 4, 5, 6]
    (failure,) = stats.failures
    assert (failure.index, failure.item, failure.node.id) == (3, 13, 1)  # type: ignore[union-attr]
    assert isinstance(failure.exception, ValueError)
    assert "unlucky 13" in failure.traceback and "processors.py" in failure.traceback
