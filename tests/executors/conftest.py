"""Executors shared by the tests of this folder: worker pools and clusters start once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from incgraph.executors.processes import ProcessExecutor

EXECUTOR_NAMES = ["serial", "threads", "processes", "asyncio", "dask"]


@pytest.fixture(scope="session")
def process_executor() -> Iterator[ProcessExecutor]:
    """Two loky worker processes, shared by every test that asks."""
    executor = ProcessExecutor(max_workers=2)
    yield executor
    executor.shutdown()


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A real two-process dask cluster (skipped when distributed is not installed)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def make_executor(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``make_executor(name)``: an executor by name; pools and clusters are the shared ones."""
    made: list[Any] = []

    def make(name: str) -> Any:
        if name == "processes":
            return request.getfixturevalue("process_executor")
        if name == "dask":
            from incgraph.executors.dask import DaskExecutor

            return DaskExecutor(request.getfixturevalue("dask_client"))
        from incgraph.executors import resolve_executor

        executor = resolve_executor(name)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown()
