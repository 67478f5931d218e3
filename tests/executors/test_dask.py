"""The dask executor on a real two-process LocalCluster: instances per worker, release on all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from incgraph.executors.dask import DaskExecutor
from incgraph.graph import ProcessGraph
from tests.executors.processors import Negate, Square


def test_batch_releases_instances_on_every_worker_between_resources(
    dask_client: Any, tmp_path: Path
) -> None:
    """Each worker releases its Square before any Negate is constructed; workers stay up."""
    log = tmp_path / "log"
    g = ProcessGraph(store=tmp_path / "store")
    x = g.add_constant_node(0, "x")
    sq = g.add_node(1, Square, {"x": x}, node_init_kwargs={"log": str(log)})
    neg = g.add_node(2, Negate, {"y": sq}, node_init_kwargs={"log": str(log)})
    pids_before = {str(pid) for pid in dask_client.run(os.getpid).values()}
    stats = g.process_batch(range(30), [neg], executor=DaskExecutor(dask_client))
    assert stats.completed == [i for i in range(30) if i != 13]
    events = [line.split() for line in log.read_text().splitlines()]
    square_inits = [e for e in events if e[:2] == ["init", "Square"]]
    first_negate = next(i for i, e in enumerate(events) if e[:2] == ["init", "Negate"])
    released = [e for e in events[:first_negate] if e[:2] == ["release", "Square"]]
    assert 1 <= len(square_inits) <= 2 and len(released) == len(square_inits)
    assert {e[2] for e in square_inits} <= pids_before  # the cluster's own worker processes
    assert {str(pid) for pid in dask_client.run(os.getpid).values()} == pids_before


def test_executor_made_from_an_address_connects_and_closes_its_client(dask_client: Any) -> None:
    """DaskExecutor(address=...) makes its own client on first use and closes it on shutdown."""
    executor = DaskExecutor(address=dask_client.scheduler.address)
    assert executor.workers == 2
    assert executor.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    client = executor.client
    executor.shutdown()
    assert client.status == "closed"
