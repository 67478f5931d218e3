"""Jobs whose inputs and result travel through the store, not through the driver.

Design note
-----------
With a `DaskExecutor` and a store that other processes can open (a folder, or
a PostgreSQL URL with its blobs in a folder or in object storage), the engine
sends a `StoredJob` instead of a job carrying input values: the store's
address (`StoreAddress`: its location without a password, its settings and
whether its blobs are signed; never a key or a credential, which the workers
read from their own environment), the node's job without its stored inputs,
the data versions of those inputs, and the record to save (the node's key and
lineage). The worker opens the store once per process (`worker_store`, cached
by address), loads each input (a private copy), computes, saves the result
(blob, then index row) and returns an `Outcome` whose value is a small `Saved`
marker. The driver records the key as saved (run log, lease released) and
loads a value only when it needs one (a target's value, a consumer computed
with values).

Inputs the driver holds as values (constants, inline values, results of
``cache=False`` nodes) travel in the job as before. An input whose blob turns
out gone or corrupt in the worker raises `InputNotStoredError`: the engine
then computes the node the value-shipping way, which recomputes what is
missing. Memory stores, and ``DaskExecutor(via_store=False)``, ship values.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

from incgraph.core.graph import Node
from incgraph.errors import (
    ConfigurationError,
    IncgraphError,
    NodeError,
    StoreCorruptError,
    StoreError,
    UnstorableResultError,
)
from incgraph.executors.dask import DaskExecutor
from incgraph.run.jobs import Outcome, WorkerJob, run_worker_job, send_to_worker, worker_job
from incgraph.settings import Settings
from incgraph.store import Store
from incgraph.store.postgres_database import is_postgres_url
from incgraph.store.protocols import Record

__all__ = [
    "InputNotStoredError",
    "Saved",
    "StoreAddress",
    "StoredJob",
    "compute_and_save_in_worker",
    "store_address",
    "submit_stored",
    "worker_store",
]


@dataclass(frozen=True)
class StoreAddress:
    """What a worker process needs to open the run's store itself (no secrets)."""

    location: str
    settings: Settings
    signed: bool


class Saved(NamedTuple):
    """The value of an `Outcome` whose result the worker saved: its blob's size."""

    size: int


class InputNotStoredError(IncgraphError):
    """A worker found no sound blob for an input's data version (the driver falls back)."""


@dataclass(frozen=True)
class StoredJob:
    """A `WorkerJob` whose stored inputs are data versions, with the record to save."""

    job: WorkerJob
    address: StoreAddress
    stored_inputs: dict[str, str]
    record: Record


def store_address(store: Store, executor: Any) -> StoreAddress | None:
    """The address workers open ``store`` by, when ``executor``'s workers should; else None.

    Only a `DaskExecutor` (unless made with ``via_store=False``) with a store
    that has a location (not a store in memory) and is writable qualifies.
    """
    if not isinstance(executor, DaskExecutor) or not executor.via_store:
        return None
    if store.location is None or store.read_only:
        return None
    return StoreAddress(_without_password(store.location), store.settings, store.blobs.signed)


def _without_password(location: str) -> str:
    """A PostgreSQL URL without its password (workers use ``PGPASSWORD`` or ``~/.pgpass``)."""
    if not is_postgres_url(location):
        return location
    scheme, sep, rest = location.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at or ":" not in auth:
        return location
    return f"{scheme}{sep}{auth.split(':', 1)[0]}@{host}"


_WORKER_STORES: dict[StoreAddress, Store] = {}
_STORES_LOCK = threading.Lock()


def worker_store(address: StoreAddress) -> Store:
    """The store at ``address``, opened once in this process (and kept for later jobs)."""
    with _STORES_LOCK:
        store = _WORKER_STORES.get(address)
        if store is None:
            store = _WORKER_STORES[address] = _open(address)
        return store


def _open(address: StoreAddress) -> Store:
    from incgraph.store import open_store

    try:
        return open_store(address.location, settings=address.settings, signing=address.signed)
    except (StoreError, ConfigurationError) as exc:
        raise StoreError(
            f"a worker could not open the store {address.location}: {exc}; the workers "
            "read their keys and credentials from their own environment "
            "(INCGRAPH_HMAC_KEY, AWS_*, PGPASSWORD): set them there, or run with "
            "DaskExecutor(via_store=False) to ship values through the driver"
        ) from exc


def compute_and_save_in_worker(stored: StoredJob) -> Outcome:
    """Load ``stored``'s inputs from the store, compute, save the result; return a `Saved`."""
    job = stored.job
    try:
        store = worker_store(stored.address)
    except StoreError as exc:
        raise NodeError(f"{job.description}: {exc}", node=job.label, exception=exc) from None
    inputs = dict(job.inputs)
    for name, data_version in stored.stored_inputs.items():
        try:
            inputs[name] = store.load(data_version)
        except (KeyError, StoreCorruptError) as exc:
            raise InputNotStoredError(
                f"{job.description}: input {name!r} (data version {data_version}) is not "
                f"readable in the store: {exc}"
            ) from None
    out = run_worker_job(job, inputs)
    try:
        captured = store.capture(out.value)
    except UnstorableResultError as exc:
        raise NodeError(f"{job.description}: {exc}", node=job.label, exception=exc) from None
    record = dataclasses.replace(
        stored.record, data_version=out.data_version, duration=out.duration
    )
    saved = store.save(record, captured)
    return Outcome(Saved(saved.size), out.data_version, out.duration)


def submit_stored(
    executor: Any,
    node: Node,
    address: StoreAddress,
    values: dict[str, Any],
    stored_inputs: dict[str, str],
    record: Record,
) -> Future[Outcome]:
    """Submit the job computing ``node`` in a worker that reads and writes the store."""
    job = worker_job(node, values, record.key)
    stored = StoredJob(job, address, stored_inputs, record)
    return send_to_worker(executor, node, job, [], compute_and_save_in_worker, stored)
