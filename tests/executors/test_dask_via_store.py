"""Dask workers that read inputs from and save results to the store: only versions travel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from incgraph.core.processor import Processor
from incgraph.errors import NodeError
from incgraph.executors.dask import DaskExecutor
from incgraph.graph import ProcessGraph
from incgraph.run.via_store import store_address, worker_store
from incgraph.store import memory_store, open_store
from tests.executors.dask_arrays import expected_total

distributed = pytest.importorskip("distributed")

NODES = ["m1", "m2", "m3", "m4", "m5", "n1", "n2", "n3", "total"]
ROOT = Path(__file__).resolve().parents[2]


def drive(
    scheduler: str, store: str, megabytes: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start a driver process running the diamond of arrays on the cluster (a new process)."""
    environ = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests.executors.dask_arrays", scheduler, store, str(megabytes)]
    return subprocess.Popen(args, env=environ, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def outcome(driver: subprocess.Popen[str]) -> dict[str, Any]:
    """What a driver process printed, once it has exited successfully."""
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_gigabyte_of_arrays_never_passes_through_the_driver(
    dask_client: Any, tmp_path: Path
) -> None:
    """Eight 128 MB arrays on a folder store: the driver's peak memory stays flat; a new
    process's rerun is all hits."""
    store = str(tmp_path / "store")
    scheduler = dask_client.scheduler.address
    first = outcome(drive(scheduler, store, 128))
    assert first["computed"] == NODES and first["hits"] == []
    assert first["value"] == pytest.approx(expected_total(128))
    assert first["grown_mb"] < 300  # a value-shipping run grows by several arrays
    again = outcome(drive(scheduler, store, 128))
    assert again["computed"] == [] and again["hits"] == NODES
    assert again["value"] == first["value"]
    with open_store(store) as opened:
        assert len(list(opened.index.records())) == len(NODES)


@pytest.fixture
def team_cluster(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A two-process cluster whose workers see the bucket and the signing key in their
    environment (as a team's workers would): its client and the bucket's URL."""
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", "team-secret")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client, s3_bucket


def test_postgres_and_s3_compute_each_key_once_and_another_machine_hits(
    team_cluster: tuple[Any, str], postgres_url: str, tmp_path: Path
) -> None:
    """Two drivers at once over PostgreSQL + S3 compute each key once between them; a
    driver with another local cache folder later hits everything."""
    client, bucket = team_cluster
    with open_store(postgres_url, blobs=bucket, create=True) as team:
        location = str(team.location)
    scheduler = client.scheduler.address
    homes = [{"INCGRAPH_INDEX_HOME": str(tmp_path / f"home{i}")} for i in range(3)]
    drivers = [drive(scheduler, location, 8, homes[i]) for i in range(2)]
    both = [outcome(d) for d in drivers]
    computed = sorted(both[0]["computed"] + both[1]["computed"])
    assert computed == NODES  # each key once, by one driver or the other
    assert all(sorted(r["computed"] + r["hits"]) == NODES for r in both)
    assert both[0]["value"] == both[1]["value"] == pytest.approx(expected_total(8))
    later = outcome(drive(scheduler, location, 8, homes[2]))
    assert later["computed"] == [] and later["hits"] == NODES
    assert later["value"] == both[0]["value"]


class Double(Processor):
    def process(self, x: int) -> int:
        return 2 * x


class Fails(Processor):
    def process(self, x: int) -> int:
        raise ValueError(f"no good: {x}")


class Handle(Processor):
    def process(self, x: int) -> Any:
        return open(os.devnull)  # a result that cannot be pickled


def chain(store: Any, last: type[Processor] = Double, cache: bool = True) -> tuple[Any, Any]:
    """x -> a (Double) -> b (Double, uncached unless ``cache``) -> c (``last``)."""
    g = ProcessGraph(store=store)
    x = g.add_constant_node("x")
    x.set_value(5)
    a = g.add_node("a", Double, {"x": x})
    b = g.add_node("b", Double, {"x": a}, cache=cache)
    return g, g.add_node("c", last, {"x": b})


def test_workers_save_what_the_driver_records(dask_client: Any, tmp_path: Path) -> None:
    """The workers save each result's row and blob; the driver's run log lists them as
    written and a serial rerun in this process hits them."""
    g, c = chain(tmp_path / "store")
    assert g.run_upto(c, executor=DaskExecutor(dask_client)) == 40
    assert sorted(n.label for n in g.last_run.computed) == ["a", "b", "c"]
    g2, c2 = chain(tmp_path / "store")
    assert g2.run_upto(c2, executor="serial") == 40
    assert sorted(n.label for n in g2.last_run.hits) == ["a", "b", "c"]
    first_run = g2.store.runs()[0]
    assert (first_run.computed, first_run.hits) == (3, 0)


def test_an_uncached_node_between_stored_ones(dask_client: Any, tmp_path: Path) -> None:
    """An uncached result travels as a value into the next job; the stored ones do not."""
    g, c = chain(tmp_path / "store", cache=False)
    assert g.run_upto(c, executor=DaskExecutor(dask_client)) == 40
    g2, c2 = chain(tmp_path / "store", cache=False)
    assert g2.run_upto(c2, executor=DaskExecutor(dask_client)) == 40
    assert [n.label for n in g2.last_run.computed] == ["b"]  # same value: c is a hit


def test_a_failing_process_names_its_node(dask_client: Any, tmp_path: Path) -> None:
    """process() raising in a worker fails the run with a NodeError naming the node."""
    g, c = chain(tmp_path / "store", last=Fails)
    with pytest.raises(NodeError, match="no good: 20") as info:
        g.run_upto(c, executor=DaskExecutor(dask_client))
    assert info.value.node == "c"
    assert sorted(n.label for n in g.last_run.computed) == ["a", "b"]


def test_an_unpicklable_result_names_its_node(dask_client: Any, tmp_path: Path) -> None:
    """A result the worker cannot store fails its node with a NodeError naming it."""
    g, c = chain(tmp_path / "store", last=Handle)
    with pytest.raises(NodeError, match="TextIOWrapper") as info:
        g.run_upto(c, executor=DaskExecutor(dask_client))
    assert info.value.node == "c"


class Pad(Processor):
    def process(self, x: int) -> bytes:
        return bytes(200_000) + str(x).encode()  # too large to live in its index row


class Size(Processor):
    def process(self, data: bytes) -> int:
        return len(data)


def test_an_input_whose_blob_is_gone_is_computed_again(dask_client: Any, tmp_path: Path) -> None:
    """When a worker cannot read a hit input's blob, the run recomputes it and stays right."""

    def padded() -> tuple[ProcessGraph, Any]:
        g = ProcessGraph(store=tmp_path / "store")
        pad = g.add_node("pad", Pad, {"x": 7})
        return g, g.add_node("size", Size, {"data": pad})

    g, size = padded()
    assert g.run_upto(size, executor="serial") == 200_001
    for path in (tmp_path / "store" / "blobs").rglob("*"):
        if path.is_file():
            path.unlink()
    g2, size2 = padded()
    assert g2.run_upto(size2, force=[size2], executor=DaskExecutor(dask_client)) == 200_001
    assert sorted(n.label for n in g2.last_run.computed) == ["pad", "size"]


def test_memory_stores_and_via_store_false_ship_values(dask_client: Any, tmp_path: Path) -> None:
    """Without a location workers can open, or with via_store=False, values travel in jobs."""
    executor = DaskExecutor(dask_client)
    assert store_address(memory_store(), executor) is None
    with open_store(tmp_path / "store") as store:
        assert store_address(store, DaskExecutor(dask_client, via_store=False)) is None
        address = store_address(store, executor)
        assert address is not None and address.location == str(tmp_path / "store")
    g, c = chain(memory_store())
    assert g.run_upto(c, executor=executor) == 40
    g2, c2 = chain(tmp_path / "shipped")
    assert g2.run_upto(c2, executor=DaskExecutor(dask_client, via_store=False)) == 40


def test_a_worker_opens_each_store_once(dask_client: Any, tmp_path: Path) -> None:
    """worker_store keeps one open store per address in a process."""
    with open_store(tmp_path / "store") as store:
        address = store_address(store, DaskExecutor(dask_client))
    assert address is not None
    assert worker_store(address) is worker_store(address)


def test_workers_without_the_signing_key_say_where_to_set_it(
    dask_client: Any, tmp_path: Path
) -> None:
    """A signed store whose key the workers lack fails naming the node and the variable."""
    g, c = chain(open_store(tmp_path / "store", hmac_key="driver-only"))
    with pytest.raises(NodeError, match="INCGRAPH_HMAC_KEY") as info:
        g.run_upto(c, executor=DaskExecutor(dask_client))
    assert info.value.node == "a"
