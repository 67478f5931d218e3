"""One run of a pipeline: channels, stage threads, shutdown, and the handle callers hold.

Design note
-----------
``Pipeline.run()`` builds an `Execution`: a `Channel`
per queue (a ``merge``'s input queues share its output's channel), a runner
thread per stage and per input queue, and the report counters. Threads are
daemons named ``incgraph-queues-<node>``.

*Ending.* A runner closes its output channels when its loop ends; a consumer
whose input is closed and drained ends in turn, so the end of the input ripples
to the outputs and every thread exits.

*Failing.* Items that fail are recorded and the run goes on. Anything else a
runner raises -- a broken store, a bug, ``KeyboardInterrupt`` or ``SystemExit``
from a task -- aborts the run: the shared `Abort`
flag wakes every blocked thread, each stage shuts its pool down (cancelling
queued work), and `PipelineRun.wait` re-raises ``KeyboardInterrupt`` /
``SystemExit`` as they are and anything else as a
`PipelineError` naming the node (original chained).
``KeyboardInterrupt`` in the waiting thread does the same. No wait in the
runtime is unbounded without an abort that ends it.

*Outputs.* Output queues are bounded like the others while the caller may be
reading them; `PipelineRun.wait` (and ``run(block=True)``) first makes
them unbounded, so waiting never deadlocks on results nobody reads yet. A reader
blocked on one output unbinds the others for the same reason.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from incgraph.errors import PipelineError, StoreError
from incgraph.queues.caching import materialize
from incgraph.queues.channel import Abort, Channel, Chunk
from incgraph.queues.report import ItemFailure, NodeCounts, PipelineReport
from incgraph.queues.runners import Runner, SourceRunner, make_runner
from incgraph.sentinels import MISSING

if TYPE_CHECKING:
    from incgraph.queues.pipeline import Pipeline
    from incgraph.queues.queue import Queue
    from incgraph.queues.stages import Stage
    from incgraph.store import Store
    from incgraph.store.garbage import GcReport
    from incgraph.store.session import StoreSession

__all__ = ["Execution", "PipelineRun"]

_JOIN_SECONDS = 10.0  # how long an interrupted wait gives stage threads to stop


class Execution:
    """The state of one pipeline run. Not reused."""

    def __init__(self, pipeline: Pipeline, *, capacity: int, chunk_size: int) -> None:
        self.pipeline = pipeline
        self.capacity = capacity
        self.chunk_size = chunk_size
        self.settings = pipeline.settings
        self.abort = Abort()
        self.has_cache = any(s.task is not None and s.task.cache for s in pipeline.stages)
        # the store, opened only when a task caches (None otherwise: nothing to load or save)
        self.store: Store | None = pipeline.store if self.has_cache else None
        # the run's store session: its one run-log row (the keys it hit and wrote, so gc's
        # keep_runs counts a pipeline run as one run and keeps what it used) and its leases
        self.session: StoreSession | None = None
        if self.store is not None:
            label = ", ".join(stage.name for stage in pipeline.stages)
            self.session = self.store.session("pipeline", label[:200])
            _ = self.session.lessee  # made now: stage threads claim concurrently
        # stages read the store one at a time (see incgraph.queues.caching: "one store reader")
        self.store_reads = threading.Lock()
        self.failures: list[ItemFailure] = []
        self.uncached: list[ItemFailure] = []
        self.error: BaseException | None = None
        self.error_node: str | None = None
        self.budget: GcReport | None = None  # what the store's byte budget removed after it
        self.cancelled = False
        self.started = time.perf_counter()
        self.finished_at: float | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self.channels: dict[Queue, Channel] = {}
        self.written: dict[Queue, int] = {}
        self.counts: dict[str, NodeCounts] = {}
        self.runners: list[Runner] = []
        self._build()

    # -- wiring ----------------------------------------------------------------------------

    def _root(self, q: Queue) -> Queue:
        """The queue whose channel ``q`` writes to (through any merges)."""
        while q.consumer is not None and q.consumer.kind == "merge":
            q = q.consumer.outputs[0]
        return q

    def _build(self) -> None:
        p = self.pipeline
        producers: dict[Queue, int] = {}
        for q in p.queues:
            root = self._root(q)
            if q.producer is None or q.producer.kind != "merge":
                producers[root] = producers.get(root, 0) + 1
        for q in p.queues:
            root = self._root(q)
            if root not in self.channels:
                ch = Channel(
                    root.name or "queue", self.capacity, producers.get(root, 0), self.abort
                )
                ch.terminal = root.consumer is None
                self.channels[root] = ch
            self.channels[q] = self.channels[root]
            self.written[q] = 0
        self.counts_of_source: dict[Queue, NodeCounts] = {}
        stage_names = {stage.name for stage in p.stages}
        for q in p.queues:
            if q.producer is None:
                name = q.name or "input"
                counts = NodeCounts(f"queue:{name}" if name in stage_names else name, "queue")
                self.counts[counts.name] = counts
                self.counts_of_source[q] = counts
                self.runners.append(SourceRunner(self, q, counts))
        for stage in p.stages:
            counts = NodeCounts(stage.name, stage.kind)
            self.counts[stage.name] = counts
            runner = make_runner(self, stage, counts)
            if runner is not None:
                self.runners.append(runner)
        for q in p.queues:
            if q.consumer is None:
                q._channel = self.channels[q]
                q._on_starve = self.unbind_other_outputs

    def channel(self, q: Queue) -> Channel:
        """The channel carrying ``q``'s items."""
        return self.channels[q]

    # -- what runners call ------------------------------------------------------------------

    def put(self, q: Queue, chunk: Chunk) -> bool:
        """Write ``chunk`` to queue ``q`` (values loaded first if ``q`` is an output)."""
        ch = self.channels[q]
        if ch.terminal and self.store is not None:
            chunk.items = materialize(chunk.items, self.store, self.store_reads)
        self.written[q] += len(chunk)
        return ch.put(chunk)

    def put_item(self, q: Queue, item: Any, limit: int) -> bool:
        """Write one item to queue ``q`` (an input iterator's items, as they are read)."""
        self.written[q] += 1
        self.counts_of_source[q].items_out += 1
        return self.channels[q].put_item(item, limit)

    def close(self, q: Queue) -> None:
        """The producer of ``q`` is done."""
        self.channels[q].close()

    def record_failure(
        self, node: str, index: int, item: Any, exc: BaseException, text: str
    ) -> None:
        """Append an `ItemFailure` (thread-safe)."""
        failure = ItemFailure(node, index, item, exc, text)
        with self._lock:
            self.failures.append(failure)

    def record_uncached(
        self, node: str, index: int, item: Any, exc: BaseException, text: str
    ) -> None:
        """A result that was passed on but could not be stored (thread-safe)."""
        with self._lock:
            self.uncached.append(ItemFailure(node, index, item, exc, text))

    def fail(self, node: str, exc: BaseException) -> None:
        """A runner raised: remember the first error and abort the run."""
        with self._lock:
            if self.error is None:
                self.error, self.error_node = exc, node
        self.abort.set()

    def stop(self, exc: BaseException) -> None:
        """Abort because of ``exc`` (raised in the caller's thread) and give stages time to stop."""
        self.fail(type(exc).__name__, exc)
        self.join(_JOIN_SECONDS)

    def unbind_other_outputs(self, reading: Queue) -> None:
        """A reader waits on ``reading``: let the other outputs buffer freely."""
        for q in self.pipeline.queues:
            if q.consumer is None and q is not reading:
                self.channels[q].unbound()

    def unbind_outputs(self) -> None:
        """Let every output buffer freely (the caller waits for the end, not for items)."""
        for q in self.pipeline.queues:
            if q.consumer is None:
                self.channels[q].unbound()

    # -- threads ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a thread per runner; ``done`` is set when the last one exits."""
        self._alive = len(self.runners)
        self.threads = [
            threading.Thread(
                target=self._main, args=(r,), name=f"incgraph-queues-{r.name}", daemon=True
            )
            for r in self.runners
        ]
        if not self.threads:
            self._finish()
        for t in self.threads:
            t.start()

    def _main(self, runner: Runner) -> None:
        try:
            runner.run()
        except BaseException as exc:  # handed to the waiting caller by PipelineRun.wait
            self.fail(runner.name, exc)
        finally:
            try:
                runner.close()
            finally:
                with self._lock:
                    self._alive -= 1
                    last = self._alive == 0
                if last:
                    self._finish()

    def _finish(self) -> None:
        self.finished_at = time.perf_counter()
        if self.session is not None:
            self._close_session(self.session)
        self.done.set()

    def _close_session(self, session: StoreSession) -> None:
        """Write what is queued (a store error fails the run), then the run-log row."""
        try:
            for record, error in session.flush():
                text = f"the result of {record.node!r} was passed on but not cached"
                self.record_uncached(record.node, -1, MISSING, error, text)
        except StoreError as exc:
            self.fail("store", exc)
        with suppress(StoreError):  # the run's results are in; its log row is bookkeeping
            session.close(self.error is None and not self.cancelled)
        self.budget = session.budget

    def join(self, timeout: float | None = None) -> None:
        """Join the runner threads (each is already done or stopping)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in getattr(self, "threads", []):
            if t.ident is None:  # never started (interrupted during start())
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            t.join(remaining)

    # -- the report -----------------------------------------------------------------------------

    def report(self) -> PipelineReport:
        """Counts so far (final once ``done`` is set)."""
        for stage in self.pipeline.stages:
            if stage.kind == "merge":
                n = sum(self._merged(q) for q in stage.inputs)
                c = self.counts[stage.name]
                c.items_in = c.items_out = n
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        with self._lock:
            failures, uncached = list(self.failures), list(self.uncached)
        counts = {k: v for k, v in self.counts.items()}
        return PipelineReport(counts, failures, end - self.started, uncached, self.budget)

    def _merged(self, q: Queue) -> int:
        producer: Stage | None = q.producer
        if producer is not None and producer.kind == "merge":
            return sum(self._merged(i) for i in producer.inputs)
        return self.written[q]


class PipelineRun:
    """A running pipeline, as returned by ``run(block=False)``.

    Read its output queues while it runs (iteration ends when the pipeline is
    done), then call `wait` for the report -- also after reading every
    output: it returns once the last results are saved in the store. As a context
    manager, leaving the block waits (or, on an exception, cancels).

    Examples
    --------
    >>> import incgraph.queues as iq
    >>> p = iq.Pipeline(store=":memory:")
    >>> out = p.map(lambda x: x * x, iq.Queue(range(5)))
    >>> handle = p.run(block=False)
    >>> list(out)
    [0, 1, 4, 9, 16]
    >>> handle.wait().computed
    5
    """

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    def done(self) -> bool:
        """Whether every stage has finished."""
        return self._ex.done.is_set()

    @property
    def report(self) -> PipelineReport:
        """The counts so far (final once `done`)."""
        return self._ex.report()

    def cancel(self) -> None:
        """Stop the run: every stage stops at its next hand-off and pools are shut down."""
        self._ex.cancelled = True
        self._ex.abort.set()

    def wait(self, timeout: float | None = None) -> PipelineReport:
        """Wait for the end of the run and return its report.

        Unread results stay in the output queues. ``KeyboardInterrupt`` while
        waiting stops the run (every pool is shut down) and is re-raised.

        Raises
        ------
        PipelineError
            The run stopped on an error that is not an item's (the original is
            chained), or was cancelled, or ``timeout`` expired.
        KeyboardInterrupt, SystemExit
            Raised by a task, re-raised here after every pool was shut down.
        """
        ex = self._ex
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            ex.unbind_outputs()
            while not ex.done.wait(0.1):  # short waits keep Ctrl-C responsive
                if deadline is not None and time.monotonic() > deadline:
                    raise PipelineError(
                        f"the pipeline did not finish within {timeout} s; it is still running "
                        "(call cancel() to stop it)"
                    )
            ex.join()
        except KeyboardInterrupt as exc:
            ex.stop(exc)
            raise
        self._raise_error()
        report = ex.report()
        ex.pipeline.last_report = report
        return report

    result = wait

    def _raise_error(self) -> None:
        ex = self._ex
        err = ex.error
        if err is None:
            if ex.cancelled:
                raise PipelineError("the pipeline run was cancelled; its outputs may be partial")
            return
        if not isinstance(err, Exception):
            raise err
        raise PipelineError(
            f"the pipeline stopped: node {ex.error_node!r} raised {type(err).__name__}: {err} "
            "(not an item's failure, so the run could not go on); every pool was shut down"
        ) from err

    def __enter__(self) -> PipelineRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and not self.done():
            self.cancel()
        if exc[0] is None:
            self.wait()
        else:
            self._ex.join(_JOIN_SECONDS)
