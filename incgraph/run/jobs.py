"""What an executor runs: computing one node (or one node over many items) from input values.

Design note
-----------
A *job* is the only work the engine hands to an executor. In-process
executors (serial, threads, asyncio) run `compute_in_process`, which uses
the node's own lazily-constructed instance, so ``release_resources()`` means
what it says. Out-of-process executors (processes, dask) run
`compute_in_worker` on a picklable `WorkerJob`: each worker keeps
one instance per `instance_key` in `_WORKER_INSTANCES` and drops
them when told to release, or when the worker process exits (an ``atexit``
hook calls each instance's ``release()``, so recycling a pool releases too).

A job returns an `Outcome` (result, data version, duration). Hashing
the result happens in the job, so large results are hashed in parallel on
the executor's workers, not in the engine loop.

Batches hand over *batch jobs*: one node over a list of ``(inputs, key)``
entries (`compute_batch_in_process`, `compute_batch_in_worker`).
They return one `Outcome` or `JobFailure` per entry, in order, so
one failing item never loses the others, and a worker formats the traceback
before it crosses the process boundary. Entries of an ``async def process``
processor are gathered on one event loop.

Async twins
-----------
A job function may carry an ``asynchronous`` attribute: a coroutine function
taking the same arguments. The asyncio executor awaits the twin on its loop
(so ``async def process`` coroutines of independent nodes or items run
concurrently); every other executor calls the plain function.

Instances are constructed under a lock, so threads that compute the same
node for different items share one instance and construct it once.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import pickle
import threading
import time
import traceback
import types
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.core.signature import annotation_name, value_matches
from incgraph.errors import HashingError, IncgraphError, InputTypeError, NodeError
from incgraph.executors.processes import is_pickling_error, unsendable
from incgraph.sentinels import MISSING
from incgraph.store.codecs import unstorable
from incgraph.store.picklability import check_sendable

__all__ = [
    "BatchEntry",
    "JobFailure",
    "Outcome",
    "WorkerJob",
    "compute_batch_in_process",
    "compute_batch_in_worker",
    "compute_in_process",
    "compute_in_worker",
    "fanout_computer",
    "instance_key",
    "node_instance",
    "release_worker_instances",
    "result_data_version",
    "run_coroutine",
    "run_worker_job",
    "send_to_worker",
    "submit_batch",
    "submit_compute",
    "worker_job",
]


class Outcome(NamedTuple):
    """A computed result with its data version and the seconds ``process`` took.

    A named tuple: one is made per computed node or item, and a tuple is the
    cheapest immutable record to construct.
    """

    value: Any
    data_version: str
    duration: float


@dataclass(frozen=True, slots=True)
class JobFailure:
    """One batch entry that raised: the error and its formatted traceback."""

    error: BaseException
    traceback: str


BatchEntry = tuple[dict[str, Any], "str | None"]
"""One item of a batch job: the node's input values and its cache key."""


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


# -- one computation -----------------------------------------------------------------

_NOT_AWAITABLE: set[type] = {type(None), bool, int, float, complex, str, bytes, tuple, list, dict}
"""Result types known not to be awaitable (``inspect.isawaitable`` costs an ABC check)."""


def _is_awaitable(value: Any) -> bool:
    """``inspect.isawaitable(value)``, remembering the types that were not."""
    cls = type(value)
    if cls in _NOT_AWAITABLE:
        return False
    if inspect.isawaitable(value):
        return True
    if cls is not types.GeneratorType:  # a generator's answer depends on the instance
        _NOT_AWAITABLE.add(cls)
    return False


class _Spec:
    """What computing needs besides the instance: names for messages and the annotations.

    A plain slotted class rather than a frozen dataclass: one is made per node
    (a fan-out of 10,000 tasks makes 10,000), and this one is several times
    cheaper to construct.
    """

    __slots__ = ("cache", "describe", "label", "params", "returns")

    def __init__(
        self,
        label: str,
        describe: Callable[[], str],  # for messages only: not formatted unless one is raised
        params: dict[str, Any],
        returns: Any,
        cache: bool,
    ) -> None:
        self.label = label
        self.describe = describe
        self.params = params
        self.returns = returns
        self.cache = cache

    @property
    def description(self) -> str:
        return self.describe()


def _spec_of_node(node: Node) -> _Spec:
    spec: _Spec | None = node._job_spec
    if spec is None:  # a node's processor, bindings and cache flag never change
        sig = node.signature
        assert sig is not None
        spec = _Spec(node.label, node.describe, _inputs_to_check(node), sig.returns, node.cache)
        node._job_spec = spec
    return spec


def _inputs_to_check(node: Node) -> dict[str, Any]:
    """The annotations a value handed to ``node`` must still be checked against at run time.

    Values that were checked already need no second look: inline constants
    (checked by ``add_node``), a constant node's value (``set_value`` checks it
    against every consumer), and the result of a node whose ``process`` declares
    exactly the annotation this input expects (checked against it when computed).
    Results of unannotated or differently annotated upstream processors are checked.
    """
    sig = node.signature
    assert sig is not None
    if not sig.params:  # process(**inputs) without annotations: nothing to check
        return {}
    params = dict(sig.params)
    for name, src in node.bindings.items():
        checked = not isinstance(src, Node) or src.is_constant
        if checked or (src.signature is not None and src.signature.returns == params.get(name)):
            params.pop(name, None)
    return params


def _spec_of_job(job: WorkerJob) -> _Spec:
    from incgraph.core.signature import process_signature

    params = process_signature(job.processor).params
    description = job.description
    return _Spec(job.label, lambda: description, params, job.returns, job.cache)


def _check_inputs(
    describe: Callable[[], str], params: dict[str, Any], inputs: dict[str, Any]
) -> None:
    for name, value in inputs.items():
        ann = params.get(name, Any)
        if not value_matches(value, ann):
            raise InputTypeError(
                f"{describe()}: input {name!r} expects {annotation_name(ann)}, got "
                f"{type(value).__name__}; feed it a value of that type or change the annotation"
            )


def _construct(spec: _Spec, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:
        raise NodeError(
            f"{spec.description}: constructing the processor (its __init__ with "
            f"node_init_kwargs, or its setup()) failed: {type(exc).__name__}: {exc}",
            node=spec.label,
            exception=exc,
        ) from exc


def _node_error(spec: _Spec, exc: Exception) -> NodeError:
    return NodeError(
        f"{spec.description} failed: {type(exc).__name__}: {exc}", node=spec.label, exception=exc
    )


def _checked(spec: _Spec, value: Any) -> Any:
    returns = spec.returns
    if returns is not Any and type(value) is not returns and not value_matches(value, returns):
        raise InputTypeError(
            f"{spec.description} returned {type(value).__name__}, but its process() is annotated "
            f"-> {annotation_name(returns)}; return that type or change the annotation"
        )
    return value


def _begin(spec: _Spec, make: Callable[[], Any], inputs: dict[str, Any]) -> tuple[Any, float]:
    """Check the inputs, start the clock, construct: what both compute paths do first."""
    if spec.params:
        _check_inputs(spec.describe, spec.params, inputs)
    start = time.perf_counter()
    return _construct(spec, make), start


def _finish(spec: _Spec, value: Any, key: str | None, start: float) -> Outcome:
    """Check the result against ``-> annotation``, stop the clock, version it."""
    value = _checked(spec, value)
    duration = time.perf_counter() - start
    return Outcome(value, result_data_version(value, key, spec.cache), duration)


def _compute(
    spec: _Spec, make: Callable[[], Any], inputs: dict[str, Any], key: str | None
) -> Outcome:
    instance, start = _begin(spec, make, inputs)
    return _call(spec, instance, inputs, key, start)


def _call(
    spec: _Spec, instance: Any, inputs: dict[str, Any], key: str | None, start: float
) -> Outcome:
    """Run ``process`` on a constructed instance (awaiting a coroutine), then `_finish`."""
    try:
        value = instance.process(**inputs)
        if type(value) not in _NOT_AWAITABLE and _is_awaitable(value):
            value = run_coroutine(value)
    except IncgraphError:
        raise
    except Exception as exc:
        raise _node_error(spec, exc) from exc
    return _finish(spec, value, key, start)


async def _compute_async(
    spec: _Spec, make: Callable[[], Any], inputs: dict[str, Any], key: str | None
) -> Outcome:
    instance, start = _begin(spec, make, inputs)
    try:
        value = instance.process(**inputs)
        if _is_awaitable(value):
            value = await value
    except IncgraphError:
        raise
    except Exception as exc:
        raise _node_error(spec, exc) from exc
    return _finish(spec, value, key, start)


# -- in this process -------------------------------------------------------------------

_CONSTRUCT_LOCK = threading.Lock()


def node_instance(node: Node) -> Any:
    """``node.instance()``, constructed at most once even when threads ask at the same time."""
    if node.initialized:
        return node.instance()
    with _CONSTRUCT_LOCK:
        return node.instance()


def compute_in_process(node: Node, inputs: dict[str, Any], key: str | None) -> Outcome:
    """Compute ``node`` here, with its own (lazily constructed) processor instance."""
    make = node.instance if node.initialized else partial(node_instance, node)
    return _compute(node._job_spec or _spec_of_node(node), make, inputs, key)


def fanout_computer(first: Node) -> Callable[[Node, dict[str, Any], str | None], Outcome]:
    """`compute_in_process` for the nodes of ``first``'s fan-out, in this thread.

    The members share their processor instance (see `Node.instance`), its
    annotations and the inputs worth checking (the same shared nodes, and inline
    values checked when added), so what `compute_in_process` works out per
    node is worked out once here; the instance is made (or taken) on the first
    call and kept. Messages still name the member that failed.
    """
    assert first.fanout is not None, "fanout_computer is for a fan-out's members"
    base = first._job_spec or _spec_of_node(first)
    params, returns, cache = base.params, base.returns, base.cache
    make = partial(node_instance, first)
    instance: Any = MISSING

    def compute(node: Node, inputs: dict[str, Any], key: str | None) -> Outcome:
        nonlocal instance
        spec = _Spec(node.label, node.describe, params, returns, cache)
        if params:
            _check_inputs(node.describe, params, inputs)
        start = time.perf_counter()
        if instance is MISSING:
            instance = _construct(spec, make)
        return _call(spec, instance, inputs, key, start)

    return compute


async def compute_in_process_async(node: Node, inputs: dict[str, Any], key: str | None) -> Outcome:
    """`compute_in_process` for an event loop: awaits ``async def process``.

    A synchronous ``process`` runs in a worker thread so it does not block the loop.
    """
    if not _is_async(node.processor):
        return await asyncio.to_thread(compute_in_process, node, inputs, key)
    return await _compute_async(_spec_of_node(node), lambda: node_instance(node), inputs, key)


setattr(compute_in_process, "asynchronous", compute_in_process_async)


def _is_async(processor: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(processor, "process", None))


def _failure(exc: BaseException) -> JobFailure:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return JobFailure(exc, text)


def _run_entries(compute: Callable[[BatchEntry], Outcome], entries: list[BatchEntry]) -> list[Any]:
    results: list[Outcome | JobFailure] = []
    for entry in entries:
        try:
            results.append(compute(entry))
        except Exception as exc:
            results.append(_failure(exc))
    return results


async def _gather_entries(
    compute: Callable[[BatchEntry], Awaitable[Outcome]], entries: list[BatchEntry]
) -> list[Any]:
    async def one(entry: BatchEntry) -> Outcome | JobFailure:
        try:
            return await compute(entry)
        except Exception as exc:
            return _failure(exc)

    return list(await asyncio.gather(*(one(e) for e in entries)))


def compute_batch_in_process(node: Node, entries: list[BatchEntry]) -> list[Any]:
    """Compute ``node`` for every ``(inputs, key)`` entry here; one result per entry.

    Each result is an `Outcome` or a `JobFailure`. Entries of an
    ``async def process`` processor run concurrently on one event loop.
    """
    spec = _spec_of_node(node)
    return _compute_entries(spec, lambda: node_instance(node), node.processor, entries)


def _compute_entries(
    spec: _Spec, make: Callable[[], Any], processor: Any, entries: list[BatchEntry]
) -> list[Any]:
    """Every entry computed: concurrently on one event loop for ``async def process``."""
    if _is_async(processor):
        results: list[Any] = run_coroutine(
            _gather_entries(lambda e: _compute_async(spec, make, e[0], e[1]), entries)
        )
        return results
    return _run_entries(lambda e: _compute(spec, make, e[0], e[1]), entries)


async def compute_batch_in_process_async(node: Node, entries: list[BatchEntry]) -> list[Any]:
    """`compute_batch_in_process` for an event loop (the asyncio executor's twin)."""
    if not _is_async(node.processor):
        return await asyncio.to_thread(compute_batch_in_process, node, entries)
    spec = _spec_of_node(node)
    return await _gather_entries(
        lambda e: _compute_async(spec, lambda: node_instance(node), e[0], e[1]), entries
    )


setattr(compute_batch_in_process, "asynchronous", compute_batch_in_process_async)


# -- in a worker process ---------------------------------------------------------------

_WORKER_INSTANCES: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()
WORKER_CONSTRUCTIONS: list[str] = []  # instance keys constructed in this process (for tests)


def _worker_instance(job: WorkerJob) -> Any:
    with _WORKER_LOCK:
        inst = _WORKER_INSTANCES.get(job.instance_key)
        if inst is None:
            if not WORKER_CONSTRUCTIONS:  # first instance here: release them all on exit
                atexit.register(release_worker_instances)
            inst = job.processor(**job.init_kwargs)
            setup = getattr(inst, "setup", None)
            if setup is not None:
                setup()
            _WORKER_INSTANCES[job.instance_key] = inst
            WORKER_CONSTRUCTIONS.append(job.instance_key)
        return inst


def compute_in_worker(job: WorkerJob) -> Outcome:
    """Compute a `WorkerJob` in this (worker) process, reusing its instances.

    A result that cannot be pickled raises a `NodeError` naming the part
    that cannot (see `_sendable_outcome`).
    """
    out = run_worker_job(job, job.inputs)
    failure = _sendable_outcome(out, _spec_of_job(job))
    if failure is not None:
        raise failure.error
    return out


def run_worker_job(job: WorkerJob, inputs: dict[str, Any]) -> Outcome:
    """Compute ``job``'s node from ``inputs`` in this (worker) process, reusing its instance."""
    return _compute(_spec_of_job(job), lambda: _worker_instance(job), inputs, job.key)


def _sendable_outcome(out: Outcome, spec: _Spec) -> JobFailure | None:
    """``None`` when ``out``'s value can go back to the caller and into the store, else why not.

    Executors pickle a worker's results with cloudpickle, which would turn an open
    file into a ``StringIO``; checking with the standard pickler first makes this
    executor refuse exactly the results the in-process executors cannot store.
    """
    problem = check_sendable(out.value)
    if problem is None:
        return None
    part, exc = problem
    fix = (
        "or mark the node cache=False"
        if spec.cache
        else "or compute this node in the caller's process (executor 'serial' or 'threads'): "
        "results of worker processes come back pickled"
    )
    error = unstorable(part, exc, fix=fix)
    failure = NodeError(f"{spec.description}: {error}", node=spec.label, exception=error)
    return JobFailure(failure, f"{type(error).__qualname__}: {error}\n")


def compute_batch_in_worker(job: WorkerJob, entries: list[BatchEntry]) -> list[Any]:
    """Compute ``job``'s node for every ``(inputs, key)`` entry in this worker.

    ``job`` is a template (its own ``inputs`` and ``key`` are ignored). Failures
    come back as `JobFailure` whose traceback was formatted here, and whose
    error can be unpickled by the caller.
    """
    spec = _spec_of_job(job)
    results = _compute_entries(spec, lambda: _worker_instance(job), job.processor, entries)
    return [
        _sendable(r, spec) if isinstance(r, JobFailure) else (_sendable_outcome(r, spec) or r)
        for r in results
    ]


def _sendable(failure: JobFailure, spec: _Spec) -> JobFailure:
    """``failure`` if its error pickles, else one carrying a picklable stand-in."""
    try:
        pickle.loads(pickle.dumps(failure.error))
    except Exception as exc:
        stand_in = RuntimeError(
            f"{type(failure.error).__qualname__}: {failure.error} (not picklable: {exc})"
        )
        error = NodeError(
            f"{spec.description} failed: {stand_in}", node=spec.label, exception=stand_in
        )
        return JobFailure(error, failure.traceback)
    return failure


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


def instance_key(node: Node) -> str:
    """The name a worker keeps ``node``'s instance under (label, code and init versions)."""
    return f"{node.label}:{node.code_version()}:{node.init_version()}"


def worker_job(node: Node, inputs: dict[str, Any], key: str | None) -> WorkerJob:
    """The picklable job that computes ``node`` from ``inputs`` in another process."""
    assert node.processor is not None and node.signature is not None
    return WorkerJob(
        label=node.label,
        description=node.describe(),
        processor=node.processor,
        init_kwargs=node.init_kwargs,
        instance_key=instance_key(node),
        inputs=inputs,
        returns=node.signature.returns,
        key=key,
        cache=node.cache,
    )


# -- handing jobs to an executor ---------------------------------------------------------


def submit_compute(
    executor: Any, node: Node, inputs: dict[str, Any], key: str | None
) -> Future[Outcome]:
    """Submit the job computing ``node`` from ``inputs`` to ``executor``, in or out of process."""
    if executor.in_process:
        fut: Future[Outcome] = executor.submit(compute_in_process, node, inputs, key)
        return fut
    job = worker_job(node, inputs, key)
    return send_to_worker(executor, node, job, [], compute_in_worker, job)


def submit_batch(executor: Any, node: Node, entries: list[BatchEntry]) -> Future[list[Any]]:
    """Submit one batch job computing ``node`` for each ``(inputs, key)`` entry."""
    if executor.in_process:
        fut: Future[list[Any]] = executor.submit(compute_batch_in_process, node, entries)
        return fut
    job = worker_job(node, {}, None)
    return send_to_worker(executor, node, job, entries, compute_batch_in_worker, job, entries)


def send_to_worker(
    executor: Any,
    node: Node,
    job: WorkerJob,
    entries: list[BatchEntry],
    fn: Callable[..., Any],
    *args: Any,
) -> Future[Any]:
    """``executor.submit(fn, *args)``, except that a job that could not be pickled (when
    submitted, as dask finds out, or on its way to a worker, as loky does) fails with a
    NodeError naming what could not (the processor, an init kwarg or an input, and the
    part of it)."""
    named: Future[Any] = Future()

    def fail(exc: BaseException) -> None:
        if is_pickling_error(exc):
            try:
                exc = _unsendable_job(node, job, entries, exc)
            except Exception as failed:  # the diagnosis failed: report the original error
                exc.__context__ = failed
        named.set_exception(exc)

    def settle(done: Future[Any]) -> None:
        exc = done.exception()
        if exc is None:
            named.set_result(done.result())
        else:
            fail(exc)

    try:
        sent = executor.submit(fn, *args)
    except Exception as exc:
        if not is_pickling_error(exc):
            raise
        fail(exc)
        return named
    sent.add_done_callback(settle)
    return named


def _unsendable_job(
    node: Node, job: WorkerJob, entries: list[BatchEntry], exc: BaseException
) -> BaseException:
    """The NodeError saying which part of ``job`` could not be pickled (else ``exc``)."""
    processor = job.processor
    candidates = [(f"the processor {processor.__qualname__}", processor.__qualname__, processor)]
    candidates += [
        (f"init kwarg {name!r}", f"node_init_kwargs[{name!r}]", value)
        for name, value in job.init_kwargs.items()
    ]
    for inputs in [job.inputs, *(entry[0] for entry in entries)]:
        candidates += [(f"input {name!r}", name, value) for name, value in inputs.items()]
    found = unsendable(candidates)
    if found is None:
        return exc
    what, named = found
    message = (
        f"{node.describe()} cannot be sent to a worker process: {what}: {named}; make it "
        "picklable (open files, locks and connections in process() or "
        "setup(), not at module level) or use an in-process executor ('serial' or 'threads')"
    )
    return NodeError(message, node=node.label, exception=named)
