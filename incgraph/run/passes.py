"""The batch loop: passes over chunks of items, a table of data versions, jobs, failures.

Design note
-----------
State. A *table* holds, per node, a column of data versions, one per item:
keys of later passes are built from it, never from values. Constants get
theirs when ``prep_fn(index, item)`` first runs for the item (it binds the
item's constants, and may call ``graph.persist(path)``). Their values are held
only while the item's chunk is in flight; a breadth-first pass that must
compute a node reading a constant calls ``prep_fn`` again for that item, and
checks that it bound the same value (``prep_fn`` must be deterministic).
Results a later pass reads are kept in memory while they fit in
``settings.batch_keep_bytes`` (always for ``cache=False`` nodes, whose results are not
stored, and for a depth-first chunk); otherwise they are loaded back from the
store when an item computes. A column is dropped after its last reader's pass.

What is its own. The pass order, the item table, job sizing, failures per
item and releasing instances between passes. Deciding hits and claiming is
the one decide step's (`incgraph.run.decide`), writing is the session's
writer's (`incgraph.store.writer`), keys are `incgraph.run.keys`'.

Waves. Each chunk of a pass is one wave through the decide step: one look-up,
one claim of the misses worth a lease (a node whose computes are known to
cost about a millisecond or less is not leased). Hits are appended to the
run log in one list extend. Keys another run is computing are set aside; the
rest are computed. Items whose key is the same within a pass are computed
once (``twins``). Only when the pass holds no lease does it wait for the keys
set aside (so two batches never wait for each other): breadth-first at the
end of the pass (two batches on one store then share a pass chunk by chunk),
depth-first at the end of the chunk's pass. Stored ones are hits, lapsed ones
(their holder failed or was killed) are computed here. A failed row's lease
is released at once, so another run computes it instead of waiting.

Jobs. Misses are sent in jobs of several items. A job's size adapts to what
the node costs: one item at first, then as many as fit in about
``settings.batch_job_target_seconds`` (and, with several workers, at most half of an even
share of what is left per worker, so jobs shrink toward the end of a pass and
workers finish together), with up to two jobs per worker in flight: trivial
items go in a few big jobs (the round trip to a worker is paid rarely).

Writes. Each computed result is captured (pickled) as its job settles and
queued in the session's writer, which writes by its own policy (a slow or
large result at once, the others by count or age); every chunk ends with a
flush, so a later pass, another process waiting on a key, or a rerun after a
kill finds the chunk's results committed and their leases released.

Failures are recorded as `BatchFailure`
records; a skipped item-node is one whose inputs have no data version for that
item. A result that cannot be pickled fails its item-node only (the job's
other results are stored). An input whose stored blob turns out gone or
corrupt is computed again for that item (`BatchRun.recompute`), so the
data versions of a node's inputs are kept as long as the node is read. With
``fault_tolerant=False`` the first failure sets ``stop``: nothing more is
submitted, in-flight jobs are settled (saved), and it is raised.
"""

from __future__ import annotations

import math
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any

from incgraph.core.graph import Node
from incgraph.errors import (
    ConfigurationError,
    ConstantNotSetError,
    NodeError,
    ReadOnlyStoreError,
    StoreCorruptError,
    UnstorableResultError,
)
from incgraph.executors import Executor
from incgraph.run.batch_report import BatchFailure, BatchStats, NodeBatchStats
from incgraph.run.decide import Decider, Work
from incgraph.run.engine import NodeStatus, RunReport
from incgraph.run.jobs import JobFailure, Outcome, compute_in_process, instance_key, submit_batch
from incgraph.run.keys import item_key_maker, key_maker, make_record
from incgraph.run.progress import Progress, make_progress
from incgraph.run.resources import to_release
from incgraph.sentinels import MISSING
from incgraph.store.codecs import Captured

__all__ = ["BatchRun", "PrepFn"]

PrepFn = Callable[[int, Any], Any]
"""``prep_fn(index, item)``: binds an item's constants."""


@dataclass
class _Persist:
    """What an item's JSON record needs: its path, node statuses and target values."""

    path: Any
    statuses: dict[Node, NodeStatus] = field(default_factory=dict)
    values: dict[Node, Any] = field(default_factory=dict)


class _Table:
    """Data versions per node and item for a run of items (all of them, or one chunk)."""

    def __init__(self, start: int, items: list[Any]) -> None:
        self.start = start
        self.items = items
        n = len(items)
        self.dvs: dict[Node, list[str | None]] = {}
        self.prepped = [False] * n
        self.dead = [False] * n  # prep_fn failed: the item goes no further
        self.consts: dict[int, dict[Node, Any]] = {}  # constant values held for a chunk
        self.values: dict[Node, dict[int, Any]] = {}  # depth-first: results kept for the chunk
        self.persist: dict[int, _Persist] = {}

    def column(self, node: Node) -> list[str | None]:
        col = self.dvs.get(node)
        if col is None:
            col = self.dvs[node] = [None] * len(self.items)
        return col


_Keyed = tuple[int, dict[str, str], str | None]
"""An item that can run a pass's node: its place in the table, its inputs' versions, its key."""


@dataclass(slots=True)
class _Row:
    """One item of a pass that is not a hit: where it is, its inputs' versions, its key."""

    local: int
    inputs: dict[str, str]
    key: str | None


class _Sizer:
    """How many items go in the next job of a pass (see the module note)."""

    def __init__(self, workers: int, target_seconds: float) -> None:
        self.workers = max(1, workers)
        self.target_seconds = target_seconds
        self.seconds = 0.0
        self.count = 0

    def observe(self, durations: list[float]) -> None:
        self.seconds += sum(durations)
        self.count += len(durations)

    def next(self, remaining: int) -> int:
        if self.workers == 1:  # nothing to balance: the fewer jobs (and commits), the better
            share = remaining
        else:  # shrinks toward the end of the pass, so workers finish together
            share = max(1, math.ceil(remaining / (2 * self.workers)))
        if self.count == 0:
            return 1
        per_item = max(self.seconds / self.count, 1e-7)
        return max(1, min(share, int(self.target_seconds / per_item)))


class BatchRun:
    """One execution of a batch. Not reused."""

    def __init__(
        self,
        graph: Any,
        order: list[Node],
        targets: list[Node],
        prep: PrepFn,
        executor: Executor,
        fault_tolerant: bool,
        chunk_size: int,
        session: Any,
    ) -> None:
        self.graph = graph
        self.store = graph.store
        self.session = session
        self.targets = targets
        self.prep_fn = prep
        self.executor = executor
        self.fault_tolerant = fault_tolerant
        self.chunk_size = chunk_size
        self.constants = [n for n in order if n.is_constant]
        self.passes = [n for n in order if not n.is_constant]
        self.pass_index = {n: i for i, n in enumerate(self.passes)}
        self.keep_values = False  # depth-first keeps results in memory for the chunk
        self.last_reader: dict[Node, int] = {}
        for i, node in enumerate(self.passes):
            for up in node.upstream():
                self.last_reader[up] = i
        # a result read by a later pass may have to be computed again there (its blob
        # turned out corrupt): its inputs' data versions live as long as it is read
        self.versions_needed = dict(self.last_reader)
        for node in self.passes:
            for up in node.upstream():
                until = self.last_reader.get(node, -1)
                self.versions_needed[up] = max(self.versions_needed[up], until)
        self.touched: set[Node] = {n for n in self.passes if n.initialized}
        self.sizers: dict[Node, _Sizer] = {}
        self.stats = BatchStats(nodes={n: NodeBatchStats(n) for n in self.passes})
        self.progress = Progress()
        self.stop: BaseException | None = None
        self.twins: dict[str, list[_Row]] = {}
        self.waiting: list[list[_Row]] = []  # rows of keys another run is computing, by key
        settings = graph.settings
        self.keep_bytes = settings.batch_keep_bytes
        self.job_seconds = settings.batch_job_target_seconds
        self.decider = Decider(self.store, session, lease_min_seconds=settings.lease_min_seconds)
        self.decider.prefetch(n.label for n in self.passes)  # latest durations: leases pay?
        self.defer_waits = False  # breadth-first waits for them at the end of the pass
        self.kept_bytes = 0  # stored size of the results held in table.values
        self.kept_by_node: dict[Node, int] = {}

    # -- strategies -------------------------------------------------------------------

    def breadth_first(self, items: list[Any], progress: bool | None) -> None:
        self.defer_waits = True
        self.stats.items = len(items)
        self.progress = make_progress(len(items) * len(self.passes), progress)
        table = _Table(0, items)
        try:
            for p, node in enumerate(self.passes):
                self.release(to_release(self.touched, node))
                self.progress.describe(node.describe())
                started = time.perf_counter()
                for lo in range(0, len(items), self.chunk_size):
                    self.run_pass(node, table, lo, min(lo + self.chunk_size, len(items)))
                    table.consts.clear()
                self.await_others(node, table)
                table.consts.clear()
                self.stats.nodes[node].seconds += time.perf_counter() - started
                self.drop_columns(table, p)
            self.finish(table)
        finally:
            self.progress.close()

    def depth_first(self, items: Iterable[Any], progress: bool | None) -> None:
        self.keep_values = True
        total = len(items) if isinstance(items, Sized) else None
        self.progress = make_progress(None if total is None else total * len(self.passes), progress)
        try:
            for start, chunk in _chunks(items, self.chunk_size):
                table = _Table(start, chunk)
                self.stats.items += len(chunk)
                for p, node in enumerate(self.passes):
                    started = time.perf_counter()
                    self.run_pass(node, table, 0, len(chunk))
                    self.stats.nodes[node].seconds += time.perf_counter() - started
                    self.drop_columns(table, p)
                self.finish(table)
        finally:
            self.progress.close()

    # -- one pass over a range of items -------------------------------------------------

    def run_pass(self, node: Node, table: _Table, lo: int, hi: int) -> None:
        """Decide ``node`` for items ``lo:hi`` of ``table``: hits now, misses computed.

        One wave through the decide step (`incgraph.run.decide`): one look-up, one
        claim of the misses worth a lease. Keys another run is computing are set
        aside: breadth-first they are waited for at the end of the pass (so two
        batches on one store share a pass chunk by chunk instead of queueing behind
        each other), depth-first at the end of the chunk's pass.
        """
        rows = self.keyed_rows(node, table, lo, hi)
        if self.stop is not None:
            raise self.stop
        keys = [key for _, _, key in rows if key is not None]
        kind = id(node.processor)  # what computes it
        decided = self.decider.decide(
            list(map(Work, keys, repeat(node.label), repeat(False), repeat(kind)))
        )
        hits = decided.hits
        self.session.hits.extend(hits)  # the run log: one list op per chunk
        column, persist = table.column(node), table.persist
        misses = []
        for local, inputs, key in rows:
            dv = hits.get(key)  # type: ignore[arg-type]
            if dv is None:
                misses.append(_Row(local, inputs, key))
                continue
            column[local] = dv  # a hit: its data version is all a later pass needs
            if persist and local in persist:
                persist[local].statuses[node] = NodeStatus(node, "hit", key, dv)
        self.count_hits(node, len(rows) - len(misses))
        if misses:
            groups = _by_key(misses)
            if decided.compute and self.store.read_only:
                raise ReadOnlyStoreError(
                    f"{node.describe()} must compute {len(misses)} item(s) (the store has no "
                    f"result for their inputs), but {self.store!r} was opened read-only; open "
                    "the store writable to compute and save them"
                )
            self.waiting += [groups[key] for key in decided.theirs]
            keyless = [row for row in misses if row.key is None]
            self.compute(node, table, keyless + self.primaries(groups, decided.compute))
        self.flush()
        if not self.defer_waits:
            self.await_others(node, table)
        if self.stop is not None:
            raise self.stop

    def primaries(self, groups: dict[str, list[_Row]], keys: list[str]) -> list[_Row]:
        """The first row of each key's group, to compute; the others are its ``twins``."""
        self.twins = {key: groups[key][1:] for key in keys}
        return [groups[key][0] for key in keys]

    def await_others(self, node: Node, table: _Table) -> None:
        """Wait for the keys set aside (holding no lease): stored ones are hits, lapsed ones
        (their holder failed or died) are computed here."""
        waiting, self.waiting = self.waiting, []
        if not waiting or self.stop is not None:
            return
        groups: dict[str, list[_Row]] = {}
        for group in waiting:  # a key set aside in two chunks: its rows are twins
            groups.setdefault(group[0].key or "", []).extend(group)
        later = self.decider.wait(groups, before_wait=self.flush)
        self.settle_hits(node, table, later.hits, groups)
        if later.compute:
            self.compute(node, table, self.primaries(groups, later.compute))
            self.flush()
        if self.stop is not None:
            raise self.stop

    def settle_hits(
        self, node: Node, table: _Table, hits: dict[str, str], groups: dict[str, list[_Row]]
    ) -> None:
        """Rows whose key another run stored since the look-up: hits."""
        self.session.hits.extend(hits)
        column, persist = table.column(node), table.persist
        count = 0
        for key, dv in hits.items():
            for row in groups[key]:
                column[row.local] = dv
                if row.local in persist:
                    persist[row.local].statuses[node] = NodeStatus(node, "hit", key, dv)
                count += 1
        self.count_hits(node, count)

    def count_hits(self, node: Node, count: int) -> None:
        self.stats.nodes[node].cached += count
        self.progress.advance(cached=count)

    def keyed_rows(self, node: Node, table: _Table, lo: int, hi: int) -> list[_Keyed]:
        """Prepare items as needed and build the key of each that can run ``node``.

        Plain ``(local, inputs, key)`` tuples: most are hits, which need no `_Row`.
        """
        fixed = node.fixed_input_versions()
        # every bound node, so an item whose input failed is skipped; names the processor
        # ignores (``ignore``) are checked but left out of the key
        ignored = node.ignored
        bound = [
            (name, table.column(src), name not in ignored)
            for name, src in node.bindings.items()
            if isinstance(src, Node)
        ]
        make_key = _key_function(node, [name for name, _, keyed in bound if keyed], fixed)
        prepped, dead = table.prepped, table.dead
        rows: list[_Keyed] = []
        skipped = 0
        for local in range(lo, hi):
            if not prepped[local]:
                self.prepare(table, local)
            if dead[local]:
                skipped += 1
                continue
            inputs = dict(fixed)
            for name, col, keyed in bound:
                dv = col[local]
                if dv is None:
                    break
                if keyed:
                    inputs[name] = dv
            else:
                rows.append((local, inputs, make_key(inputs) if make_key else None))
                continue
            skipped += 1
            if local in table.persist:
                table.persist[local].statuses[node] = NodeStatus(node, "skipped", None, None)
        self.stats.nodes[node].skipped += skipped
        self.progress.advance(skipped=skipped)
        return rows

    # -- constants and prep_fn ----------------------------------------------------------

    def prepare(self, table: _Table, local: int) -> None:
        """First ``prep_fn`` call for an item: record its constants' data versions."""
        table.prepped[local] = True
        index, item = table.start + local, table.items[local]
        self.graph._persist_path = None  # set again if prep_fn calls persist for this item
        if not self.call_prep(table, local):
            table.dead[local] = True
            return
        path = self.graph._persist_path
        entry = _Persist(path) if path is not None else None
        if entry is not None:
            table.persist[local] = entry
        held = table.consts.setdefault(local, {})
        for const in self.constants:
            try:
                dv = const.data_version_of_constant()
            except Exception as exc:
                self.fail(index, item, const, exc, _format(exc))
                continue
            table.column(const)[local] = dv
            held[const] = const.snapshot()
            if entry is not None:
                entry.statuses[const] = NodeStatus(const, "constant", None, dv)
                entry.values[const] = const.value

    def call_prep(self, table: _Table, local: int) -> bool:
        index, item = table.start + local, table.items[local]
        try:
            self.prep_fn(index, item)
        except Exception as exc:
            self.fail(index, item, None, exc, _format(exc))
            return False
        return True

    def constant_value(self, table: _Table, local: int, const: Node) -> Any:
        """The item's value of ``const``: held for the chunk, or bound again by ``prep_fn``."""
        held = table.consts.get(local)
        if held is not None and const in held:
            return held[const].value()  # each consumer its own copy
        if not self.call_prep(table, local):
            raise _AlreadyRecorded()
        held = table.consts.setdefault(local, {})
        for c in self.constants:
            with suppress(ConstantNotSetError):  # reported when a node needs it
                held[c] = c.snapshot()
        if const.data_version_of_constant() != table.dvs[const][local]:
            raise ConfigurationError(
                f"prep_fn bound a different value to constant {const.describe()} for item "
                f"{table.start + local} than on its first call; prep_fn must bind the same "
                "values every time it is called for an item"
            )
        return held[const].value()

    # -- computing misses ---------------------------------------------------------------

    def input_values(self, node: Node, table: _Table, local: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, src in node.bindings.items():
            if not isinstance(src, Node):
                values[name] = src
            elif src.is_constant:
                values[name] = self.constant_value(table, local, src)
            else:
                kept = table.values.get(src)
                if kept is not None and local in kept:
                    value = kept[local]
                    values[name] = value.value() if type(value) is Captured else value
                else:
                    values[name] = self.load(node, name, src, table, local)
        return values

    def load(self, node: Node, name: str, src: Node, table: _Table, local: int) -> Any:
        """The stored value of ``src`` for an item; recomputed if its blob is gone or corrupt.

        Raises an error that says what to do when it cannot be recomputed here (its
        own inputs are no longer known, or it recomputes to another data version).
        """
        data_version = table.dvs[src][local]
        assert data_version is not None
        try:
            value = self.session.writer.load(data_version)  # queued or just written
            return self.store.load(data_version) if value is MISSING else value
        except (KeyError, StoreCorruptError) as exc:
            value = self.recompute(src, table, local)
            if value is not MISSING:
                return value
            raise StoreCorruptError(
                f"{node.describe()}: input {name!r} needs the stored result of "
                f"{src.describe()} for this item, which could not be read ({exc!r}); the "
                "store dropped its index rows, so running the batch again recomputes it"
            ) from exc

    def recompute(self, node: Node, table: _Table, local: int) -> Any:
        """Compute ``node`` for one item again, here, and store it; it is counted as computed.

        For a result decided a hit whose blob could not be read. ``MISSING`` when the
        item's inputs of ``node`` are no longer known, or the result's data version is
        not the one its dependents were keyed with (a processor that is not
        deterministic): then the item fails, and the next batch recomputes it.
        """
        input_dvs = dict(node.fixed_input_versions())
        ignored = node.ignored  # as keyed_rows keys it: ignored names are left out
        for name, src in node.bindings.items():
            if isinstance(src, Node):
                col = table.dvs.get(src)
                version = None if col is None else col[local]
                if version is None:
                    return MISSING
                if name not in ignored:
                    input_dvs[name] = version
        key = key_maker(node)(input_dvs) if node.cache else None
        self.touched.add(node)  # its instance here is released with the others
        out = compute_in_process(node, self.input_values(node, table, local), key)
        if key is not None:
            record = make_record(node, key, input_dvs, out.data_version, out.duration)
            with suppress(UnstorableResultError):  # stored before: not storable now is moot
                self.session.writer.add(record, self.store.capture(out.value))
        if out.data_version != table.dvs[node][local]:
            return MISSING
        stats = self.stats.nodes[node]
        stats.cached -= 1
        stats.computed += 1
        stats.compute_seconds += out.duration
        entry = table.persist.get(local)
        if entry is not None:
            entry.statuses[node] = NodeStatus(node, "computed", key, out.data_version, out.duration)
        return out.value

    def compute(self, node: Node, table: _Table, misses: list[_Row]) -> None:
        """Submit the misses in jobs, and settle each job as it finishes."""
        sizer = self.sizers.get(node)
        if sizer is None:
            workers = getattr(self.executor, "workers", 1)
            sizer = self.sizers[node] = _Sizer(workers, self.job_seconds)
        queue = deque(misses)
        in_flight: dict[Future[list[Any]], list[_Row]] = {}
        limit = 2 * sizer.workers
        while queue or in_flight:
            while queue and len(in_flight) < limit and self.stop is None:
                size = sizer.next(len(queue))
                group = [queue.popleft() for _ in range(min(size, len(queue)))]
                self.submit(node, table, group, in_flight)
            if self.stop is not None:
                queue.clear()
            if not in_flight:
                continue
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                rows = in_flight.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # the whole job failed (e.g. a worker died)
                    results = [JobFailure(exc, _format(exc))] * len(rows)
                sizer.observe([r.duration for r in results if isinstance(r, Outcome)])
                self.settle(node, table, rows, results)

    def submit(
        self,
        node: Node,
        table: _Table,
        group: list[_Row],
        in_flight: dict[Future[list[Any]], list[_Row]],
    ) -> None:
        entries, members = [], []
        for row in group:
            try:
                inputs = self.input_values(node, table, row.local)
            except _AlreadyRecorded:
                table.dead[row.local] = True
                continue
            except Exception as exc:
                self.fail_row(node, table, row, exc, _format(exc))
                continue
            entries.append((inputs, row.key))
            members.append(row)
        if entries:
            self.touched.add(node)
            in_flight[submit_batch(self.executor, node, entries)] = members

    def settle(self, node: Node, table: _Table, rows: list[_Row], results: list[Any]) -> None:
        """Queue a finished job's results for the session's writer; record its failures.

        Items that had the same key as a computed one (``twins``) share its outcome.
        """
        stats = self.stats.nodes[node]
        computed = twins = 0
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, JobFailure):
                self.fail_twins(node, table, row, result.error, result.traceback)
                continue
            kept = self.save(node, table, row, result)
            if kept is MISSING:
                continue
            self.keep(node, table, row, result, kept, "computed")
            for twin in self.twins.get(row.key or "", ()):
                self.keep(node, table, twin, result, kept, "hit")
                twins += 1
            computed += 1
            stats.compute_seconds += result.duration
        stats.computed += computed
        stats.cached += twins
        self.progress.advance(computed=computed, cached=twins)

    def save(self, node: Node, table: _Table, row: _Row, result: Outcome) -> Any:
        """Queue a keyed result for the writer; return what later passes get copies of.

        The result's bytes are captured now, before any consumer can touch the value
        (later passes are handed copies of them). A result that cannot be stored
        fails its item (and its twins) at ``node``: ``MISSING``. A ``cache=False``
        node's value is not stored and is passed on as it is.
        """
        key = row.key
        if key is None:
            return result.value
        try:
            captured = self.store.capture(result.value)
        except UnstorableResultError as exc:
            self.fail_twins(node, table, row, exc, "")
            return MISSING
        record = make_record(node, key, row.inputs, result.data_version, result.duration)
        self.session.writer.add(record, captured, duration=result.duration)
        work = Work(key, node.label, False, id(node.processor))
        self.decider.computed(work, result.data_version, result.duration)  # do leases pay?
        return captured

    def flush(self) -> None:
        """Write the queued results now (`incgraph.store.writer`): blobs, then rows, then leases.

        Each result was captured (pickled) before it was queued, and one that could not
        be failed its item then (`save`), so the writer has none to refuse; if it did,
        the batch stops with its error rather than carry on with a result not stored.
        """
        refused = self.session.flush()
        if refused:
            raise refused[0][1]

    def keep(
        self, node: Node, table: _Table, row: _Row, result: Outcome, kept: Any, status: Any
    ) -> None:
        """Note ``row``'s result: its data version, and ``kept`` if a later pass reads it.

        ``kept`` is the result's `incgraph.store.codecs.Captured` bytes
        (each consumer gets its own copy), or the value of a ``cache=False`` node.
        Values are kept for later passes when they are not stored (``cache=False``), in
        depth-first chunks, and otherwise while they fit in ``settings.batch_keep_bytes``.
        """
        size = kept.size if status == "computed" and type(kept) is Captured else 0
        table.column(node)[row.local] = result.data_version
        if self.pass_index[node] < self.last_reader.get(node, -1) and (
            self.keep_values or not node.cache or self.kept_bytes + size <= self.keep_bytes
        ):
            table.values.setdefault(node, {})[row.local] = kept
            self.kept_bytes += size
            self.kept_by_node[node] = self.kept_by_node.get(node, 0) + size
        entry = table.persist.get(row.local)
        if entry is not None:
            duration = result.duration if status == "computed" else 0.0
            entry.statuses[node] = NodeStatus(node, status, row.key, result.data_version, duration)
            entry.values[node] = result.value

    # -- failures -------------------------------------------------------------------------

    def fail_twins(self, node: Node, table: _Table, row: _Row, exc: BaseException, tb: str) -> None:
        """Fail ``row`` and the items that had the same key (computed once, failed once)."""
        for r in (row, *self.twins.get(row.key or "", [])):
            self.fail_row(node, table, r, exc, tb)

    def fail_row(self, node: Node, table: _Table, row: _Row, exc: BaseException, tb: str) -> None:
        if row.key is not None:
            self.session.release([row.key])  # another run may compute it now
        self.stats.nodes[node].failed += 1
        self.progress.advance(failed=1)
        entry = table.persist.get(row.local)
        if entry is not None:
            entry.statuses[node] = NodeStatus(node, "failed", row.key, None)
        index = table.start + row.local
        original = exc.exception if isinstance(exc, NodeError) else exc
        if isinstance(original, UnstorableResultError):  # say which item, wherever it was found
            exc = NodeError(
                f"{node.describe()}, item {index}: {original}", node=node.label, exception=original
            )
            tb = tb or f"{type(original).__qualname__}: {original}\n"
        self.fail(index, table.items[row.local], node, exc, tb)

    def fail(self, index: int, item: Any, node: Node | None, exc: BaseException, tb: str) -> None:
        original = exc.exception if isinstance(exc, NodeError) else exc
        self.stats.failures.append(BatchFailure(index, item, node, original, tb, exc))
        if not self.fault_tolerant and self.stop is None:
            self.stop = exc

    # -- the end of a pass, a chunk, a batch ------------------------------------------------

    def drop_columns(self, table: _Table, p: int) -> None:
        """Forget data versions and values no later pass needs (targets stay).

        The keys the decider knows were computed by this pass go too: no later pass
        asks for them, and a long batch would otherwise hold every one.
        """
        self.decider.known.clear()
        for up, last in self.last_reader.items():
            if last == p and up not in self.targets:
                table.values.pop(up, None)
                self.kept_bytes -= self.kept_by_node.pop(up, 0)
        for up, last in self.versions_needed.items():
            if last == p and up not in self.targets:
                table.dvs.pop(up, None)

    def finish(self, table: _Table) -> None:
        """Note completed items and write the JSON record of items that asked for one."""
        for local in range(len(table.items)):  # run nodes that are all constants: no pass
            if not table.prepped[local]:
                self.prepare(table, local)
        columns = [table.dvs.get(t) for t in self.targets]
        for local in range(len(table.items)):
            if table.dead[local]:
                continue
            if all(col is not None and col[local] is not None for col in columns):
                self.stats.completed.append(table.start + local)
        for entry in table.persist.values():
            self.write_persist(entry)

    def write_persist(self, entry: _Persist) -> None:
        """Write an item's JSON record (`incgraph.run.persisting`: only if it changed)."""
        self.graph.last_run = RunReport(statuses=entry.statuses, values=entry.values)
        self.graph.persist(entry.path)
        self.graph.last_run = RunReport()

    def release(self, nodes: Iterable[Node]) -> None:
        """Release ``nodes``' instances here and on the executor's workers."""
        nodes = sorted(nodes, key=lambda n: self.pass_index.get(n, -1))
        if not nodes:
            return
        for node in nodes:
            node.release_resources()
            self.touched.discard(node)
        if not self.executor.in_process:
            self.executor.release(frozenset(instance_key(n) for n in nodes))


class _AlreadyRecorded(Exception):
    """``prep_fn`` failed again for an item; its failure is already recorded."""


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _chunks(items: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    it = iter(items)
    start = 0
    while chunk := list(islice(it, size)):
        yield start, chunk
        start += len(chunk)


def _by_key(rows: list[_Row]) -> dict[str, list[_Row]]:
    """The keyed rows grouped by key, in order: rows after a key's first are its twins."""
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        if row.key is not None:
            groups.setdefault(row.key, []).append(row)
    return groups


def _key_function(
    node: Node, keyed: list[str], fixed: dict[str, str]
) -> Callable[[dict[str, str]], str] | None:
    """``inputs -> key`` for ``node`` (None: ``cache=False``); one keyed input is the fast case.

    A node whose only keyed input is one upstream node (most batch nodes) hashes the
    key text's fixed head once (`incgraph.run.keys.item_key_maker`): the same keys
    at about a fifth of the cost.
    """
    if not node.cache:
        return None
    if len(keyed) == 1 and not fixed:
        name = keyed[0]
        item_key = item_key_maker(node, name)
        return lambda inputs: item_key(inputs[name])
    return key_maker(node)
