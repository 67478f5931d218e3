"""On every executor, a consumer changing its input in place changes neither the stored
result nor what a sibling consumer reads, in graph runs and in batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incgraph import ProcessGraph

from .conftest import EXECUTOR_NAMES
from .processors import AppendAndCount, Count, MakeList


def _check_stored(store: Path, ns: list[int]) -> None:
    """A new graph on ``store`` reads the producer's results (and the counts) as computed."""
    g = ProcessGraph(store=store)
    n = g.add_constant_node("n", "n")
    make = g.add_node("make", MakeList, {"n": n})
    count = g.add_node("count", Count, {"xs": make})
    for value in ns:
        n.set_value(value)
        assert g.run_upto(make) == list(range(value))
        assert g.run_upto(count) == value
        assert g.last_run.computed == []


@pytest.mark.parametrize("name", EXECUTOR_NAMES)
def test_run_upto_with_a_mutating_consumer(
    tmp_path: Path, name: str, make_executor: Callable[[str], Any]
) -> None:
    """run_upto: the sibling consumer counts the list as computed; the store keeps it."""
    g = ProcessGraph(store=tmp_path)
    n = g.add_constant_node("n", "n", value=3)
    make = g.add_node("make", MakeList, {"n": n})
    mutate = g.add_node("append", AppendAndCount, {"xs": make})
    count = g.add_node("count", Count, {"xs": make})
    assert g.run_upto([mutate, count], executor=make_executor(name)) == 3
    assert g.last_run.values[mutate] == 4
    _check_stored(tmp_path, [3])


@pytest.mark.parametrize("name", EXECUTOR_NAMES)
def test_process_batch_with_a_mutating_consumer(
    tmp_path: Path, name: str, make_executor: Callable[[str], Any]
) -> None:
    """process_batch: every item's results are stored as computed, whatever its consumers did."""
    g = ProcessGraph(store=tmp_path)
    n = g.add_constant_node("n", "n")
    make = g.add_node("make", MakeList, {"n": n})
    mutate = g.add_node("append", AppendAndCount, {"xs": make})
    count = g.add_node("count", Count, {"xs": make})
    stats = g.process_batch(
        [2, 3, 4], [mutate, count], lambda i, item: n.set_value(item), executor=make_executor(name)
    )
    assert stats.failures == []
    _check_stored(tmp_path, [2, 3, 4])
