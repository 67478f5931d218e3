"""Threads and asyncio run independent nodes and batch items at the same time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from incgraph.executors.asyncio import AsyncioExecutor
from incgraph.executors.threads import ThreadExecutor
from incgraph.graph import ProcessGraph
from tests.executors.processors import ASYNC_STATE, Add, AsyncRendezvous, Rendezvous


@pytest.fixture
def rendezvous() -> Iterator[None]:
    """Two Rendezvous calls must meet inside process (a call alone times out and fails)."""
    Rendezvous.barrier = threading.Barrier(2, timeout=30)
    yield
    Rendezvous.barrier = None


@pytest.fixture
def async_rendezvous() -> Iterator[None]:
    ASYNC_STATE.update(parties=4, arrived=0, event=None)
    yield
    ASYNC_STATE.update(parties=0, arrived=0, event=None)


@pytest.mark.usefixtures("rendezvous")
def test_threads_run_independent_nodes_of_a_graph_at_once() -> None:
    """Two independent nodes meet at a barrier: they can only finish if they run together."""
    g = ProcessGraph(store=":memory:", executor=ThreadExecutor(max_workers=2))
    a = g.add_node(1, Rendezvous, {"x": 1})
    b = g.add_node(2, Rendezvous, {"x": 2})
    total = g.add_node(3, Add, {"a": a, "b": b})
    assert g.run_upto(total) == 5
    g.close()


@pytest.mark.usefixtures("rendezvous")
def test_threads_run_items_of_a_batch_at_once() -> None:
    """Two items of one pass meet at a barrier inside the shared instance."""
    g = ProcessGraph(store=":memory:")
    x = g.add_constant_node(0, "x")
    node = g.add_node(1, Rendezvous, {"x": x})
    stats = g.process_batch([1, 2], [node], parallel="threads")
    assert stats.failures == [] and stats.computed == 2


@pytest.mark.usefixtures("async_rendezvous")
def test_asyncio_awaits_items_of_a_batch_concurrently() -> None:
    """Four async items all wait for each other: they finish only if awaited together."""
    g = ProcessGraph(store=":memory:")
    x = g.add_constant_node(0, "x")
    node = g.add_node(1, AsyncRendezvous, {"x": x})
    stats = g.process_batch([1, 2, 3, 4], [node], executor="asyncio")
    assert stats.failures == [] and stats.computed == 4
    x.set_value(3)
    assert g.run_upto(node) == 30 and g.last_run.computed == []


@pytest.mark.usefixtures("async_rendezvous")
def test_asyncio_runs_independent_async_nodes_of_a_graph_concurrently() -> None:
    """Four independent async nodes of one graph run meet on the executor's loop."""
    executor = AsyncioExecutor()
    g = ProcessGraph(store=":memory:", executor=executor)
    nodes = [g.add_node(i, AsyncRendezvous, {"x": i}) for i in range(4)]
    g.run_upto(nodes)
    assert sorted(g.last_run.values.values()) == [0, 10, 20, 30]
    g.close()


def test_async_processor_runs_under_the_serial_executor_too() -> None:
    """An async def process works without the asyncio executor (its items gathered per job)."""
    ASYNC_STATE.update(parties=1, arrived=0, event=None)
    g = ProcessGraph(store=":memory:")
    x = g.add_constant_node(0, "x")
    node = g.add_node(1, AsyncRendezvous, {"x": x})
    assert g.process_batch([1, 2], [node]).computed == 2
    ASYNC_STATE.update(parties=0, arrived=0, event=None)


def test_parallel_async_maps_to_the_asyncio_executor() -> None:
    """parallel="async" runs a sync processor too (in the loop's worker threads)."""
    g = ProcessGraph(store=":memory:")
    x = g.add_constant_node(0, "x")
    node = g.add_node(1, Add, {"a": x, "b": 1})
    stats = g.process_batch(list(range(20)), [node], parallel="async")
    assert stats.computed == 20 and stats.completed == list(range(20))
