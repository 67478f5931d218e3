"""Batches: run a graph's nodes over many items, in bulk, with failures kept as data.

Design note
-----------
Policy. A batch runs every *pass* (one per node that ``run_nodes`` need, in
``graph.topological_sort(run_nodes)`` order) over every item:

* ``breadth_first`` (default): each node over all items, then the next node.
  Each processor is constructed at most once per pass (per worker), and an
  instance that holds something (``setup``, ``release`` or a ``resource``) is
  released after its pass unless the next pass shares its resource
  (`incgraph.run.resources`).
* ``depth_first``: each chunk of items through all nodes, then the next chunk
  (``chunk_size=1`` is strictly one item at a time). Every instance stays alive.

Per pass and per chunk of items the loop (`incgraph.run.passes`) takes
the engine's steps in bulk: build every item's cache key
(`incgraph.run.keys`), one wave through the decide step
(`incgraph.run.decide`: one look-up, one claim), submit the misses as batch
jobs (`incgraph.run.jobs.submit_batch`), and queue their results in the
session's writer, flushed at the end of the chunk. Hits load nothing. So a
fully cached rerun costs a key hash and a share of one indexed query per
item-node, and a killed batch leaves every committed item-node a hit for the
rerun: resuming is rerunning.

Several processes. Each batch opens an *announced* store session
(`incgraph.store.Store.session`), which is its one run-log row: its hits
and writes go into the run log (so ``store.gc(keep_runs=...)`` keeps what
recent batches used, and a gc elsewhere keeps what a running batch wrote),
and misses are claimed before they compute, so batches sharing a store
compute each item-node of a slow node once in total (see
`incgraph.run.passes`).

Failures. An item whose node raises gets a `BatchFailure`; its
downstream nodes are skipped, its other branches and the other items go on.
With ``fault_tolerant=False`` the loop stops submitting, lets in-flight jobs
finish and saves their results, then re-raises the error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from incgraph.core.graph import Node
from incgraph.errors import ConfigurationError
from incgraph.executors import Executor, resolve_executor
from incgraph.run.batch_report import BatchFailure, BatchStats, NodeBatchStats
from incgraph.run.engine import RunReport
from incgraph.run.keys import check_code_versions
from incgraph.run.passes import BatchRun, PrepFn

__all__ = [
    "PARALLEL_TARGETS",
    "STRATEGIES",
    "BatchFailure",
    "BatchStats",
    "NodeBatchStats",
    "process_batch",
]

STRATEGIES = ("breadth_first", "depth_first")
"""The valid ``strategy=`` values."""

PARALLEL_TARGETS = {
    "threads": "threads",
    "nogil": "threads",
    "async": "asyncio",
    "mpc": "processes",
}
"""``parallel=`` target (as in ``inbatch_parallel``) -> the executor that runs items that way."""


def process_batch(
    graph: Any,
    batch_items: Iterable[Any],
    run_nodes: Node | Sequence[Node],
    prep_fn: PrepFn | None = None,
    *,
    strategy: str = "breadth_first",
    fault_tolerant: bool = True,
    executor: Executor | str | None = None,
    parallel: str | None = None,
    progress: bool | None = None,
    chunk_size: int = 512,
) -> BatchStats:
    """Run ``run_nodes`` (and what they need) for every item; failures are recorded per item.

    Parameters
    ----------
    graph : ProcessGraph
        The graph (its store holds the results).
    batch_items : iterable
        The items. Breadth-first reads them all up front; depth-first streams them.
    run_nodes : Node or list of Node
        The nodes every item must reach.
    prep_fn : callable, optional
        ``prep_fn(index, item)`` binds the item's constants (``node.set_value``)
        and may call ``graph.persist(path)`` to get that item's JSON record. It
        must be deterministic. Without it, a graph with exactly one constant
        node gets each item as that constant's value.
    strategy : {"breadth_first", "depth_first"}
        Each node over all items, or each item through all nodes.
    fault_tolerant : bool
        ``False`` re-raises the first failure (a `NodeError`
        for a processor) once in-flight work is saved.
    executor : str or Executor, optional
        Where misses compute; defaults to the graph's executor.
    parallel : {"threads", "nogil", "async", "mpc"}, optional
        The in-batch parallel targets, mapped to the threads, threads, asyncio
        and processes executors; an alternative to ``executor``.
    progress : bool, optional
        A tqdm bar over item-nodes; ``None`` shows it when stderr is a terminal.
    chunk_size : int
        Items whose keys are looked up together (and, depth-first, go through
        all nodes together).

    Returns
    -------
    BatchStats
        ``completed``, ``failed``, ``failures``, ``cached``, ``computed``,
        ``skipped`` and per-node counts and timings in ``nodes``.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class SumInt(Processor):
    ...     def process(self, a: int, b: int) -> int:
    ...         return a + b
    >>> graph = ProcessGraph(store=":memory:")
    >>> node_const = graph.add_constant_node(id=0, name="MyConst")
    >>> node1 = graph.add_node(1, SumInt, {"a": node_const, "b": 200})
    >>> def prep_fn(index, item):
    ...     node_const.set_value(item)
    >>> stats = graph.process_batch([10, 9, 21, 5], [node1], prep_fn, progress=False)
    >>> stats.completed, len(stats.failures), stats.computed
    ([0, 1, 2, 3], 0, 4)
    """
    if strategy not in STRATEGIES:
        raise ConfigurationError(
            f"unknown batch strategy {strategy!r}; valid strategies are {', '.join(STRATEGIES)}"
        )
    if chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be at least 1, got {chunk_size!r}")
    targets = [run_nodes] if isinstance(run_nodes, Node) else list(run_nodes)
    order = graph.topological_sort(targets)
    check_code_versions(order)
    prep = prep_fn if prep_fn is not None else _default_prep(order)
    ex, owned = _choose_executor(graph, executor, parallel)
    # announced: a gc in another process keeps what this batch writes while it runs
    session = graph.store.session("batch", _label(targets), announce=True, settings=graph.settings)
    batch = BatchRun(graph, order, targets, prep, ex, fault_tolerant, chunk_size, session)
    start = time.perf_counter()
    graph.last_run = RunReport()
    persist_path = graph._persist_path  # prep_fn may set one per item; the graph's comes back
    ok = False
    try:
        if strategy == "breadth_first":
            batch.breadth_first(list(batch_items), progress)
        else:
            batch.depth_first(batch_items, progress)
        ok = True
    finally:
        try:
            batch.release(batch.touched)
        finally:
            try:
                session.close(ok)  # releases leases still held; completes the run log's row
            finally:
                if owned:
                    ex.shutdown()
                graph.last_run = RunReport()
                graph._persist_path = persist_path
    batch.stats.strategy = strategy
    batch.stats.seconds = time.perf_counter() - start
    batch.stats.budget = session.budget
    return batch.stats


def _label(targets: list[Node]) -> str:
    label = ", ".join(t.label for t in targets)
    return label if len(label) <= 200 else label[:197] + "..."


def _default_prep(order: list[Node]) -> PrepFn:
    constants = [n for n in order if n.is_constant]
    if len(constants) > 1:
        names = ", ".join(c.describe() for c in constants)
        raise ConfigurationError(
            f"the run nodes read several constant nodes ({names}); pass "
            "prep_fn(index, item) to say which value each one takes per item"
        )
    if not constants:
        return lambda index, item: None
    constant = constants[0]
    return lambda index, item: constant.set_value(item)


def _choose_executor(
    graph: Any, executor: Executor | str | None, parallel: str | None
) -> tuple[Executor, bool]:
    """The executor to use and whether this batch owns it (and shuts it down)."""
    if parallel is not None:
        if executor is not None:
            raise ConfigurationError(
                "pass either executor= or parallel= to process_batch, not both"
            )
        if parallel not in PARALLEL_TARGETS:
            raise ConfigurationError(
                f"unknown parallel target {parallel!r}; valid targets are "
                f"{', '.join(PARALLEL_TARGETS)}"
            )
        return resolve_executor(PARALLEL_TARGETS[parallel]), True
    if executor is None:
        return graph.executor, False
    ex = resolve_executor(executor)
    return ex, ex is not executor


# -- state ------------------------------------------------------------------------------
