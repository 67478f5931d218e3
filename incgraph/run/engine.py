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

Executors only submit. The serial executor completes a job inside ``submit``
(it says so with ``inline = True``); with nothing ever in flight the ready
queue would visit nodes in topological order, so for it the loop walks that
order directly, with the same ``decide``/``record`` steps and none of the
queue's bookkeeping. It is the debugging path. Pool executors let independent
ready nodes run at once.

A *fan-out* (nodes made by one ``Graph.add_nodes`` call that differ only in
inline inputs: a ForEach's tasks) is walked in bulk by the serial walk
(`_Run.walk_fanout`): per chunk, every member is keyed from the shared
inputs' versions with one bound key maker, looked up in one query, its
lease-worthy misses claimed in one transaction, and the misses computed with
the shared inputs loaded once and the fan-out's one processor instance. Keys,
records, hits and leases are exactly what deciding the members one by one
gives; only the per-node overhead is gone.

A rerun first reads every node's latest (key, data version) in one bulk query
per 500 nodes; a node whose new key matches is a hit without a query of its
own. Computed results are written in batches by the store session's writer
(`incgraph.store.writer`: blobs, then one index transaction), promptly when a
result was slow to compute or large.
Failures raise `NodeError` once
in-flight jobs have finished; nothing half-done is recorded. A result that
cannot be pickled fails its node the same way (`incgraph.store.writer.save_results`
stores the other results of its write). A hit whose blob turns out gone or
corrupt when its value is needed is computed again and reported as computed.

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
(`StoreSession`): a hit appends its key to
``session.hits`` (a list append; one row is written when the run ends), and a
node that must compute first claims its key. A key another process is
computing is waited for (the serial walk blocks; the pool loop keeps working
and polls), then is a hit; a lapsed lease is taken over. The pool loop claims
every node of a ready wave in one transaction; the serial walk looks up the
keys of the nodes ahead of it that are decidable (a ForEach's sibling tasks)
in one query and claims their misses in one transaction. Leases guard work
worth guarding: a node whose latest stored result (read by the prefetch) took
less than ``settings.lease_min_seconds`` recomputes without a claim, as a duplicate
compute of a cheap node by two processes is harmless, and so does a node whose
processor has computed at least `PROVEN_CHEAP_AFTER` times in this run,
each time that quickly (the look-ahead claims at most `UNPROVEN_AHEAD`
nodes of a processor not yet seen, so a fan-out of cheap tasks stops paying
for leases after its first few). Any other node computing for the first time is
leased. Leases are released once the results' index rows are committed, and a
run commits what it holds before it waits for anyone, so two runs never wait for
each other.
A read-only store raises `ReadOnlyStoreError` naming
the node before anything computes.

Batches (`incgraph.run.batch`) take the same steps in bulk, per pass
and per chunk of items: keys from `incgraph.run.keys`, one
``lookup_many``, batch jobs from `incgraph.run.jobs`, one ``save_many``.
Key building, record making and job submission are shared, so a graph run
and a batch agree on every key and every record.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, NoReturn, cast

from incgraph.core.graph import Node
from incgraph.errors import (
    NodeError,
    ReadOnlyStoreError,
    StoreCorruptError,
    UnstorableResultError,
)
from incgraph.executors.base import Executor, SerialExecutor
from incgraph.run.jobs import Outcome, compute_in_process, fanout_computer, submit_compute
from incgraph.run.keys import (
    cache_key,
    check_code_versions,
    input_versions,
    key_maker,
    make_record,
    processor_name,
)
from incgraph.sentinels import MISSING, Missing
from incgraph.settings import Settings
from incgraph.store import Store
from incgraph.store.codecs import Captured
from incgraph.store.garbage import GcReport
from incgraph.store.leases import Claims
from incgraph.store.protocols import Record

# Tuning (look-ahead, lease threshold and polling) comes from the run's `Settings`
# (`incgraph.settings`): claim_ahead, prefetch_min_nodes, lease_min_seconds,
# lease_first_poll_seconds, lease_max_poll_seconds; writes follow the session writer's.
# The look-ahead claims at most this many lease-worthy nodes of a processor not yet seen
# computing in the run,
UNPROVEN_AHEAD = 64
# ... so that once this many of its computes were cheap, the rest need no lease.
PROVEN_CHEAP_AFTER = 16

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
    """State of one execution of the loop. Not reused."""

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
        self.latest: dict[str, tuple[str, str, float]] = {}
        # ``order`` is the upstream closure of the targets, so every binding of a node in it
        # points inside it. Counts are per binding (a node binding one upstream twice counts
        # twice, and is decremented twice), which keeps them consistent without dedup.
        readers: dict[Node, int] = {}
        for node in order:
            for up in node.upstream():
                readers[up] = readers.get(up, 0) + 1
        self.readers = readers
        self.waiting: dict[Node, int] = {}
        self.dependents: dict[Node, list[Node]] = {}
        label = ", ".join(t.label for t in targets)
        label = label if len(label) <= 200 else label[:197] + "..."
        self.session = store.session("run", label, settings=settings)
        self.hit_keys = self.session.hits
        # pool loop: key -> the nodes (equal nodes share a key) to claim in this wave, and
        # those whose key another process is computing
        self.to_claim: dict[str, list[tuple[Node, dict[str, str]]]] = {}
        self.watched: dict[str, list[tuple[Node, dict[str, str]]]] = {}
        self.poll_delay = self.settings.lease_first_poll_seconds
        # serial walk: keys claimed ahead of the walk in one transaction (see claim_ahead)
        self.walk_pos = 0
        self.claimed_ahead: set[str] = set()
        self.keyed_ahead: dict[Node, tuple[str, dict[str, str]]] = {}
        self.found_ahead: dict[str, str] = {}  # keys the look-ahead found stored: their versions
        self.missing_ahead: set[str] = set()  # keys the look-ahead found missing
        # processor -> how many of its computes in this run were cheap (-inf: one was not)
        self.cheap_runs: dict[Any, float] = {}
        # the serial executor runs each job in this thread: called directly, no Future
        self.direct = type(executor) is SerialExecutor
        self.frozen = False  # whether the serial walk froze the GC's view (see _walk)

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
            self.flush()
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
            self.prefetch()
            try:
                if getattr(self.executor, "inline", False):
                    self._walk()
                else:
                    self._loop()
            finally:
                self.flush()  # results that completed are kept even when another node failed
            self.report.values = {t: self.value_of(t) for t in self.order if t in self.targets}
            ok = True
        finally:
            self.session.close(ok)  # releases leases still held; writes the run log's row
            self.report.budget = self.session.budget
        return self.report

    def prefetch(self) -> None:
        """Read every node's latest (key, data version, duration) in bulk.

        On a rerun where nothing changed, a node's new key equals its latest key, so
        the hit is confirmed without a query of its own. A key that differs falls
        back to an exact lookup, so a stale prefetch can cost time, never a wrong hit.
        """
        if len(self.order) >= self.settings.prefetch_min_nodes and not self.force:
            labels = [n.label for n in self.order if n.cache and not n.is_constant]
            self.latest = self.store.latest_entries(labels)

    def _walk(self) -> None:
        """The loop for executors that finish a job inside ``submit`` (serial).

        With nothing ever in flight, the ready queue visits nodes in topological
        order, so the walk does exactly that without the queue's bookkeeping.
        """
        in_flight: dict[Future[Outcome], tuple[Node, str | None, dict[str, str] | None]] = {}
        # The walk allocates small objects for every node; on a 100k-node graph the cyclic
        # GC would rescan the whole graph many times over. gc.freeze() moves everything
        # that exists now (the graph, its nodes) out of the collector's sight for the
        # walk: collections stay on and see only what the walk and process() make.
        # (Disabling the GC instead and re-enabling it around each process() call made
        # every call pay a young-generation collection: ~10 us per node.)
        # A process that froze objects itself (a pre-forking server keeping pages shared)
        # is left as it is: unfreezing would undo its freeze. Most of what the walk
        # allocates lives on (results, records, statuses), so young collections mostly
        # find nothing: the walk makes them rarer (every 20,000 allocations, not 700;
        # cyclic garbage is still collected, a little later), and restores the setting.
        freeze = self.frozen = gc.get_freeze_count() == 0
        thresholds = gc.get_threshold()
        if freeze:
            gc.freeze()
            gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])
        try:
            self._walk_nodes(in_flight)
        finally:
            if freeze:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
            self.frozen = False

    def _walk_nodes(self, in_flight: dict[Future[Outcome], Any]) -> None:
        order, pos = self.order, 0
        bulk = not (self.force or self.upstream_only or self.store.read_only)
        while pos < len(order):
            node = order[pos]
            self.walk_pos = pos
            pos += 1
            fan = node.fanout
            if fan is not None and bulk and node.cache:
                start = pos - 1
                while pos < len(order) and order[pos].fanout is fan:
                    pos += 1
                self.walk_fanout(order[start:pos])
                continue
            if self.decide(node, in_flight):
                fut, (node, key, input_dvs) = in_flight.popitem()
                try:
                    out = fut.result()
                except BaseException:
                    self.report.statuses[node] = NodeStatus(node, "failed", key, None)
                    raise
                self.record(node, key, input_dvs, out)
            self.drop_values(node)

    def walk_fanout(self, nodes: list[Node]) -> None:
        """Decide a run of a fan-out's nodes (the serial walk's bulk path).

        The nodes share every upstream node (decided by now), so they are keyed
        from one set of shared input versions, looked up in one query per chunk,
        and their lease-worthy misses claimed in one transaction per chunk, as
        `look_ahead` would, without deciding them one by one. A chunk holds
        ``settings.claim_ahead`` nodes, or ``UNPROVEN_AHEAD + 1`` while the processor
        may need leases (not yet proved cheap in this run), so that a fan-out of
        cheap nodes claims only its first few.
        """
        first = nodes[0]
        assert first.fanout is not None
        shared = first.fanout.shared
        ignored = first.ignored
        shared_dvs = {name: self.dvs[up] for name, up in shared.items() if name not in ignored}
        key_of = key_maker(first)
        lineage: tuple[str, str, str] | None = None  # processor name, code and init versions
        done = 0
        while done < len(nodes):
            cheap = self.known_cheap(first)
            chunk = nodes[
                done : done + (self.settings.claim_ahead if cheap else UNPROVEN_AHEAD + 1)
            ]
            done += len(chunk)
            keyed = []
            keyed_ahead = self.keyed_ahead
            for node in chunk:
                ahead = keyed_ahead.pop(node, None) if keyed_ahead else None  # by look_ahead
                if ahead is None:
                    input_dvs = dict(node.fixed_input_versions())
                    input_dvs.update(shared_dvs)
                    ahead = (key_of(input_dvs), input_dvs)
                keyed.append((node, *ahead))
            misses = self.settle_stored(keyed)
            if misses:
                if lineage is None:
                    lineage = (processor_name(first), first.code_version(), first.init_version())
                self.compute_misses(misses, shared, lineage)
            self.drop_values(first, len(chunk))  # every member reads exactly first's upstream
            if self.frozen:
                # What the chunk made and still holds (results, records, statuses) is
                # long-lived: out of the collector's sight too, so later collections do
                # not rescan a fan-out's growing results (unfrozen when the walk ends).
                gc.freeze()

    def settle_stored(
        self, keyed: list[tuple[Node, str, dict[str, str]]]
    ) -> list[tuple[Node, str, dict[str, str]]]:
        """Settle the keyed nodes whose key is stored as hits (one query); return the rest."""
        latest, found, missing = self.latest, self.found_ahead, self.missing_ahead
        entries = [latest.get(node.label) for node, _, _ in keyed] if latest else None
        wanted = [
            key
            for i, (_, key, _) in enumerate(keyed)
            if (entries is None or entries[i] is None or entries[i][0] != key)  # type: ignore[index]
            and key not in found
            and key not in missing
        ]
        stored = self.store.lookup_versions(wanted) if wanted else {}
        misses = []
        for i, (node, key, input_dvs) in enumerate(keyed):
            entry = None if entries is None else entries[i]
            if entry is not None and entry[0] == key:
                data_version: str | None = entry[1]
            else:
                data_version = stored.get(key) or found.pop(key, None)
                missing.discard(key)
            if data_version is None:
                misses.append((node, key, input_dvs))
            else:
                self.settle_hit(node, key, data_version)
        return misses

    def compute_misses(
        self,
        misses: list[tuple[Node, str, dict[str, str]]],
        shared: dict[str, Node],
        lineage: tuple[str, str, str],
    ) -> None:
        """Claim the lease-worthy misses of a fan-out chunk in one go, then compute them here.

        Each member gets its own values of the ``shared`` inputs (`value_of`).
        """
        if self.cheap_runs.get(misses[0][0].processor, 0) >= PROVEN_CHEAP_AFTER:
            to_claim = []  # proved cheap in this run: no member needs a lease
        else:
            to_claim = [
                key
                for node, key, _ in misses
                if key not in self.claimed_ahead and not self.known_cheap(node)
            ]
        claims = self.session.claim(to_claim) if to_claim else None
        check_claims = claims is not None or bool(self.claimed_ahead)  # else: all ours
        compute = fanout_computer(misses[0][0])
        for node, key, input_dvs in misses:
            if check_claims:
                self.claimed_ahead.discard(key)
                if claims is not None and key in claims.done:
                    self.settle_hit(node, key, claims.done[key])
                    continue
                if claims is not None and key in claims.theirs:
                    stored = self.claim(key)  # waits for the other process
                    if stored is not None:
                        self.settle_hit(node, key, stored)
                        continue
            inputs = {**node.bindings}
            for name, up in shared.items():
                inputs[name] = self.value_of(up)
            try:
                out = compute(node, inputs, key)
            except BaseException:
                self.report.statuses[node] = NodeStatus(node, "failed", key, None)
                raise
            self.record(node, key, input_dvs, out, lineage)

    def _loop(self) -> None:
        for node in self.order:
            ups = node.upstream()
            self.waiting[node] = len(ups)
            for up in ups:
                self.dependents.setdefault(up, []).append(node)
        ready = deque(n for n in self.order if self.waiting[n] == 0)
        in_flight: dict[Future[Outcome], tuple[Node, str | None, dict[str, str] | None]] = {}
        error: BaseException | None = None
        while ready or in_flight or self.watched:
            while ready and error is None:
                node = ready.popleft()
                submitted = self.decide(node, in_flight, defer_claim=True)
                if not submitted:
                    self.resolve(node, ready)
                if not ready and self.to_claim:
                    for settled in self.claim_wave(in_flight):
                        self.resolve(settled, ready)
            if error is not None:
                self.to_claim.clear()
                self.watched.clear()
            if not in_flight and not self.watched:
                break
            if self.watched:
                self.flush_before_wait()  # never hold back results while waiting for someone's
            timeout = self.poll_delay if self.watched else None
            if in_flight:
                done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                self.session.lessee.ledger.wait_for_news(self.poll_delay)  # or sleeps
                done = set()
            if self.watched and error is None:
                for settled in self.poll_watched(in_flight):
                    self.resolve(settled, ready)
            for fut in done:
                node, key, input_dvs = in_flight.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    error = error or exc
                    self.report.statuses[node] = NodeStatus(node, "failed", key, None)
                    continue
                try:
                    self.record(node, key, input_dvs, fut.result())
                except NodeError as exc:  # a result of this write could not be stored
                    error = error or exc
                    continue
                self.resolve(node, ready)
        if error is not None:
            raise error

    def decide(
        self, node: Node, in_flight: dict[Future[Outcome], Any], *, defer_claim: bool = False
    ) -> bool:
        """Settle ``node`` now (constant or hit) or submit it; True if submitted.

        A node that must compute claims its key first, unless it is known to be
        cheap (``settings.lease_min_seconds``). With ``defer_claim`` (the pool loop)
        the claim waits for `claim_wave` and True is returned; otherwise a
        key another process holds is waited for here.
        """
        if node.is_constant:
            self.dvs[node] = node.data_version_of_constant()
            self.report.statuses[node] = NodeStatus(node, "constant", None, self.dvs[node])
            return False
        key: str | None = None
        input_dvs: dict[str, str] | None = None
        if node.cache:
            ahead = self.keyed_ahead.pop(node, None)
            if ahead is None:
                input_dvs = input_versions(node, self.dvs.__getitem__)
                key = cache_key(node, input_dvs)
                if not defer_claim and node not in self.force:
                    self.look_ahead(node, key)
            else:
                key, input_dvs = ahead
            if node not in self.force:
                data_version = self.stored_version(node, key)
                if data_version is not MISSING:
                    self.settle_hit(node, key, data_version)
                    return False
            if self.upstream_only and node not in self.targets:
                from incgraph.errors import NotCachedError

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
            if node not in self.force and not self.known_cheap(node):
                assert input_dvs is not None
                if defer_claim:
                    self.to_claim.setdefault(key, []).append((node, input_dvs))
                    return True
                stored = self.claim(key)
                if stored is not None:  # another process computed it meanwhile
                    self.settle_hit(node, key, stored)
                    return False
        self.submit(node, key, input_dvs, in_flight)
        return True

    def stored_version(self, node: Node, key: str) -> str | Missing:
        """The data version stored under ``key``, from what the walk knows, else one query."""
        latest = self.latest.get(node.label)
        if latest is not None and latest[0] == key:  # the prefetch answered it
            return latest[1]
        data_version = self.found_ahead.pop(key, MISSING)
        if data_version is MISSING and key not in self.missing_ahead:
            data_version = self.store.lookup_version(key)
        self.missing_ahead.discard(key)
        return data_version

    def prefetched(self, node: Node, key: str) -> bool:
        """Whether ``key`` is ``node``'s latest stored key, as read by `prefetch`."""
        latest = self.latest.get(node.label)
        return latest is not None and latest[0] == key

    def look_ahead(self, node: Node, key: str) -> None:
        """Look up ``key`` and the keys of the nodes after it in bulk; claim the misses in one go.

        The walk is about to decide ``node``. The nodes right after it whose inputs
        are all known now (e.g. the sibling tasks of a ForEach) are keyed here (their
        keys are kept in `keyed_ahead`, so `decide` does not build them
        twice), all the keys are looked up in one query, and the misses worth a
        lease are claimed in one transaction. The look-ahead stops at the first node
        still waiting on an input, so a chain pays nothing for it. It takes at most
        `UNPROVEN_AHEAD` lease-worthy nodes of a processor this run has not
        yet seen compute, so that once a few have proved cheap
        (`PROVEN_CHEAP_AFTER`) the rest are looked up without leases.
        """
        wanted: dict[str, Node] = {} if self.prefetched(node, key) else {key: node}
        unproven = 0
        for nxt in self.order[self.walk_pos + 1 : self.walk_pos + 1 + self.settings.claim_ahead]:
            if nxt.is_constant:
                continue
            if any(up not in self.dvs for up in nxt.upstream()):
                break  # from here on the walk depends on results not known yet
            if not nxt.cache or nxt in self.force:
                continue
            if nxt.processor not in self.cheap_runs and not self.known_cheap(nxt):
                unproven += 1
                if unproven > UNPROVEN_AHEAD:
                    break
            input_dvs = input_versions(nxt, self.dvs.__getitem__)
            nxt_key = cache_key(nxt, input_dvs)
            self.keyed_ahead[nxt] = (nxt_key, input_dvs)
            if not self.prefetched(nxt, nxt_key):
                wanted[nxt_key] = nxt
        if not wanted:
            return
        stored = self.store.lookup_versions(wanted)
        self.found_ahead.update(stored)  # decide() settles these as hits without a query
        missing = [k for k in wanted if k not in stored]
        self.missing_ahead.update(missing)
        if self.store.read_only or self.upstream_only:
            return  # decide() raises for the first node that must compute
        to_claim = [k for k in missing if not self.known_cheap(wanted[k])]
        if to_claim:
            claims = self.session.claim(to_claim)
            self.claimed_ahead.update(claims.mine)
            self.found_ahead.update(claims.done)  # stored by another process since the lookup
            self.missing_ahead.difference_update(claims.done)

    def claim(self, key: str) -> str | None:
        """Claim ``key`` for the serial walk; None when it is ours to compute, else its version.

        A key the look-ahead claimed is ours already. A key another process holds
        is waited for, after committing what this run holds (so two runs never
        wait for each other).
        """
        if key in self.claimed_ahead:
            self.claimed_ahead.discard(key)
            return None
        claims = self.session.claim([key])
        if key in claims.done:
            return claims.done[key]
        if key in claims.theirs:
            self.flush_before_wait()
            claims = self.session.lessee.wait([key])
            if key in claims.done:
                return claims.done[key]
        return None

    def known_cheap(self, node: Node) -> bool:
        """Whether ``node`` is known to compute in < ``lease_min_seconds``, so it needs no lease.

        Known from its latest stored result, or because its processor's computes in
        this run were all that quick (at least `PROVEN_CHEAP_AFTER` of them).
        """
        latest = self.latest.get(node.label)
        if latest is not None and latest[2] < self.settings.lease_min_seconds:
            return True
        return self.cheap_runs.get(node.processor, 0) >= PROVEN_CHEAP_AFTER

    def submit(
        self,
        node: Node,
        key: str | None,
        input_dvs: dict[str, str] | None,
        in_flight: dict[Future[Outcome], Any],
    ) -> None:
        if self.direct:
            fut = cast("Future[Outcome]", _Done(node, self.input_values(node), key))
        else:
            fut = submit_compute(self.executor, node, self.input_values(node), key)
        in_flight[fut] = (node, key, input_dvs)

    def settle_hit(self, node: Node, key: str, data_version: str) -> None:
        self.dvs[node] = data_version
        self.report.statuses[node] = NodeStatus(node, "hit", key, data_version)
        self.hit_keys.append(key)

    def claim_wave(self, in_flight: dict[Future[Outcome], Any]) -> list[Node]:
        """Claim the keys of a ready wave in one transaction; return the nodes settled as hits."""
        wave, self.to_claim = self.to_claim, {}
        claims = self.session.claim(wave)
        for key in claims.theirs:
            self.watched.setdefault(key, []).extend(wave.pop(key))
        return self.settle_claimed(claims, wave, in_flight)

    def poll_watched(self, in_flight: dict[Future[Outcome], Any]) -> list[Node]:
        """Look at the keys others are computing: stored ones are hits, lapsed ones ours."""
        claims = self.session.poll(self.watched)
        if claims.mine or claims.done:
            self.poll_delay = self.settings.lease_first_poll_seconds
        else:
            self.poll_delay = min(self.poll_delay * 1.5, self.settings.lease_max_poll_seconds)
        ready = {key: self.watched.pop(key) for key in [*claims.mine, *claims.done]}
        return self.settle_claimed(claims, ready, in_flight)

    def settle_claimed(
        self,
        claims: Claims,
        nodes: dict[str, list[tuple[Node, dict[str, str]]]],
        in_flight: dict[Future[Outcome], Any],
    ) -> list[Node]:
        """Submit the nodes of keys now ours; settle those of stored keys as hits (returned)."""
        for key in claims.mine:
            for node, input_dvs in nodes[key]:
                self.submit(node, key, input_dvs, in_flight)
        settled = []
        for key, data_version in claims.done.items():
            for node, _ in nodes[key]:
                self.settle_hit(node, key, data_version)
                settled.append(node)
        return settled

    def record(
        self,
        node: Node,
        key: str | None,
        input_dvs: dict[str, str] | None,
        out: Outcome,
        lineage: tuple[str, str, str] | None = None,
    ) -> None:
        """Queue a computed result for the store and remember its value for the run.

        ``lineage`` is passed on to `make_record`.
        """
        value, data_version, duration = out
        settings = self.settings
        cheap_runs, processor = self.cheap_runs, node.processor
        cheap_runs[processor] = (
            cheap_runs.get(processor, 0) + 1
            if duration < settings.lease_min_seconds
            else float("-inf")
        )
        self.dvs[node] = data_version
        self.values[node] = value
        self.report.statuses[node] = NodeStatus(node, "computed", key, data_version, duration)
        if node.cache and key is not None and input_dvs is not None:
            record = make_record(node, key, input_dvs, data_version, duration, lineage)
            captured = self.capture(record, value)  # before any consumer can touch the value
            if self.readers.get(node, 0) + (node in self.targets) > 1:
                self.captured[node] = captured  # copies for the second reader on
            self.session.writer.add(record, captured, duration=duration)  # written by its policy

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

    def resolve(self, node: Node, ready: deque[Node]) -> None:
        """``node`` has a data version: release its dependents and drop values no one needs."""
        for dep in self.dependents.get(node, ()):
            self.waiting[dep] -= 1
            if self.waiting[dep] == 0:
                ready.append(dep)
        self.drop_values(node)

    def drop_values(self, node: Node, times: int = 1) -> None:
        """``node`` is settled: its inputs' values may go if no one else in the run reads them.

        ``times`` settles that many nodes reading exactly what ``node`` reads.
        """
        readers, values, captured = self.readers, self.values, self.captured
        for up in node.upstream():
            left = readers[up] = readers[up] - times
            if left == 0 and up not in self.targets:
                values.pop(up, None)
                if captured:
                    captured.pop(up, None)


class _Done:
    """A finished job of the serial walk: what a done Future offers, without its lock."""

    __slots__ = ("_error", "_value")

    def __init__(self, node: Node, inputs: dict[str, Any], key: str | None) -> None:
        self._error: BaseException | None = None
        try:
            self._value: Outcome | None = compute_in_process(node, inputs, key)
        except BaseException as exc:  # raised by result(), like a done future's
            self._value, self._error = None, exc

    def result(self) -> Outcome:
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


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
