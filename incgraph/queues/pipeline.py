"""``Pipeline``: declare stages over queues, then run them as a stream.

Design note
-----------
Declaring is cheap and runs nothing: each call (``map``, ``chain``, ``split``,
``merge``, ``batch``, ``unbatch``, ``filter``) appends a
`Stage`, wires its queues, and adds the stage's
node to ``pipeline.graph`` (a `ProcessGraph`, see
`incgraph.queues.nodes`). Mistakes are caught here, naming the queue and
the stage: a queue read by two stages, a queue of another pipeline, a bad
``batch_size``.

``run()`` streams items through the stages (`incgraph.queues.execution`)
and caches each task application in the pipeline's store -- the graph's store,
so ``Pipeline(store=...)`` takes what ``ProcessGraph(store=...)`` takes and the
default is the same default store. A pipeline runs once; its output queues
then hold the results. Two pipelines share nothing but, if they are given the
same one, the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incgraph.core.graph import Node
from incgraph.errors import ConfigurationError, PipelineError
from incgraph.graph import ProcessGraph
from incgraph.queues.execution import Execution, PipelineRun
from incgraph.queues.nodes import (
    BatchOp,
    FilterOp,
    MergeOp,
    SplitOp,
    UnbatchOp,
    task_processor,
)
from incgraph.queues.queue import Queue
from incgraph.queues.report import PipelineReport
from incgraph.queues.stages import Stage, callable_name
from incgraph.queues.task import Task, as_task

if TYPE_CHECKING:
    from incgraph.render import Drawing
from incgraph.sentinels import MISSING
from incgraph.settings import Settings
from incgraph.store import Store

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)


class Pipeline:
    """A graph of tasks and ops over queues, run as a stream with per-item caching.

    Parameters
    ----------
    store : str, pathlib.Path, Store or None
        Where task results are cached, as for ``ProcessGraph(store=...)``:
        a folder, ``":memory:"``, a `Store`, or ``None`` for
        the default store (``$INCGRAPH_STORE`` or ``./.incgraph``).
    name : str, optional
        Prefix of the node labels recorded in the store.

    Attributes
    ----------
    graph : ProcessGraph
        One node per input queue, task and op.
    stages : list of Stage
        In declaration order.
    last_report : PipelineReport or None
        The report of the run, once it has finished.

    Examples
    --------
    >>> p = Pipeline(store=":memory:")
    >>> q = p.chain([str.strip, str.upper], Queue([" a ", "b "]))
    >>> q_long, q_short = p.split(lambda s: len(s) > 1, q)
    >>> report = p.run()
    >>> list(q_short), report.computed
    (['A', 'B'], 4)
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        name: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store_location = store
        self.graph = ProcessGraph(store, name=name, settings=settings)
        self.stages: list[Stage] = []
        self.queues: list[Queue] = []
        self.last_report: PipelineReport | None = None
        self._run: PipelineRun | None = None
        self._names: dict[str, set[str]] = {"stage": set(), "queue": set()}

    def __repr__(self) -> str:
        return f"<Pipeline stages={len(self.stages)} queues={len(self.queues)}>"

    @property
    def store(self) -> Store:
        """The store task results are cached in (opened on first use)."""
        return self.graph.store

    @property
    def settings(self) -> Settings:
        """The tuning of this pipeline's runs: those given, else its store's.

        Examples
        --------
        >>> from incgraph import DEFAULT_SETTINGS
        >>> Pipeline(store=":memory:").settings.queue_chunk_size
        512
        >>> small = DEFAULT_SETTINGS.replace(queue_capacity=64)
        >>> Pipeline(store=":memory:", settings=small).settings.queue_capacity
        64
        """
        return self.graph.settings

    # -- declaring ---------------------------------------------------------------------------

    def map(
        self, task: Task | Callable[[Any], Any], queue_in: Queue, queue_out: Queue | None = None
    ) -> Queue:
        """Apply ``task`` to every item of ``queue_in``; results keep the input order.

        Parameters
        ----------
        task : Task or callable
            A plain function is wrapped with the default options (one worker, cached).
        queue_in : Queue
        queue_out : Queue, optional
            An empty ``Queue()`` to write to; a new queue otherwise.

        Returns
        -------
        Queue
            The results. An item whose task raised is left out and listed in the
            run report's ``failures``.

        Raises
        ------
        HashingError
            A cached task whose code cannot be fingerprinted (declare it ``cache=False``).
        """
        t = as_task(task)
        stage = self._add("task", t.name, [queue_in], task=t)
        return self._outputs(stage, [queue_out])[0]

    def chain(
        self,
        tasks: Sequence[Task | Callable[[Any], Any]],
        queue_in: Queue,
        queue_out: Queue | None = None,
    ) -> Queue:
        """``map`` each task in turn: ``chain([f, g], q)`` is ``map(g, map(f, q))``.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> out = p.chain([abs], Queue([-1, 2]))
        >>> _ = p.run(); list(out)
        [1, 2]
        """
        tasks = list(tasks)
        if not tasks:
            raise PipelineError("chain() needs at least one task; pass a list like [f, g]")
        q = queue_in
        for i, t in enumerate(tasks):
            q = self.map(t, q, queue_out if i == len(tasks) - 1 else None)
        return q

    def split(
        self,
        predicate: Callable[[Any], Any],
        queue_in: Queue,
        predicate_values: Sequence[Any] = (True, False),
    ) -> tuple[Queue, ...]:
        """Route each item to one output queue by ``predicate(item)``.

        Parameters
        ----------
        predicate : callable
            With the default ``predicate_values``, a truthy value routes to the first
            queue and a falsy one to the second.
        predicate_values : sequence, optional
            One output queue per value, in order; an item whose predicate value is
            not listed fails (recorded in the report).

        Returns
        -------
        tuple of Queue
            ``(q_true, q_false)`` by default.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> small, mid, big = p.split(lambda x: min(x // 10, 2), Queue([5, 50, 15]), (0, 1, 2))
        >>> _ = p.run(); list(small), list(mid), list(big)
        ([5], [15], [50])
        """
        values = tuple(predicate_values)
        if not values:
            raise PipelineError("split(): predicate_values is empty; list at least one value")
        pred = _function(predicate)
        name = f"split[{callable_name(predicate)}]"
        stage = self._add("split", name, [queue_in], predicate=pred, values=values)
        return tuple(self._outputs(stage, [None] * len(values)))

    def merge(self, queues: Iterable[Queue], queue_out: Queue | None = None) -> Queue:
        """One queue with the items of ``queues``, interleaved as they arrive.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> out = p.merge([Queue([1, 2]), Queue([3])])
        >>> _ = p.run(); sorted(out)
        [1, 2, 3]
        """
        inputs = list(queues)
        if not inputs:
            raise PipelineError("merge() needs at least one queue; pass a list or tuple of queues")
        stage = self._add("merge", "merge", inputs)
        return self._outputs(stage, [queue_out])[0]

    def batch(self, queue_in: Queue, batch_size: int = 10, queue_out: Queue | None = None) -> Queue:
        """Group consecutive items into lists of ``batch_size``; the last may be short, never empty.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> out = p.batch(Queue(range(5)), batch_size=2)
        >>> _ = p.run(); list(out)
        [[0, 1], [2, 3], [4]]
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(
                f"batch(): batch_size={batch_size!r}; pass a whole number >= 1"
            )
        stage = self._add("batch", f"batch[{batch_size}]", [queue_in], batch_size=batch_size)
        return self._outputs(stage, [queue_out])[0]

    def unbatch(self, queue_in: Queue, queue_out: Queue | None = None) -> Queue:
        """The items of each batch (list) of ``queue_in``, one by one, in order.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> out = p.unbatch(Queue([[1, 2], [3]]))
        >>> _ = p.run(); list(out)
        [1, 2, 3]
        """
        stage = self._add("unbatch", "unbatch", [queue_in])
        return self._outputs(stage, [queue_out])[0]

    def filter(
        self, predicate: Callable[[Any], Any], queue_in: Queue, queue_out: Queue | None = None
    ) -> Queue:
        """The items of ``queue_in`` for which ``predicate`` is true, in order.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> out = p.filter(lambda x: x % 2, Queue(range(6)))
        >>> _ = p.run(); list(out)
        [1, 3, 5]
        """
        pred = _function(predicate)
        name = f"filter[{callable_name(predicate)}]"
        stage = self._add("filter", name, [queue_in], predicate=pred)
        return self._outputs(stage, [queue_out])[0]

    # -- wiring ----------------------------------------------------------------------------

    def _unique(self, name: str, space: str = "stage") -> str:
        taken = self._names[space]
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}#{n}"
        taken.add(candidate)
        return candidate

    def _add(self, kind: str, name: str, inputs: list[Queue], **params: Any) -> Stage:
        self._check_not_run()
        for q in inputs:
            self._adopt_input(q, kind, name)
        stage = Stage(kind, self._unique(name), inputs, **params)
        for q in inputs:
            q.consumer = stage
        stage.node = self._add_node(stage)
        self.stages.append(stage)
        return stage

    def _adopt_input(self, q: Queue, kind: str, name: str) -> None:
        if not isinstance(q, Queue):
            raise PipelineError(
                f"{kind} {name!r}: expected a Queue as input, got {type(q).__name__}; "
                "wrap items in Queue(items)"
            )
        if q.pipeline is not None and q.pipeline is not self:
            raise PipelineError(
                f"{kind} {name!r}: queue {q.name!r} belongs to another pipeline; "
                "a queue can only be used in one pipeline"
            )
        if q.consumer is not None:
            raise PipelineError(
                f"{kind} {name!r}: queue {q.name!r} is already read by {q.consumer.name!r}; "
                "a queue has one reader -- use split() to send items different ways"
            )
        if q.pipeline is None:
            q.pipeline = self
            q.name = self._unique(q.name or "input", "queue")
            self.queues.append(q)

    def _outputs(self, stage: Stage, given: list[Queue | None]) -> list[Queue]:
        outs = []
        for i, q in enumerate(given):
            if q is None:
                suffix = f"{stage.values[i]!r}" if stage.kind == "split" else "out"
                q = Queue(name=f"{stage.name}.{suffix}")
            elif q.pipeline is not None or q.items is not MISSING:
                raise PipelineError(
                    f"{stage.kind} {stage.name!r}: queue_out {q.name!r} is already in use "
                    "(it has items, or is part of a pipeline); pass a new empty Queue()"
                )
            q.pipeline = self
            q.producer = stage
            q.name = self._unique(q.name or f"{stage.name}.out", "queue")
            self.queues.append(q)
            outs.append(q)
        stage.outputs = outs
        return outs

    def _producer_node(self, q: Queue) -> Node:
        if q.producer is not None:
            assert q.producer.node is not None
            return q.producer.node
        node_id = f"queue:{q.name}"
        if node_id not in self.graph.nodes:
            return self.graph.add_constant_node(node_id, q.name)
        return self.graph.nodes[node_id]

    def _add_node(self, stage: Stage) -> Node:
        g = self.graph
        ups = [self._producer_node(q) for q in stage.inputs]
        if stage.kind == "task":
            t = stage.task
            assert t is not None
            node = g.add_node(stage.name, task_processor(t), {"item": ups[0]}, cache=t.cache)
            if t.cache:
                _ = t.code_version  # a function that cannot be fingerprinted fails here
            return node
        if stage.kind == "merge":
            return g.add_node(stage.name, MergeOp, {f"item_{i}": u for i, u in enumerate(ups)})
        if stage.kind == "split":
            kwargs = {"predicate": stage.predicate, "values": stage.values}
            return g.add_node(stage.name, SplitOp, {"item": ups[0]}, kwargs, cache=False)
        if stage.kind == "filter":
            return g.add_node(
                stage.name, FilterOp, {"item": ups[0]}, {"predicate": stage.predicate}, cache=False
            )
        if stage.kind == "batch":
            return g.add_node(
                stage.name, BatchOp, {"item": ups[0]}, {"batch_size": stage.batch_size}
            )
        return g.add_node(stage.name, UnbatchOp, {"item": ups[0]})

    def _check_not_run(self) -> None:
        if self._run is not None:
            raise PipelineError(
                "this pipeline has already run; declare a new Pipeline() (or, for the "
                "module-level functions, they already start a new default pipeline)"
            )

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        block: bool = True,
        *,
        capacity: int | None = None,
        chunk_size: int | None = None,
    ) -> PipelineReport | PipelineRun:
        """Stream every input through the pipeline.

        Parameters
        ----------
        block : bool
            ``True`` waits for the end and returns the `PipelineReport`;
            ``False`` returns a `PipelineRun` at once, so output queues can be
            read while the pipeline runs (iteration ends when it is done).
        capacity : int, optional
            Items a queue holds before its producer waits (backpressure).
            Default: the settings' ``queue_capacity`` (2048).
        chunk_size : int, optional
            Most items handed from one stage to the next at once. Default: the
            settings' ``queue_chunk_size`` (512).

        Raises
        ------
        PipelineError
            The pipeline already ran, or stopped on an error that is not an item's.
        """
        self._check_not_run()
        settings = self.settings
        capacity = settings.queue_capacity if capacity is None else capacity
        chunk_size = settings.queue_chunk_size if chunk_size is None else chunk_size
        for name, value in (("capacity", capacity), ("chunk_size", chunk_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"run(): {name}={value!r}; pass a whole number >= 1")
        ex = Execution(self, capacity=capacity, chunk_size=chunk_size)
        handle = PipelineRun(ex)
        self._run = handle
        if not block:
            ex.start()
            return handle
        ex.unbind_outputs()
        try:
            ex.start()
            return handle.wait()
        except KeyboardInterrupt as exc:  # e.g. Ctrl-C between start() and wait()
            ex.stop(exc)
            raise

    # -- drawing ----------------------------------------------------------------------------

    def render(self, path: str | os.PathLike[str] | None = None, format: str = "mermaid") -> str:
        """Draw the pipeline: queues, tasks and ops (split predicates, batch sizes).

        Parameters
        ----------
        path : str or Path, optional
            Also write the drawing there: ``.mmd``/``.md`` get mermaid text,
            ``.dot``/``.gv`` DOT text, any other suffix (``.png``, ``.svg``, ``.pdf``)
            an image made by graphviz's ``dot`` -- or, when ``dot`` is not installed,
            the DOT text next to it (``<path>.dot``).
        format : {"mermaid", "dot"}
            The text returned.

        Returns
        -------
        str
            Mermaid or DOT text.

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> _ = p.batch(Queue([1, 2, 3], name="numbers"), batch_size=2)
        >>> print(p.render())
        flowchart TD
            n_q_numbers[/"numbers"/]
            n_s_batch_2_{{"batch: 2"}}
            n_q_batch_2__out[/"batch[2].out"/]
            n_q_numbers --> n_s_batch_2_
            n_s_batch_2_ --> n_q_batch_2__out
        """
        from incgraph.queues.drawing import render_text, write_drawing

        text = render_text(self, format)
        if path is not None:
            written = write_drawing(self, Path(path))
            log.info("pipeline drawing written to %s", written)
        return text

    render_pipeline = render

    def draw(self) -> Drawing:
        """A drawing of the pipeline: a picture in a notebook, mermaid text in a terminal.

        After a run, tasks are coloured by what they did (computed, hit, failed).

        Examples
        --------
        >>> p = Pipeline(store=":memory:")
        >>> _ = p.batch(Queue([1, 2, 3], name="numbers"), batch_size=2)
        >>> p.draw()._repr_html_().startswith("<svg")
        True
        """
        from incgraph.queues.drawing import draw_pipeline

        return draw_pipeline(self)


def _function(predicate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if isinstance(predicate, Task):
        return predicate.fn
    if not callable(predicate):
        raise PipelineError(f"{predicate!r} is not callable; pass a function of one item")
    return predicate
