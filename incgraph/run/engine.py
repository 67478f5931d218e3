"""The engine loop: decide, submit, record, release. The only one there is.

Design note
-----------
The loop has the shape of dask's ``local.py``: a ready queue of nodes whose
upstream nodes all have a known data version. Each turn takes *every* ready
node as one wave (a ForEach's sibling tasks are one wave) and

1. keys it (`incgraph.run.keys`): code version, init version and the data
   versions of its inputs; the members of a fan-out (`Graph.add_nodes`) are
   keyed with one bound key maker from their shared inputs' versions;
2. decides it (`incgraph.run.decide`): constants settle at once; a key the
   prefetched latest entries answer is a hit; the rest of the wave goes
   through ONE look-up and ONE claim of its misses worth a lease. A hit gives
   a data version and loads nothing; a key another process is computing is
   *watched* (polled with backoff while other work goes on, waited for when
   nothing else is) and becomes a hit
   or, if its lease lapses, ours;
3. submits each node that must compute to ``executor.submit`` with its input
   values. Every executor sees every computed job, fan-out members included:
   the serial executor's ``submit`` returns an already-done future, which the
   loop records at once, so a serial run never waits;
4. records each completed job (its bytes captured and queued for the store)
   and releases its dependents into the ready queue.

With a `DaskExecutor` and a store its workers can open, step 3 sends the
inputs' data versions instead of their values and the worker saves the result
itself (`incgraph.run.via_store`): step 4 then records the key as saved (run
log, lease released) and holds no value; one is loaded only when the driver
needs it (a target, an input of a ``cache=False`` node).

State of a run (`_Run`): ``waiting`` (node -> upstream nodes not settled yet)
and ``dependents``; the ``ready`` queue; ``in_flight`` (future -> node, key,
input versions); ``watched`` (key -> nodes waiting for another process);
``dvs`` (node -> data version); ``values`` and ``captured`` (results not
handed out yet, and their bytes for further copies); ``readers`` (how many
undecided nodes still read a node's value); the session's writer (results
queued for the store); ``error`` (the first failure: no wave is decided after it); the
`Decider` (prefetched latest entries, keys computed in this run, which
processors proved cheap); the report.

Because keys are built from upstream *data versions*, an upstream node that
recomputes to an identical result leaves its dependents' keys unchanged:
they are hits (early cutoff). Values kept for a run are dropped as soon as
their last consumer in the run has been decided.

A rerun first reads every node's latest (key, data version, duration) in one
bulk query per 500 nodes (the decider's prefetch); a node whose new key
matches is a hit without a query of its own. Computed results are written in
batches by the store session's writer (`incgraph.store.writer`: blobs, then
one index transaction), promptly when a result was slow to compute or large.
Failures raise `NodeError` once in-flight jobs have finished; nothing
half-done is recorded. A result that cannot be pickled fails its node the
same way (`incgraph.store.writer.save_results` stores the other results of
its write). A hit whose blob turns out gone or corrupt when its value is
needed is computed again and reported as computed. During a long run the
graph, and what each large wave leaves behind, is hidden from the cyclic GC
(``gc.freeze``): collections stay on and see only what the run makes.

Immutable results. A computed result's bytes are taken (``Store.capture``)
right after it is computed, before any consumer runs: the queued write saves
those bytes, so nothing a consumer or the caller does to the value reaches the
store. The first reader of a result gets the object itself; every further
reader (a second consumer, the next member of a fan-out, the caller when a
target is also read) gets a copy decoded from the captured bytes
(`_Run.value_of`), so consumers never see each other's changes, in any
order, on any executor. A value loaded for a hit is handed out the same way.
Constants hand out copies of the snapshot ``set_value`` took.

Exactly once across processes, and a run log. Each run has a store session
(`StoreSession`): a hit appends its key to ``session.hits`` (one row is
written when the run ends), and a wave's misses worth a lease are claimed in
one transaction. Leases where they pay: a node is leased unless its compute
is known to cost about as little as the lease itself
(the ``lease_min_seconds`` setting, a millisecond by default): its latest
stored result took less, or every compute of its processor in this run did.
Leases are released once the results' index rows are committed, and a run
commits what it holds before it waits for anyone, so two runs never wait for
each other. A read-only store raises `ReadOnlyStoreError` naming the node
that must compute; ``run_only`` raises `NotCachedError` for a node it would
have to compute upstream of its targets.

Batches (`incgraph.run.batch`) take the same steps in bulk, per pass and per
chunk of items, with the same key builder (`incgraph.run.keys`), decide step
and jobs (`incgraph.run.jobs`), so a graph run and a batch agree on every key
and every record.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, NoReturn

from incgraph.core.graph import FanOut, Node
from incgraph.errors import (
    NodeError,
    NotCachedError,
    ReadOnlyStoreError,
    StoreCorruptError,
    UnstorableResultError,
)
from incgraph.executors.base import Executor
from incgraph.run.decide import Decided, Decider, Work
from incgraph.run.jobs import Outcome, compute_in_process, fanout_computer, submit_compute
from incgraph.run.keys import (
    cache_key,
    check_code_versions,
    input_versions,
    key_maker,
    make_record,
    processor_name,
)
from incgraph.run.via_store import InputNotStoredError, Saved, store_address, submit_stored
from incgraph.sentinels import MISSING
from incgraph.settings import Settings
from incgraph.store import Store
from incgraph.store.codecs import Captured
from incgraph.store.garbage import GcReport
from incgraph.store.protocols import Record

# Tuning comes from the run's `Settings` (`incgraph.settings`): prefetch_min_nodes (runs of
# at least this many nodes read the latest records in bulk first; a wave that large is
# hidden from the GC once decided), claim_ahead (a larger wave is decided in parts of this
# size: one look-up and one claim each), lease_min_seconds (the decide step),
# lease_first_poll_seconds and lease_max_poll_seconds; writes follow the session writer's.

__all__ = ["NodeStatus", "RunReport", "execute"]

Status = Literal["constant", "hit", "computed", "failed", "skipped"]


class NodeStatus(NamedTuple):
    """What a run did with one node (a named tuple: one is made per node of every run)."""

    node: Node
    status: Status
    key: str | None
    data_version: str | None
    duration: float = 0.0


@dataclass
class RunReport:
    """The outcome of one run: a `NodeStatus` per visited node, in decision order.

    Examples
    --------
    >>> report = RunReport()
    >>> report.computed, report.hits
    ([], [])
    """

    statuses: dict[Node, NodeStatus] = field(default_factory=dict)
    values: dict[Node, Any] = field(default_factory=dict)
    budget: GcReport | None = None
    """What the store's byte budget removed after this run (None: no budget, or no writes)."""

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

    def _rows(self) -> list[list[str]]:
        rows = []
        for node, s in self.statuses.items():
            took = f"{s.duration * 1000:.0f} ms" if s.status == "computed" else "-"
            rows.append([node.label, node.name(), s.status, took, (s.key or "-")[:12]])
        return rows

    def _caption(self) -> str:
        return f"Run: {len(self.computed)} computed, {len(self.hits)} hit(s)"

    def __str__(self) -> str:
        from incgraph.display import text_table

        return text_table(_REPORT_HEADERS, self._rows(), self._caption())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: one row per node."""
        p.text(str(self))

    def _repr_html_(self) -> str:
        """A notebook's view: one row per node, its status coloured."""
        from incgraph.display import html_table

        return html_table(_REPORT_HEADERS, self._rows(), caption=self._caption(), status_column=2)


_REPORT_HEADERS = ("NODE", "NAME", "STATUS", "TOOK", "KEY")


class _Run:
    """State of one execution of the loop (see the module note). Not reused."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        targets: list[Node],
        order: list[Node],
        force: frozenset[Node],
        upstream_only: bool,
        settings: Settings,
    ) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor
        self.targets = set(targets)
        self.order = order
        self.force = force
        self.upstream_only = upstream_only
        self.report = RunReport()
        self.dvs: dict[Node, str] = {}
        self.values: dict[Node, Any] = {}  # results not handed out yet (see value_of)
        self.captured: dict[Node, Captured] = {}  # bytes of results handed out more than once
        # ``order`` is the upstream closure of the targets. Counts are per binding (a node
        # binding one upstream twice counts twice, and is decremented twice).
        readers: dict[Node, int] = {}
        waiting: dict[Node, int] = {}
        dependents: dict[Node, list[Node]] = {}
        ready: deque[Node] = deque()
        for node in order:
            ups = node.upstream()
            if not ups:
                ready.append(node)
                continue
            waiting[node] = len(ups)
            for up in ups:
                readers[up] = readers.get(up, 0) + 1
                dependents.setdefault(up, []).append(node)
        self.readers, self.waiting, self.dependents, self.ready = (
            readers,
            waiting,
            dependents,
            ready,
        )
        self.in_flight: dict[Future[Outcome], tuple[Node, str | None, dict[str, str] | None]] = {}
        self.watched: dict[str, list[tuple[Node, dict[str, str]]]] = {}
        self.poll_delay = settings.lease_first_poll_seconds
        self.error: BaseException | None = None
        label = ", ".join(t.label for t in targets)
        label = label if len(label) <= 200 else label[:197] + "..."
        self.session = store.session("run", label, settings=settings)
        self.hit_keys = self.session.hits
        read_only = upstream_only or store.read_only
        self.decider = Decider(
            store,
            None if read_only else self.session,
            lease_min_seconds=settings.lease_min_seconds,
        )
        # per fan-out: its bound key maker, its shared inputs' versions, its lineage
        self.fanouts: dict[FanOut, tuple[Callable[[dict[str, str]], str], dict[str, str]]] = {}
        self.lineages: dict[FanOut, tuple[str, str, str]] = {}
        self.computers: dict[FanOut, Callable[[Node, dict[str, Any], str | None], Outcome]] = {}
        self.frozen = False
        self.address = store_address(store, executor)  # workers read and write the store

    # -- keys and values ------------------------------------------------------------

    def value_of(self, node: Node) -> Any:
        """A value of ``node``'s result that no one else holds (module note: immutable results).

        The object a computed node returned, or a value loaded for a hit, is
        handed out once; every later hand-out is a copy decoded from the bytes
        captured from it. A constant's value is a copy each time. A
        ``cache=False`` result is not stored: its one object is handed out as is.
        """
        if node.is_constant:
            return node.constant_value()
        values = self.values
        if not node.cache:
            if node not in values:
                values[node] = self.load(node)
            return values[node]
        spare = values.pop(node, MISSING)
        if spare is not MISSING:
            return spare
        captured = self.captured.get(node)
        if captured is not None:
            return captured.value()
        value = self.load(node)
        if self.readers.get(node, 0) + (node in self.targets) > 1:  # handed out again
            self.captured[node] = self.store.capture(value)  # it was stored: it pickles
        return value

    def load(self, node: Node) -> Any:
        """The stored result of a decided node (computed again if its blob is unreadable)."""
        try:
            return self.store.load(self.dvs[node])
        except (KeyError, StoreCorruptError):
            # The blob is gone or failed its checksum (the store has dropped its rows):
            # never serve it; compute the node again, here, from its inputs.
            return self.recompute(node)

    def capture(self, record: Record, value: Any) -> Captured:
        """The bytes of the result ``record`` describes, taken now (see `value_of`).

        A result that cannot be pickled fails its node with a `NodeError`
        (`fail_unstorable`), once the results queued before it are written.
        """
        try:
            return self.store.capture(value)
        except UnstorableResultError as exc:
            self.flush()
            self.fail_unstorable([(record, exc)])

    def recompute(self, node: Node) -> Any:
        """Compute a node whose stored blob could not be loaded, and store it again."""
        input_dvs = input_versions(node, self.dvs.__getitem__)
        key = cache_key(node, input_dvs) if node.cache else None
        if key is not None and not self.store.read_only:
            stored = self.session.acquire(key, before_wait=self.flush_before_wait)
            if stored is not None:  # another process stored it meanwhile
                try:
                    value = self.store.load(stored)
                except (KeyError, StoreCorruptError):
                    self.session.claim([key])
                else:
                    self.dvs[node] = stored
                    self.report.statuses[node] = NodeStatus(node, "hit", key, stored)
                    return value
        out = compute_in_process(node, self.input_values(node), key)
        if key is not None:
            record = make_record(node, key, input_dvs, out.data_version, out.duration)
            self.session.writer.add(record, self.capture(record, out.value))
            self.flush()  # at once: the run goes on reading this value
        self.dvs[node] = out.data_version
        # it was decided a hit, but its process() ran: the report says so
        self.report.statuses[node] = NodeStatus(
            node, "computed", key, out.data_version, out.duration
        )
        return out.value

    def input_values(self, node: Node) -> dict[str, Any]:
        return {
            name: self.value_of(src) if isinstance(src, Node) else src
            for name, src in node.bindings.items()
        }

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> RunReport:
        ok = False
        try:
            if len(self.order) >= self.settings.prefetch_min_nodes and not self.force:
                self.decider.prefetch(n.label for n in self.order if n.cache and not n.is_constant)
            try:
                with self.gc_frozen():
                    self.loop()
            finally:
                self.flush()  # results that completed are kept even when another node failed
            self.report.values = {t: self.value_of(t) for t in self.order if t in self.targets}
            ok = True
        finally:
            self.session.close(ok)  # releases leases still held; writes the run log's one row
            self.report.budget = self.session.budget
        return self.report

    @contextmanager
    def gc_frozen(self) -> Iterator[None]:
        """Hide the graph from the cyclic GC during a long run (and restore the GC after).

        On a 100k-node graph the collector would otherwise rescan the whole graph
        many times over. Collections stay on and see only what the run and
        ``process()`` make; young collections are made rarer, as most of what the
        loop allocates lives on. (Disabling the GC and re-enabling it around each
        ``process()`` made every call pay a young-generation collection.) A
        process that froze objects itself (a pre-forking server) is left as it is.
        """
        freeze = gc.get_freeze_count() == 0
        thresholds = gc.get_threshold()
        if freeze:
            gc.freeze()
            gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])
        self.frozen = freeze
        try:
            yield
        finally:
            if freeze:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
            self.frozen = False

    def loop(self) -> None:
        """Decide ready waves, submit their misses, record what completes, until all settled."""
        ready, in_flight = self.ready, self.in_flight
        while True:
            while ready and self.error is None:
                wave = list(ready)
                ready.clear()
                step = self.settings.claim_ahead  # one look-up and claim for this many at most
                if len(wave) <= step:
                    self.decide_wave(wave)
                else:
                    for start in range(0, len(wave), step):
                        self.decide_wave(wave[start : start + step])
                if self.frozen and len(wave) >= self.settings.prefetch_min_nodes:
                    gc.freeze()  # what a large wave made lives on: out of the collector's sight
            if self.error is not None:
                self.watched.clear()
            if not in_flight and not self.watched:
                break
            if self.watched:
                self.flush_before_wait()  # never hold back results while waiting for someone's
            if in_flight:
                timeout = self.poll_delay if self.watched else None
                done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in done:
                    self.complete(fut)
                if self.watched and self.error is None:
                    self.act_on_watched(self.decider.poll(self.watched))
            else:  # only keys others compute are left: block until they are stored or ours
                self.act_on_watched(self.decider.wait(self.watched))
        if self.error is not None:
            raise self.error

    def decide_wave(self, wave: list[Node]) -> None:
        """Settle the wave's constants and hits, watch keys others compute, submit the rest."""
        keyed: list[tuple[Node, str, dict[str, str]]] = []
        works: list[Work] = []
        decider, force = self.decider, self.force
        for node in wave:
            if node.is_constant:
                self.settle(node, "constant", None, node.data_version_of_constant())
                continue
            if not node.cache:
                self.submit(node, None, None)
                continue
            key, input_dvs = self.key_of(node)
            forced = node in force
            if not forced:
                version = decider.stored_version(key, node.label)
                if version is not None:  # the prefetch answers it: no query
                    self.settle(node, "hit", key, version)
                    continue
            keyed.append((node, key, input_dvs))
            works.append(Work(key, node.label, forced, node.processor))
        if works:
            self.act_on(keyed, decider.decide(works))

    def act_on(self, keyed: list[tuple[Node, str, dict[str, str]]], decided: Decided) -> None:
        """Settle keyed nodes as the decide step said: hit, watch or compute."""
        hits, theirs, force = decided.hits, set(decided.theirs), self.force
        for node, key, input_dvs in keyed:
            forced = node in force
            if not forced and key in hits:
                self.settle(node, "hit", key, hits[key])
            elif not forced and key in theirs:
                self.watched.setdefault(key, []).append((node, input_dvs))
            elif self.error is None:
                self.check_may_compute(node)
                self.submit(node, key, input_dvs)

    def key_of(self, node: Node) -> tuple[str, dict[str, str]]:
        """``node``'s cache key and input versions (a fan-out's with its one key maker)."""
        fan = node.fanout
        if fan is None:
            input_dvs = input_versions(node, self.dvs.__getitem__)
            return cache_key(node, input_dvs), input_dvs
        bound = self.fanouts.get(fan)
        if bound is None:
            ignored = node.ignored
            shared = {name: self.dvs[up] for name, up in fan.shared.items() if name not in ignored}
            bound = self.fanouts[fan] = (key_maker(node), shared)
        input_dvs = dict(node.fixed_input_versions())
        input_dvs.update(bound[1])
        return bound[0](input_dvs), input_dvs

    def check_may_compute(self, node: Node) -> None:
        """Raise if ``node`` may not compute: upstream of ``run_only``'s targets, or read-only."""
        if self.upstream_only and node not in self.targets:
            raise NotCachedError(
                f"run_only needs the stored result of {node.describe()}, but the store has "
                "none for its current inputs; run graph.run_upto(...) on it first"
            )
        if self.store.read_only:
            raise ReadOnlyStoreError(
                f"{node.describe()} must compute (the store has no result for its current "
                f"inputs), but {self.store!r} was opened read-only; open the store "
                "writable to compute and save it"
            )

    def submit(self, node: Node, key: str | None, input_dvs: dict[str, str] | None) -> None:
        """Hand ``node``'s job to the executor; a future already done is recorded at once."""
        if self.address is not None and key is not None and input_dvs is not None:
            self.track(self.submit_via_store(node, key, input_dvs), node, key, input_dvs)
        else:
            self.submit_values(node, key, input_dvs)

    def submit_via_store(self, node: Node, key: str, input_dvs: dict[str, str]) -> Future[Outcome]:
        """The job of a worker that loads ``node``'s stored inputs, computes and saves.

        Inputs the driver holds as values (constants, inline values, results of
        ``cache=False`` nodes, results computed here) travel in the job.
        """
        values: dict[str, Any] = {}
        stored: dict[str, str] = {}
        held = self.values.keys() | self.captured.keys()
        for name, src in node.bindings.items():
            if not isinstance(src, Node):
                values[name] = src
            elif src.is_constant or not src.cache or src in held:
                values[name] = self.value_of(src)
            else:
                stored[name] = self.dvs[src]
        record = make_record(node, key, input_dvs, "", 0.0, self.lineage(node))
        assert self.address is not None
        return submit_stored(self.executor, node, self.address, values, stored, record)

    def submit_values(self, node: Node, key: str | None, input_dvs: dict[str, str] | None) -> None:
        """Hand ``node``'s job with its input values to the executor."""
        inputs = self.input_values(node)
        fan = node.fanout
        if fan is not None and self.executor.in_process:
            compute = self.computers.get(fan)
            if compute is None:
                compute = self.computers[fan] = fanout_computer(node)
            fut: Future[Outcome] = self.executor.submit(compute, node, inputs, key)
        else:
            fut = submit_compute(self.executor, node, inputs, key)
        self.track(fut, node, key, input_dvs)

    def track(
        self, fut: Future[Outcome], node: Node, key: str | None, input_dvs: dict[str, str] | None
    ) -> None:
        """Wait for ``fut`` in the loop; a future already done is recorded at once."""
        self.in_flight[fut] = (node, key, input_dvs)
        if fut.done():
            self.complete(fut)

    def complete(self, fut: Future[Outcome]) -> None:
        """Record a finished job and release its dependents; a failure stops new waves."""
        node, key, input_dvs = self.in_flight.pop(fut)
        exc = fut.exception()
        if isinstance(exc, InputNotStoredError) and self.error is None:
            self.submit_values(node, key, input_dvs)  # loads (or recomputes) its inputs here
            return
        if exc is not None:
            self.error = self.error or exc
            self.report.statuses[node] = NodeStatus(node, "failed", key, None)
            return
        try:
            self.record(node, key, input_dvs, fut.result())
        except NodeError as exc:  # a result of this write could not be stored
            self.error = self.error or exc
            return
        self.resolve(node)

    def settle(self, node: Node, status: Status, key: str | None, data_version: str) -> None:
        """``node`` is a constant or a hit: note it and release its dependents."""
        self.dvs[node] = data_version
        self.report.statuses[node] = NodeStatus(node, status, key, data_version)
        if key is not None:
            self.hit_keys.append(key)
        self.resolve(node)

    def act_on_watched(self, decided: Decided) -> None:
        """Keys others were computing: stored ones are hits, lapsed ones ours to compute."""
        settings = self.settings
        if decided.compute or decided.hits:
            self.poll_delay = settings.lease_first_poll_seconds
        else:
            self.poll_delay = min(self.poll_delay * 1.5, settings.lease_max_poll_seconds)
        for key, data_version in decided.hits.items():
            for node, _ in self.watched.pop(key):
                self.settle(node, "hit", key, data_version)
        for key in decided.compute:
            for node, input_dvs in self.watched.pop(key):
                self.submit(node, key, input_dvs)

    def record(
        self, node: Node, key: str | None, input_dvs: dict[str, str] | None, out: Outcome
    ) -> None:
        """Queue a computed result for the store and remember its value for the run."""
        value, data_version, duration = out
        self.dvs[node] = data_version
        self.report.statuses[node] = NodeStatus(node, "computed", key, data_version, duration)
        if isinstance(value, Saved) and key is not None:  # a worker saved it in the store
            self.decider.computed(
                Work(key, node.label, False, node.processor), data_version, duration
            )
            self.session.saved([key])
            return
        self.values[node] = value
        if node.cache and key is not None and input_dvs is not None:
            work = Work(key, node.label, False, node.processor)
            self.decider.computed(work, data_version, duration)
            record = make_record(node, key, input_dvs, data_version, duration, self.lineage(node))
            captured = self.capture(record, value)  # before any consumer can touch the value
            if self.readers.get(node, 0) + (node in self.targets) > 1:
                self.captured[node] = captured  # copies for the second reader on
            self.session.writer.add(record, captured, duration=duration)  # written by its policy

    def lineage(self, node: Node) -> tuple[str, str, str] | None:
        """(processor name, code version, init version): worked out once per fan-out."""
        fan = node.fanout
        if fan is None:
            return None
        lineage = self.lineages.get(fan)
        if lineage is None:
            lineage = (processor_name(node), node.code_version(), node.init_version())
            self.lineages[fan] = lineage
        return lineage

    def flush(self) -> None:
        """Write the queued results (the session writer): blobs, then rows in one transaction."""
        unstorable = self.session.flush()  # leases of the saved keys released
        if unstorable:
            self.fail_unstorable(unstorable)

    def fail_unstorable(self, unstorable: list[tuple[Record, UnstorableResultError]]) -> NoReturn:
        """Results that could not be pickled fail their nodes: raise a NodeError for the first.

        Every other result of their write was stored; the failed nodes' leases are released.
        """
        self.session.release([record.key for record, _ in unstorable])
        nodes = {node.label: node for node in self.order}
        errors = []
        for record, exc in unstorable:
            node = nodes[record.node]
            self.report.statuses[node] = NodeStatus(node, "failed", record.key, None)
            message = f"{node.describe()}: {exc}"
            errors.append(NodeError(message, node=node.label, exception=exc))
        raise errors[0] from errors[0].exception

    def flush_before_wait(self) -> None:
        """Write and commit everything this run holds: it is about to wait for another process."""
        self.flush()
        self.session.commit()

    def resolve(self, node: Node) -> None:
        """``node`` has a data version: release its dependents and drop values no one needs."""
        dependents = self.dependents.get(node)
        if dependents:
            waiting = self.waiting
            for dep in dependents:
                left = waiting[dep] = waiting[dep] - 1
                if not left:
                    self.ready.append(dep)
        if node.upstream():
            self.drop_values(node)

    def drop_values(self, node: Node) -> None:
        """``node`` is settled: its inputs' values may go if no one else in the run reads them."""
        readers, values, captured = self.readers, self.values, self.captured
        for up in node.upstream():
            left = readers[up] = readers[up] - 1
            if left == 0 and up not in self.targets:
                values.pop(up, None)
                if captured:
                    captured.pop(up, None)


def execute(
    store: Store,
    executor: Executor,
    order: list[Node],
    targets: Iterable[Node],
    *,
    force: Iterable[Node] = (),
    upstream_only: bool = False,
    report: RunReport | None = None,
    settings: Settings | None = None,
) -> RunReport:
    """Run ``order`` (a topological order covering ``targets``) and return the report.

    ``force`` nodes compute even on a hit. With ``upstream_only`` every non-target
    node must be a hit (``run_only``); otherwise `NotCachedError` is raised. A
    ``report`` passed in is filled as nodes finish, so a run that raises leaves in
    it what was computed, hit and failed before the error. ``settings`` tune the
    run (default: the store's).
    """
    check_code_versions(order)
    tuning = store.settings if settings is None else settings
    run = _Run(store, executor, list(targets), order, frozenset(force), upstream_only, tuning)
    if report is not None:
        run.report = report
    return run.run()
