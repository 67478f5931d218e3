"""The engine loop: decide, look up, submit, record, release. The only one there is.

Design note
-----------
A run visits the nodes a target needs (``Graph.topological_sort``) with a
ready queue: a node is *ready* when every upstream node has a known data
version. For a ready node the loop

1. builds its cache key from its code version, init version and the data
   versions of its inputs (constants are hashed; upstream nodes contribute the
   data version recorded for them, hit or computed);
2. looks the key up in the index. A hit gives the data version and loads
   nothing: values are loaded only for targets and for the inputs of nodes
   that compute;
3. otherwise loads the input values, submits a job to the executor, and when
   it completes records (blob, then index row) and releases dependents.

Because keys are built from upstream *data versions*, an upstream node that
recomputes to an identical result leaves its dependents' keys unchanged:
they are hits (early cutoff). Values kept for a run are dropped as soon as
their last consumer in the run has been decided, so a long chain holds only
what is still needed.

Executors only submit. The serial executor completes a job inside ``submit``,
so the same loop is the debugging path; pool executors let independent ready
nodes run at once. Failures raise :class:`~incgraph.errors.NodeError` once
in-flight jobs have finished; nothing half-done is recorded.

Batches (:mod:`incgraph.run.batch`) take the same steps in bulk, per pass
and per chunk of items: keys from :mod:`incgraph.run.keys`, one
``lookup_many``, batch jobs from :mod:`incgraph.run.jobs`, one ``save_many``.
Key building, record making and job submission are shared, so a graph run
and a batch agree on every key and every record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from incgraph.core.graph import Node
from incgraph.executors.base import Executor
from incgraph.run.jobs import Outcome, submit_compute
from incgraph.run.keys import cache_key, input_versions, make_record
from incgraph.sentinels import MISSING
from incgraph.store import Store

__all__ = ["NodeStatus", "RunReport", "execute"]

Status = Literal["constant", "hit", "computed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What a run did with one node."""

    node: Node
    status: Status
    key: str | None
    data_version: str | None
    duration: float = 0.0


@dataclass
class RunReport:
    """The outcome of one run: a :class:`NodeStatus` per visited node, in decision order.

    Examples
    --------
    >>> report = RunReport()
    >>> report.computed, report.hits
    ([], [])
    """

    statuses: dict[Node, NodeStatus] = field(default_factory=dict)
    values: dict[Node, Any] = field(default_factory=dict)

    def _with(self, status: Status) -> list[Node]:
        return [n for n, s in self.statuses.items() if s.status == status]

    @property
    def computed(self) -> list[Node]:
        """Nodes whose ``process`` ran."""
        return self._with("computed")

    @property
    def hits(self) -> list[Node]:
        """Nodes served from the cache."""
        return self._with("hit")

    def __repr__(self) -> str:
        return f"<RunReport computed={len(self.computed)} hits={len(self.hits)}>"


class _Run:
    """State of one execution of the loop. Not reused."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        targets: list[Node],
        order: list[Node],
        force: frozenset[Node],
        upstream_only: bool,
    ) -> None:
        self.store = store
        self.executor = executor
        self.targets = set(targets)
        self.order = order
        self.force = force
        self.upstream_only = upstream_only
        self.report = RunReport()
        self.dvs: dict[Node, str] = {}
        self.values: dict[Node, Any] = {}
        members = set(order)
        self.waiting: dict[Node, int] = {}
        self.dependents: dict[Node, list[Node]] = {n: [] for n in order}
        self.readers: dict[Node, int] = dict.fromkeys(order, 0)
        for node in order:
            ups = {u for u in node.upstream() if u in members}
            self.waiting[node] = len(ups)
            for u in ups:
                self.dependents[u].append(node)
                self.readers[u] += 1

    # -- keys and values ------------------------------------------------------------

    def value_of(self, node: Node) -> Any:
        if node in self.values:
            return self.values[node]
        if node.is_constant:
            return node.constant_value()
        value = self.store.load(self.dvs[node])
        self.values[node] = value
        return value

    def input_values(self, node: Node) -> dict[str, Any]:
        return {
            name: self.value_of(src) if isinstance(src, Node) else src
            for name, src in node.bindings.items()
        }

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> RunReport:
        ready = deque(n for n in self.order if self.waiting[n] == 0)
        in_flight: dict[Future[Outcome], tuple[Node, str | None, dict[str, str] | None]] = {}
        error: BaseException | None = None
        while ready or in_flight:
            while ready and error is None:
                node = ready.popleft()
                submitted = self.decide(node, in_flight)
                if not submitted:
                    self.resolve(node, ready)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                node, key, input_dvs = in_flight.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    error = error or exc
                    self.report.statuses[node] = NodeStatus(node, "failed", key, None)
                    continue
                self.record(node, key, input_dvs, fut.result())
                self.resolve(node, ready)
        if error is not None:
            raise error
        self.report.values = {t: self.value_of(t) for t in self.order if t in self.targets}
        return self.report

    def decide(self, node: Node, in_flight: dict[Future[Outcome], Any]) -> bool:
        """Settle ``node`` now (constant or hit) or submit it; True if submitted."""
        if node.is_constant:
            self.dvs[node] = node.data_version_of_constant()
            self.report.statuses[node] = NodeStatus(node, "constant", None, self.dvs[node])
            return False
        key: str | None = None
        input_dvs: dict[str, str] | None = None
        if node.cache:
            input_dvs = input_versions(node, self.dvs.__getitem__)
            key = cache_key(node, input_dvs)
            if node not in self.force:
                record = self.store.lookup(key)
                if record is not MISSING:
                    self.dvs[node] = record.data_version
                    self.report.statuses[node] = NodeStatus(node, "hit", key, record.data_version)
                    return False
            if self.upstream_only and node not in self.targets:
                from incgraph.errors import NotCachedError

                raise NotCachedError(
                    f"run_only needs the stored result of {node.describe()}, but the store has "
                    "none for its current inputs; run graph.run_upto(...) on it first"
                )
        fut = submit_compute(self.executor, node, self.input_values(node), key)
        in_flight[fut] = (node, key, input_dvs)
        return True

    def record(
        self, node: Node, key: str | None, input_dvs: dict[str, str] | None, out: Outcome
    ) -> None:
        """Store a computed result (blob, then index row) and remember its value for the run."""
        if node.cache and key is not None and input_dvs is not None:
            record = make_record(node, key, input_dvs, out.data_version, out.duration)
            self.store.save(record, out.value)
        self.dvs[node] = out.data_version
        self.values[node] = out.value
        self.report.statuses[node] = NodeStatus(
            node, "computed", key, out.data_version, out.duration
        )

    def resolve(self, node: Node, ready: deque[Node]) -> None:
        """``node`` has a data version: release its dependents and drop values no one needs."""
        for dep in self.dependents[node]:
            self.waiting[dep] -= 1
            if self.waiting[dep] == 0:
                ready.append(dep)
        for up in set(node.upstream()):
            if up in self.readers:
                self.readers[up] -= 1
                if self.readers[up] == 0 and up not in self.targets:
                    self.values.pop(up, None)


def execute(
    store: Store,
    executor: Executor,
    order: list[Node],
    targets: Iterable[Node],
    *,
    force: Iterable[Node] = (),
    upstream_only: bool = False,
) -> RunReport:
    """Run ``order`` (a topological order covering ``targets``) and return the report.

    ``force`` nodes compute even on a hit. With ``upstream_only`` every non-target
    node must be a hit (``run_only``); otherwise :class:`NotCachedError` is raised.
    """
    run = _Run(store, executor, list(targets), order, frozenset(force), upstream_only)
    return run.run()
