"""What each stage's thread does while a pipeline runs.

Design note
-----------
One thread per stage (and one per input queue) moves chunks from its input
channel to its output channel(s); ``merge`` needs no thread, its inputs'
producers write straight into its output channel.

*Task stages* keep input order. One loop serves every task: it keeps a
window of up to ``2 * max_workers + 2`` chunks in flight on the task's pool, in
input order, and emits the window's head when it is done -- a reorder buffer.
A task with one thread worker gets an `InlinePool`, whose ``submit`` runs the
chunk at once (no hand-off to another thread), so it needs no path of its own.
Workers' futures wake the stage thread through its input channel, so it waits
for "input arrived or head finished" in one place.

*Chunk sizes adapt.* A stage takes up to ``size`` items per chunk, where
``size`` is re-estimated after every chunk so the task's work on a chunk takes
about ``queue_target_seconds`` (2 ms; between 1 and the run's ``chunk_size``): trivial
functions move hundreds of items per hand-off, a function that takes a second
per item moves them one by one, so results stream out as they are made. Only
the task's own time on the chunk's misses counts: a chunk of hits asks for the
largest size (a hit is a row of a bulk look-up), and time spent waiting -- for
the store, or for room downstream -- is not work. (Counting the waits shrank
the chunks of a cached rerun to a few dozen items, each paying a query and a
hand-off of its own.)

*Caching* (a task with ``cache=True``) happens in the stage thread, a chunk at
a time: data versions, keys, the engine's decide step (one look-up, one claim
of the misses worth a lease; taking the run's store-reads turn); only misses
are computed (or sent to the pool); their records go to the store session's
writer, which saves them in large transactions and then releases their
leases. Items another process is computing keep their chunk in the window: the
stage polls for them between chunks (backing off while nothing changes) and
serves them as hits once stored. See `incgraph.queues.caching`.

*Ops* (split, filter, batch, unbatch) load their items' values (cached hits
arrive as placeholders) and apply a predicate or regroup. A predicate that
raises, like a task, records the item as failed and goes on.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any

from incgraph.errors import HashingError, PipelineError, StoreError
from incgraph.queues.caching import Stored, TaskCache, materialize
from incgraph.queues.channel import Channel, Chunk
from incgraph.queues.workers import ChunkResult, apply_chunk, make_pool, shutdown_pool
from incgraph.sentinels import MISSING
from incgraph.store import codecs

if TYPE_CHECKING:
    from incgraph.queues.execution import Execution
    from incgraph.queues.queue import Queue
    from incgraph.queues.report import NodeCounts
    from incgraph.queues.stages import Stage

__all__ = ["Runner", "SourceRunner", "make_runner"]

_FAILED = object()  # a result slot whose item failed (private, never handed on)


def next_size(elapsed: float, n: int, limit: int, target: float) -> int:
    """The next chunk size, so a chunk takes about ``target`` seconds.

    Examples
    --------
    >>> [next_size(elapsed, n, 512, 0.002) for elapsed, n in [(0.001, 1), (1.0, 4), (0.0, 10)]]
    [2, 1, 512]
    """
    if elapsed <= 0:
        return limit
    return max(1, min(limit, int(target * n / elapsed)))


class Runner:
    """Base of the per-stage loops: counts, failures, emitting to output queues."""

    def __init__(self, ex: Execution, name: str, counts: NodeCounts) -> None:
        self.ex = ex
        self.name = name
        self.counts = counts
        self.outputs: list[Queue] = []
        self.seen = 0  # items read so far: the index of the next item in this node's input

    def run(self) -> None:  # pragma: no cover - overridden
        """The stage's loop."""
        raise PipelineError(f"{type(self).__name__} has no loop")

    def fail(self, index: int, item: Any, exc: BaseException, text: str | None = None) -> None:
        """Record that ``item`` (at ``index`` in this node's input) failed with ``exc``."""
        if text is None:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.counts.failed += 1
        self.ex.record_failure(self.name, index, item, exc, text)

    def emit(self, items: list[Any], dvs: list[Any] | None = None, output: int = 0) -> bool:
        """Hand ``items`` to output ``output``; ``False`` if the run was aborted."""
        if not items:
            return not self.ex.abort.is_set
        self.counts.items_out += len(items)
        return self.ex.put(self.outputs[output], Chunk(items, dvs))

    def close(self) -> None:
        """Tell every output that this stage is done."""
        for q in self.outputs:
            self.ex.close(q)

    def read(self, channel: Channel, size: int) -> Chunk | None:
        """The next chunk (``None`` at the end), counted as read."""
        chunk = channel.get(size)
        if chunk is not None:
            self.counts.items_in += len(chunk)
        return chunk


# -- inputs ------------------------------------------------------------------------------


class SourceRunner(Runner):
    """Reads an input queue's items (lazily) into its channel."""

    def __init__(self, ex: Execution, q: Queue, counts: NodeCounts) -> None:
        super().__init__(ex, counts.name, counts)
        self.outputs = [q]
        self.items = q.items

    def run(self) -> None:
        """Emit the items in chunks: slices of a sequence, or batches read from an iterator."""
        items = self.items
        if items is MISSING:
            return
        limit = self.ex.chunk_size
        if isinstance(items, (list, tuple, range)):
            for start in range(0, len(items), limit):
                if not self.emit(list(items[start : start + limit])):
                    return
            return
        self.run_iterator(iter(items), limit)

    def run_iterator(self, it: Iterator[Any], limit: int) -> None:
        """Read ``it`` item by item, each visible downstream as soon as it is read.

        An iterator may block before its next item (a network stream, a slow
        generator); items already read must not wait for it, so they are appended
        to the channel one by one (joining the chunk still waiting there).
        """
        put = self.ex.put_item
        q = self.outputs[0]
        index = 0
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as exc:  # the user's generator broke: record it, end the input
                self.fail(index, MISSING, exc)
                return
            index += 1
            if not put(q, item, limit):
                return


# -- tasks -------------------------------------------------------------------------------


class _Work:
    """One chunk of input through a task: hits, items to compute, items another process computes."""

    __slots__ = (
        "delay",
        "dvs",
        "errors",
        "extra",
        "failed",
        "future",
        "inputs",
        "items",
        "keys",
        "misses",
        "next_poll",
        "out_dvs",
        "results",
        "start",
        "twins",
        "waiting",
    )

    def __init__(self, chunk: Chunk, start: int, first_poll: float) -> None:
        self.items = chunk.items
        self.dvs: list[Any] | None = chunk.dvs
        self.start = start
        self.keys: list[Any] | None = None
        self.results: list[Any] | None = None
        self.out_dvs: list[Any] | None = None
        self.misses: list[int] = []  # positions computed here, in the order of ``inputs``
        self.inputs: list[Any] = []  # the values of the misses, loaded
        self.twins: list[tuple[int, int]] = []  # (position, position of the same key's first use)
        self.waiting: dict[str, int] = {}  # key -> position: another process is computing it
        self.extra: list[tuple[list[int], list[Any], ChunkResult]] = []  # its claimant died
        self.errors: dict[int, tuple[BaseException, str]] = {}  # position -> what it raised
        self.failed = 0  # items of this chunk recorded as failed
        self.future: Future[ChunkResult] | None = None
        self.next_poll = 0.0
        self.delay = first_poll

    def ready(self) -> bool:
        return not self.waiting and (self.future is None or self.future.done())


class TaskRunner(Runner):
    """Applies a task to every item, in order, with caching and the task's worker pool."""

    def __init__(self, ex: Execution, stage: Stage, counts: NodeCounts) -> None:
        super().__init__(ex, stage.name, counts)
        assert stage.task is not None
        self.task = stage.task
        self.fn = stage.task.fn
        self.input = ex.channel(stage.inputs[0])
        self.outputs = list(stage.outputs)
        self.cache: TaskCache | None = None
        if self.task.cache:
            assert stage.node is not None and ex.store is not None and ex.session is not None
            self.cache = TaskCache(
                ex.store,
                ex.session,
                stage.node,
                self.task.qualified_name,
                ex.settings.lease_min_seconds,
            )
        self.portable = self.task.backend == "processes"
        self.size = 1

    # -- preparing a chunk -----------------------------------------------------------------

    def prepare(self, chunk: Chunk) -> _Work:
        """Count the chunk in and decide it; what is left to compute is ``work.misses``."""
        work = _Work(chunk, self.seen, self.ex.settings.lease_first_poll_seconds)
        self.seen += len(chunk)
        self.counts.items_in += len(chunk)
        cache = self.cache
        if cache is None:
            work.misses = list(range(len(chunk)))
            return work
        items = work.items

        def unhashable(i: int, exc: Exception) -> None:
            error = HashingError(
                f"task {self.name!r}: item {_short(items[i])} cannot be content-hashed for "
                f"caching ({exc}); register a hasher for its type "
                "(incgraph.hashing.register_hasher) or declare the task with cache=False"
            )
            error.__cause__ = exc
            work.failed += 1
            self.fail(work.start + i, items[i], error)

        dvs = cache.versions(items, work.dvs, unhashable)
        with self.ex.store_reads:  # the whole resolution: no GIL hand-off mid-chunk
            self.resolve(work, cache, dvs)
        return work

    def resolve(self, work: _Work, cache: TaskCache, dvs: list[Any]) -> None:
        """Key and decide the chunk: hits become placeholders; the rest ours or theirs."""
        items, fn = work.items, self.fn
        keys = cache.keys(dvs)
        decided = cache.decide(keys)
        found = decided.hits
        work.dvs, work.keys = dvs, keys
        if len(found) == len(keys):  # every key found (so none MISSING, none repeated)
            work.out_dvs = [found[key] for key in keys]
            work.results = [Stored(dv, fn, x) for dv, x in zip(work.out_dvs, items, strict=True)]
            self.counts.cached += len(keys)
            return
        theirs = set(decided.theirs)
        results: list[Any] = [_FAILED] * len(items)
        out_dvs: list[Any] = [MISSING] * len(items)
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key is MISSING:
                continue
            dv = found.get(key)
            if dv is not None:
                results[i] = Stored(dv, fn, items[i])
                out_dvs[i] = dv
                self.counts.cached += 1
            elif key in first:  # the same item twice in one chunk: computed once
                work.twins.append((i, first[key]))
            else:
                first[key] = i
                if key in theirs:
                    work.waiting[key] = i
                else:
                    work.misses.append(i)
        work.results, work.out_dvs = results, out_dvs

    def miss_values(self, work: _Work, positions: list[int]) -> list[Any]:
        """The input values of the items at ``positions`` (cached inputs loaded now)."""
        items = work.items
        if len(positions) != len(items):
            items = [items[i] for i in positions]
        store = self.ex.store
        return items if store is None else materialize(items, store, self.ex.store_reads)

    # -- items another process computes ----------------------------------------------------

    def settle(self, work: _Work) -> None:
        """Poll for the items another process computes: stored ones become hits.

        Items whose claimant died are ours now: computed here, at once. Polls
        back off (as `incgraph.store.leases` waits do) while nothing changes.
        """
        now = time.monotonic()
        if now < work.next_poll:
            return
        cache = self.cache
        assert cache is not None and work.results is not None and work.out_dvs is not None
        assert self.ex.session is not None
        self.ex.session.commit()  # what we computed first: no two runs wait for each other
        with self.ex.store_reads:
            decided = cache.poll(list(work.waiting))
        for key, dv in decided.hits.items():
            i = work.waiting.pop(key, None)
            if i is not None:
                work.results[i] = Stored(dv, self.fn, work.items[i])
                work.out_dvs[i] = dv
                self.counts.cached += 1
        ours = [work.waiting.pop(key) for key in decided.compute if key in work.waiting]
        if ours:
            values = self.miss_values(work, ours)
            work.extra.append((ours, values, apply_chunk(self.fn, values, True)))
        work.delay = min(work.delay * 1.5, self.ex.settings.lease_max_poll_seconds)
        work.next_poll = now + work.delay

    def ready(self, work: _Work) -> bool:
        """Whether ``work`` can be emitted (polling for what another process computes)."""
        if work.future is not None and not work.future.done():
            return False
        if work.waiting:
            self.settle(work)
        return not work.waiting

    # -- finishing a chunk -------------------------------------------------------------------

    def finish(self, work: _Work) -> bool:
        """Record failures, save computed results, emit the chunk's results in order."""
        fut = work.future
        result = fut.result() if fut is not None else ([], {}, None, 0.0)
        if fut is not None:
            self.resize(work, result[3])
        values, errors, _, _ = result
        if self.cache is None:
            if errors:
                for j in sorted(errors):
                    exc, text = errors[j]
                    self.fail(work.start + j, work.inputs[j], exc, text)
                values = [v for j, v in enumerate(values) if j not in errors]
            self.counts.computed += len(values)
            return self.emit(values)
        return self.finish_cached(work, result)

    def finish_cached(self, work: _Work, result: ChunkResult) -> bool:
        """Save the computed results, then emit hits and results in input order."""
        assert work.results is not None and work.out_dvs is not None
        captured: dict[int, codecs.Captured] = {}
        self.computed(work, work.misses, work.inputs, result, captured)
        for positions, inputs, extra in work.extra:
            self.computed(work, positions, inputs, extra, captured)
        self.serve_twins(work, captured)
        results, out_dvs = work.results, work.out_dvs
        if not work.failed:
            return self.emit(results, out_dvs)
        kept = [i for i, r in enumerate(results) if r is not _FAILED]
        return self.emit([results[i] for i in kept], [out_dvs[i] for i in kept])

    def computed(
        self,
        work: _Work,
        positions: list[int],
        inputs: list[Any],
        result: ChunkResult,
        captured: dict[int, codecs.Captured],
    ) -> None:
        """Queue the results computed for ``positions`` in the session's writer.

        Failures are recorded and their leases released.
        """
        cache = self.cache
        assert cache is not None and work.results is not None and work.out_dvs is not None
        assert work.keys is not None and work.dvs is not None
        values, errors, durations, _ = result
        keys, dvs = work.keys, work.dvs
        add = cache.session.writer.add
        unsaved: list[str] = []
        last = ("", "")
        for j, i in enumerate(positions):
            if j in errors:
                exc, text = work.errors[i] = errors[j]
                work.failed += 1
                unsaved.append(keys[i])
                self.fail(work.start + i, inputs[j], exc, text)
                continue
            value = values[j]
            duration = durations[j] if durations else 0.0
            rec, dv = cache.record(keys[i], dvs[i], value, duration)
            bytes_now = self.capture(value, work.start + i, inputs[j])
            if bytes_now is None:
                unsaved.append(keys[i])
            else:  # taken before any downstream task gets the value
                captured[i] = bytes_now
                add(rec, bytes_now, duration=duration)
            work.results[i], work.out_dvs[i] = value, dv
            last = (rec.key, dv)
        done = len(positions) - len(errors)
        self.counts.computed += done
        if done:  # the mean: one item descheduled mid-call does not make a task look dear
            cache.computed(last[0], last[1], sum(durations or ()) / len(positions))
        if unsaved:
            cache.session.release(unsaved)  # another run may compute them now

    def serve_twins(self, work: _Work, captured: dict[int, codecs.Captured]) -> None:
        """Give each repeated item of the chunk its first copy's result (or failure)."""
        results, out_dvs = work.results, work.out_dvs
        assert results is not None and out_dvs is not None
        for i, first in work.twins:
            if results[first] is _FAILED:
                exc, text = work.errors[first]
                work.failed += 1
                self.fail(work.start + i, work.items[i], exc, text)
                continue
            twin = captured.get(first)  # its own copy: items downstream are not shared
            value = results[first]
            if type(value) is Stored:
                value = Stored(value.data_version, self.fn, work.items[i])
            results[i] = value if twin is None else twin.value()
            out_dvs[i] = out_dvs[first]
            self.counts.cached += 1

    def capture(self, value: Any, index: int, item: Any) -> codecs.Captured | None:
        """``value``'s bytes, taken now; None (listed as uncached) if it cannot be pickled."""
        store = self.ex.store
        assert store is not None
        try:
            return store.capture(value)
        except StoreError as exc:
            text = (
                f"the result of {self.name!r} for item {_short(item)} was passed on but not cached"
            )
            self.ex.record_uncached(self.name, index, item, exc, text)
            return None

    def resize(self, work: _Work, seconds: float) -> None:
        """Size the next chunk by the time the task took on this one's misses.

        Hits and look-ups are bulk work, cheap per item, so a chunk of hits sets
        the largest size; and time spent waiting (for the store, for room
        downstream) is not the task's time.
        """
        limit, target = self.ex.chunk_size, self.ex.settings.queue_target_seconds
        self.size = next_size(seconds, len(work.misses), limit, target) if work.misses else limit

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Run the task on its pool (`InlinePool` for one thread worker) until the input ends."""
        pool = make_pool(self.task, self.name)
        aborted = True
        try:
            self._pump(pool)
            aborted = self.ex.abort.is_set
        finally:
            shutdown_pool(pool, aborted=aborted)

    def start(self, chunk: Chunk, pool: Executor, wake: Callable[[Any], None]) -> _Work:
        """Decide a chunk and hand its misses to the pool."""
        work = self.prepare(chunk)
        if work.misses:
            work.inputs = self.miss_values(work, work.misses)
            timed = self.cache is not None
            work.future = pool.submit(apply_chunk, self.fn, work.inputs, timed, self.portable)
            if not work.future.done():  # an InlinePool's is: nothing to wake
                work.future.add_done_callback(wake)
        elif not work.waiting:
            self.resize(work, 0.0)
        return work

    def _pump(self, pool: Executor) -> None:
        """Keep up to ``2 * max_workers + 2`` chunks in flight; emit them in input order."""
        inp, abort = self.input, self.ex.abort
        limit = 2 * self.task.max_workers + 2
        slots: deque[_Work] = deque()
        more_input = True

        def wake(_: Any) -> None:
            inp.wake()

        def head_ready() -> bool:
            return bool(slots) and slots[0].ready()

        while True:
            while slots and self.ready(slots[0]):
                if not self.finish(slots.popleft()):
                    return
            if abort.is_set:
                return
            if more_input and len(slots) < limit:
                chunk = inp.get(self.size, block=False)
                if chunk is None:
                    more_input = False
                    continue
                if len(chunk):
                    slots.append(self.start(chunk, pool, wake))
                    continue
            if not more_input and not slots:
                return
            head = slots[0] if slots else None
            timeout = None
            if head is not None and head.waiting:
                timeout = max(0.0, head.next_poll - time.monotonic())
            want = more_input and len(slots) < limit
            inp.wait_until(head_ready, want_input=want, timeout=timeout)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- ops -----------------------------------------------------------------------------------


class OpRunner(Runner):
    """Base of the ops: read loaded chunks from the one input, apply, emit."""

    def __init__(self, ex: Execution, stage: Stage, counts: NodeCounts) -> None:
        super().__init__(ex, stage.name, counts)
        self.stage = stage
        self.input = ex.channel(stage.inputs[0])
        self.outputs = list(stage.outputs)

    def chunks(self) -> Iterator[Chunk]:
        """Input chunks with their values loaded, until the input ends."""
        store = self.ex.store
        while True:
            chunk = self.read(self.input, self.ex.chunk_size)
            if chunk is None:
                return
            if store is not None:
                chunk.items = materialize(chunk.items, store, self.ex.store_reads)
            yield chunk
            self.seen += len(chunk)


class SplitRunner(OpRunner):
    """Routes each item to the output of its predicate value."""

    def run(self) -> None:
        """Route every item; a predicate value that has no output is a failure."""
        pred = self.stage.predicate
        assert pred is not None
        values = self.stage.values
        by_truth = values == (True, False)
        n_out = len(values)
        for chunk in self.chunks():
            items, dvs = chunk.items, chunk.dvs
            routed: list[list[Any]] = [[] for _ in range(n_out)]
            routed_dvs: list[list[Any]] | None = None if dvs is None else [[] for _ in range(n_out)]
            for i, item in enumerate(items):
                try:
                    v = pred(item)
                    k = (0 if v else 1) if by_truth else _position(v, values)
                except Exception as exc:
                    self.fail(self.seen + i, item, exc)
                    continue
                if k < 0:
                    self.fail(
                        self.seen + i,
                        item,
                        PipelineError(
                            f"{self.name}: the predicate returned {v!r} for item {_short(item)}, "
                            f"which has no output; split(predicate_values=...) lists {values!r}"
                        ),
                    )
                    continue
                routed[k].append(item)
                if routed_dvs is not None and dvs is not None:
                    routed_dvs[k].append(dvs[i])
            for k in range(n_out):
                if not self.emit(routed[k], None if routed_dvs is None else routed_dvs[k], k):
                    return


def _position(value: Any, values: tuple[Any, ...]) -> int:
    for k, candidate in enumerate(values):
        if candidate is value or candidate == value:
            return k
    return -1


class FilterRunner(OpRunner):
    """Keeps the items whose predicate is true."""

    def run(self) -> None:
        """Emit the kept items of each chunk."""
        pred = self.stage.predicate
        assert pred is not None
        for chunk in self.chunks():
            items, dvs = chunk.items, chunk.dvs
            kept: list[Any] = []
            kept_dvs: list[Any] | None = None if dvs is None else []
            for i, item in enumerate(items):
                try:
                    keep = pred(item)
                except Exception as exc:
                    self.fail(self.seen + i, item, exc)
                    continue
                if keep:
                    kept.append(item)
                    if kept_dvs is not None and dvs is not None:
                        kept_dvs.append(dvs[i])
            if not self.emit(kept, kept_dvs):
                return


class BatchRunner(OpRunner):
    """Groups consecutive items in lists of ``batch_size``; the last may be short, never empty."""

    def run(self) -> None:
        """Emit full batches as they fill, the remainder at the end."""
        size = self.stage.batch_size
        pending: list[Any] = []
        for chunk in self.chunks():
            pending.extend(chunk.items)
            full = len(pending) - len(pending) % size
            if full:
                batches = [pending[i : i + size] for i in range(0, full, size)]
                pending = pending[full:]
                if not self.emit(batches):
                    return
        if pending and not self.ex.abort.is_set:
            self.emit([pending])


class UnbatchRunner(OpRunner):
    """Emits the items of each batch one by one."""

    def run(self) -> None:
        """Flatten each chunk of batches; an item that is not iterable is a failure."""
        for chunk in self.chunks():
            flat: list[Any] = []
            for i, batch in enumerate(chunk.items):
                if not isinstance(batch, Iterable) or isinstance(batch, (str, bytes)):
                    self.fail(
                        self.seen + i,
                        batch,
                        PipelineError(
                            f"{self.name}: item {_short(batch)} is not a batch (a list or other "
                            "non-string iterable); unbatch expects what batch() or a task that "
                            "returns lists produces"
                        ),
                    )
                    continue
                try:
                    flat.extend(batch)
                except Exception as exc:
                    self.fail(self.seen + i, batch, exc)
            if not self.emit(flat):
                return


_OPS: dict[str, type[OpRunner]] = {
    "split": SplitRunner,
    "filter": FilterRunner,
    "batch": BatchRunner,
    "unbatch": UnbatchRunner,
}


def make_runner(ex: Execution, stage: Stage, counts: NodeCounts) -> Runner | None:
    """The runner of ``stage`` (``None`` for a merge, which needs no thread)."""
    if stage.kind == "task":
        return TaskRunner(ex, stage, counts)
    if stage.kind == "merge":
        return None
    return _OPS[stage.kind](ex, stage, counts)
