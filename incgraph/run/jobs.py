"""What an executor runs: computing one node from its input values.

Design note
-----------
A *job* is the only work the engine hands to an executor. In-process
executors (serial, threads, asyncio) run :func:`compute_in_process`, which uses
the node's own lazily-constructed instance, so ``release_resources()`` means
what it says. Out-of-process executors (processes, dask) run
:func:`compute_in_worker` on a picklable :class:`WorkerJob`: each worker keeps
one instance per (processor, init kwargs) in :data:`_WORKER_INSTANCES` and
drops them when told to release.

A job returns an :class:`Outcome` (result, data version, duration). Hashing
the result happens in the job, so large results are hashed in parallel on
the executor's workers, not in the engine loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.core.signature import annotation_name, value_matches
from incgraph.errors import HashingError, IncgraphError, InputTypeError, NodeError

__all__ = [
    "Outcome",
    "WorkerJob",
    "compute_in_process",
    "compute_in_worker",
    "release_worker_instances",
    "result_data_version",
    "run_coroutine",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A computed result with its data version and the seconds ``process`` took."""

    value: Any
    data_version: str
    duration: float


@dataclass(frozen=True)
class WorkerJob:
    """A picklable description of one computation, for executors in other processes."""

    label: str
    description: str
    processor: type
    init_kwargs: dict[str, Any]
    instance_key: str
    inputs: dict[str, Any]
    returns: Any
    key: str | None
    cache: bool


def result_data_version(value: Any, key: str | None, cache: bool) -> str:
    """The data version of a computed result.

    Results that cannot be content-hashed (a fitted model, an open handle) get a
    version derived from the cache key that made them: same key, same result,
    which is exactly the promise the cache makes. For ``cache=False`` nodes the
    derived version is unique per computation, so their dependents always
    recompute rather than trust a key that does not pin down the value.
    """
    try:
        return hashing.data_version(value)
    except HashingError:
        if cache and key is not None:
            return hashing.combine("DerivedFromKey", key)
        return hashing.combine("Uncached", uuid.uuid4().hex)


def run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    t = threading.Thread(target=target, name="incgraph-async-process")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _check_inputs(description: str, params: dict[str, Any], inputs: dict[str, Any]) -> None:
    for name, value in inputs.items():
        ann = params.get(name, Any)
        if not value_matches(value, ann):
            raise InputTypeError(
                f"{description}: input {name!r} expects {annotation_name(ann)}, got "
                f"{type(value).__name__}; feed it a value of that type or change the annotation"
            )


def _call(description: str, label: str, instance: Any, inputs: dict[str, Any], returns: Any) -> Any:
    try:
        value = instance.process(**inputs)
        if inspect.isawaitable(value):
            value = run_coroutine(value)
    except IncgraphError:
        raise
    except Exception as exc:
        raise NodeError(
            f"{description} failed: {type(exc).__name__}: {exc}", node=label, exception=exc
        ) from exc
    if not value_matches(value, returns):
        raise InputTypeError(
            f"{description} returned {type(value).__name__}, but its process() is annotated "
            f"-> {annotation_name(returns)}; return that type or change the annotation"
        )
    return value


def compute_in_process(node: Node, inputs: dict[str, Any], key: str | None) -> Outcome:
    """Compute ``node`` here, with its own (lazily constructed) processor instance."""
    sig = node.signature
    assert sig is not None
    description = node.describe()
    _check_inputs(description, sig.params, inputs)
    start = time.perf_counter()
    try:
        instance = node.instance()
    except Exception as exc:
        raise NodeError(
            f"{description}: constructing {node.name()}(**node_init_kwargs) or its setup() "
            f"failed: {type(exc).__name__}: {exc}",
            node=node.label,
            exception=exc,
        ) from exc
    value = _call(description, node.label, instance, inputs, sig.returns)
    duration = time.perf_counter() - start
    return Outcome(value, result_data_version(value, key, node.cache), duration)


_WORKER_INSTANCES: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()
WORKER_CONSTRUCTIONS: list[str] = []  # instance keys constructed in this process (for tests)


def _worker_instance(job: WorkerJob) -> Any:
    with _WORKER_LOCK:
        inst = _WORKER_INSTANCES.get(job.instance_key)
        if inst is None:
            inst = job.processor(**job.init_kwargs)
            setup = getattr(inst, "setup", None)
            if setup is not None:
                setup()
            _WORKER_INSTANCES[job.instance_key] = inst
            WORKER_CONSTRUCTIONS.append(job.instance_key)
        return inst


def compute_in_worker(job: WorkerJob) -> Outcome:
    """Compute a :class:`WorkerJob` in this (worker) process, reusing its instances."""
    from incgraph.core.signature import process_signature

    _check_inputs(job.description, process_signature(job.processor).params, job.inputs)
    start = time.perf_counter()
    try:
        instance = _worker_instance(job)
    except Exception as exc:
        raise NodeError(
            f"{job.description}: constructing the processor failed: {type(exc).__name__}: {exc}"
            f"\n{traceback.format_exc()}",
            node=job.label,
            exception=exc,
        ) from exc
    value = _call(job.description, job.label, instance, job.inputs, job.returns)
    duration = time.perf_counter() - start
    return Outcome(value, result_data_version(value, job.key, job.cache), duration)


def release_worker_instances(keys: frozenset[str] | None = None) -> int:
    """Release this process's worker instances (all, or those in ``keys``); return how many."""
    with _WORKER_LOCK:
        chosen = [k for k in _WORKER_INSTANCES if keys is None or k in keys]
        instances = [_WORKER_INSTANCES.pop(k) for k in chosen]
    for inst in instances:
        release = getattr(inst, "release", None)
        if release is not None:
            release()
    return len(instances)


def worker_job(node: Node, inputs: dict[str, Any], key: str | None) -> WorkerJob:
    """The picklable job that computes ``node`` from ``inputs`` in another process."""
    assert node.processor is not None and node.signature is not None
    instance_key = f"{node.label}:{node.code_version()}:{node.init_version()}"
    return WorkerJob(
        label=node.label,
        description=node.describe(),
        processor=node.processor,
        init_kwargs=node.init_kwargs,
        instance_key=instance_key,
        inputs=inputs,
        returns=node.signature.returns,
        key=key,
        cache=node.cache,
    )
