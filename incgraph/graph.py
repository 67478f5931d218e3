"""``ProcessGraph``: the graph users build, with a store and an executor to run it.

Design note
-----------
`Graph` is plain data; this class adds the effects:
a store (opened lazily, at the first run, so building a graph touches no
disk), an executor, the persisted JSON record of node states, and the entry
points ``run_upto`` / ``run_only`` / ``explain`` / ``process_batch``. Every
entry point goes through the one engine loop in `incgraph.run.engine`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incgraph.core.graph import Graph, Node, new_run_epoch
from incgraph.core.plan import Plan
from incgraph.executors import Executor, check_executor, resolve_executor
from incgraph.run.engine import RunReport, execute
from incgraph.run.explain import explain
from incgraph.run.persisting import write_record
from incgraph.settings import DEFAULT_SETTINGS, Settings, checked_settings
from incgraph.store import Store, memory_store, open_store

if TYPE_CHECKING:
    from incgraph.render import Drawing
    from incgraph.store.acceptance import AcceptReport
    from incgraph.store.invalidation import InvalidateReport

__all__ = ["ProcessGraph"]


class ProcessGraph(Graph):
    """A graph of processors whose results are cached by content in a persistent store.

    Parameters
    ----------
    store : str, pathlib.Path, Store or None
        Where results live: a folder (created on first run), ``":memory:"`` for a
        store that lives as long as the graph, or a `Store`.
        ``None`` uses ``$INCGRAPH_STORE`` if set, else ``./.incgraph``.
    executor : str or Executor, optional
        Where computations run: ``"serial"`` (default), ``"threads"``,
        ``"processes"``, ``"asyncio"``, ``"dask"``, or an executor object.
    name : str, optional
        Prefix for node labels in the store (``"video/2"``), useful when several
        graphs share one store.
    max_bytes : int, optional
        A byte budget for the store, enforced after every run that writes
        (least recently used results go first; pinned and recent ones never).
        Default: ``$INCGRAPH_MAX_BYTES`` if set, else none. Given with a
        `Store`, it sets that store's budget.
    settings : Settings, optional
        The tuning of this graph's runs (`incgraph.settings`). Default: its
        store's. A store the graph opens itself (from a folder or
        ``":memory:"``) is opened with these settings; a `Store` passed in keeps
        its own for what the store does alone (inline limits, gc grace), while
        this graph's runs follow these.

    Examples
    --------
    The original batch recipe's example: change a constant, and only what depends on it recomputes.

    >>> from incgraph import ProcessGraph, Processor
    >>> class SumInt(Processor):
    ...     def process(self, a: int, b: int) -> int:
    ...         return a + b
    >>> graph = ProcessGraph(store=":memory:")
    >>> node_const = graph.add_constant_node(id=0, name="MyConst")
    >>> node1 = graph.add_node(1, SumInt, {"a": node_const, "b": 200})
    >>> node2 = graph.add_node(2, SumInt, {"a": 300, "b": node1})
    >>> node_const.set_value(100)
    >>> graph.run_upto(node2)
    600
    >>> node_const.set_value(1)
    >>> graph.run_upto(node2)
    501
    >>> node_const.set_value(100)
    >>> graph.run_upto(node2), len(graph.last_run.computed)
    (600, 0)
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        executor: Executor | str | None = None,
        name: str | None = None,
        max_bytes: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(name=name)
        self._settings = None if settings is None else checked_settings(settings, "ProcessGraph")
        check_executor(executor)
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self._max_bytes = max_bytes
        self._store_location = store
        self._store: Store | None = None
        self._executor_spec = executor
        self._executor: Executor | None = None
        self._persist_path: Path | None = None
        self.last_run: RunReport = RunReport()

    # -- store and executor --------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The graph's store, opened on first use."""
        if self._store is None:
            loc = self._store_location
            settings = DEFAULT_SETTINGS if self._settings is None else self._settings
            if loc == ":memory:":
                self._store = memory_store(settings=settings)
            elif isinstance(loc, Store):
                self._store = loc
            else:
                self._store = open_store(loc, settings=settings)
            if self._max_bytes is not None:
                self._store.max_bytes = self._max_bytes
        return self._store

    @property
    def settings(self) -> Settings:
        """The tuning this graph's runs follow: those given, else its store's.

        Examples
        --------
        >>> from incgraph import DEFAULT_SETTINGS, ProcessGraph, memory_store
        >>> store = memory_store()
        >>> ProcessGraph(store=store).settings is store.settings
        True
        >>> tuned = DEFAULT_SETTINGS.replace(claim_ahead=8)
        >>> ProcessGraph(store=store, settings=tuned).settings.claim_ahead
        8
        """
        return self.store.settings if self._settings is None else self._settings

    def declared_packages(self) -> tuple[str, ...]:
        """The store's ``packages``: their versions enter every node's cache key."""
        return self.store.packages

    @property
    def executor(self) -> Executor:
        """The graph's executor, created on first use."""
        if self._executor is None:
            self._executor = resolve_executor(self._executor_spec)
        return self._executor

    def close(self) -> None:
        """Release resources; shut down the executor and close the store if the graph made them.

        A `Store` or an executor object passed in by the caller
        stays open: whoever made it closes it.
        """
        self.release_resources()
        if self._executor is not None:
            if not isinstance(self._executor_spec, Executor):
                self._executor.shutdown()
            self._executor = None
        if self._store is not None:
            if not isinstance(self._store_location, Store):
                self._store.close()
            self._store = None

    def __enter__(self) -> ProcessGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------

    def run_upto(
        self,
        node: Node | Sequence[Node],
        *,
        force: bool | Iterable[Node] = False,
        executor: Executor | str | None = None,
    ) -> Any:
        """Run every node ``node`` needs, computing only what is not cached; return its value.

        Parameters
        ----------
        node : Node or list of Node
            The target(s). With a list, the value of the last one is returned.
        force : bool or iterable of Node
            ``True`` recomputes the target(s); an iterable recomputes those nodes.
        executor : optional
            Overrides the graph's executor for this run.

        Returns
        -------
        The target's result (the last target's, for a list).
        """
        targets = self._targets(node)
        report = self._execute(targets, self._forced(force, targets), executor=executor)
        return report.values[targets[-1]]

    def _forced(self, force: object, targets: list[Node]) -> set[Node]:
        """The nodes ``force`` names: the targets for True, none for False or None."""
        if force is True:
            return set(targets)
        if force is False or force is None:
            return set()
        if isinstance(force, Node):
            return set(self._targets(force))
        if isinstance(force, (str, bytes)) or not isinstance(force, Iterable):
            raise TypeError(
                f"force= takes True, False or a list of this graph's nodes to recompute, "
                f"got {force!r}"
            )
        return set(self._targets(list(force)))

    def run_only(self, node: Node) -> Any:
        """Compute just ``node`` from its inputs' stored results (upstream is never computed).

        Raises
        ------
        NotCachedError
            If an upstream node has no stored result for the current inputs.
        """
        report = self._execute([node], set(), upstream_only=True)
        return report.values[node]

    def _execute(
        self,
        targets: list[Node],
        force: set[Node],
        *,
        executor: Executor | str | None = None,
        upstream_only: bool = False,
    ) -> RunReport:
        order = self.topological_sort(targets)
        new_run_epoch()
        ex = self.executor if executor is None else resolve_executor(executor)
        # filled as nodes finish: after a failed run it says what was computed and what failed
        self.last_run = report = RunReport()
        try:
            execute(
                self.store,
                ex,
                order,
                targets,
                force=force,
                upstream_only=upstream_only,
                report=report,
                settings=self.settings,
            )
        finally:
            if isinstance(executor, str):  # made for this run; an object stays its owner's
                ex.shutdown()
        if self._persist_path is not None:
            self._write_persist(report)
        return report

    def explain(
        self, node: Node | Sequence[Node] | None = None, *, force: bool | Iterable[Node] = False
    ) -> Plan:
        """Why each node a run up to ``node`` would visit is a hit or computes.

        ``force`` is what `run_upto` takes: ``True`` forces the target(s), an
        iterable those nodes; forced nodes are said to compute.

        Decided by the run's own decide step with a read-only look-up
        (`incgraph.run.explain`): nothing is computed, loaded or claimed.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Inc(Processor):
        ...     def process(self, x: int) -> int:
        ...         return x + 1
        >>> g = ProcessGraph(store=":memory:")
        >>> c = g.add_constant_node(0, "c", value=1)
        >>> n = g.add_node(1, Inc, {"x": c})
        >>> g.explain(n)[n].action
        'compute'
        >>> _ = g.run_upto(n)
        >>> g.explain(n)[n].action
        'hit'
        >>> c.set_value(2)
        >>> g.explain(n)[n].reason
        "input 'x' changed"
        """
        targets = self._targets(node)
        order = self.topological_sort(targets)
        forced = self._forced(force, targets)
        new_run_epoch()
        return explain(self.store, order, forced, settings=self.settings)

    def render(self, format: str = "mermaid", *, explain: bool = False) -> str:
        """Mermaid or DOT text of the graph; with ``explain=True`` nodes are marked hit/compute.

        Examples
        --------
        >>> from incgraph import ProcessGraph
        >>> g = ProcessGraph(store=":memory:")
        >>> _ = g.add_constant_node(0, "x", value=1)
        >>> print(g.render())
        flowchart TD
            n_0(["0: x"])
        """
        from incgraph.render import render

        return render(self, format, plan=self.explain() if explain else None)

    def draw(self, *, explain: bool = False) -> Drawing:
        """A drawing of the graph: a picture in a notebook, mermaid text in a terminal.

        With ``explain=True`` each node is coloured by what a run would do (hit,
        compute, maybe). The drawing shows itself as an inline SVG as the last
        line of a notebook cell; ``str()`` of it is mermaid text.

        Examples
        --------
        >>> from incgraph import ProcessGraph
        >>> g = ProcessGraph(store=":memory:")
        >>> _ = g.add_constant_node(0, "x", value=1)
        >>> print(g.draw())
        flowchart TD
            n_0(["0: x"])
        >>> g.draw()._repr_html_().startswith("<svg")
        True
        """
        from incgraph.render import draw_graph

        return draw_graph(self, self.explain() if explain else None)

    # -- cache controls -----------------------------------------------------------------------

    def invalidate(
        self, target: Any, *, downstream: bool = True, dry_run: bool = False
    ) -> InvalidateReport:
        """Take results out of use: the next run computes them again.

        Parameters
        ----------
        target : Node, processor class, str, or a list of these
            A node (its results for every input it was run with), a processor
            class (every result it made, in any graph sharing the store), or a
            cache key (or a unique prefix of one).
        downstream : bool
            Also take out what was computed from them: for nodes and
            processors, the results of the nodes reading them in this graph;
            for keys, the results whose inputs have their data versions.
        dry_run : bool
            Say what would be removed; remove nothing.

        Returns
        -------
        InvalidateReport
            ``removed`` lists every result taken out of use.

        Only index rows are removed: bytes other results share stay, and
        ``gc`` reclaims what nothing references any more.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Inc(Processor):
        ...     def process(self, x: int) -> int:
        ...         return x + 1
        >>> g = ProcessGraph(store=":memory:")
        >>> a = g.add_node(1, Inc, {"x": 1})
        >>> b = g.add_node(2, Inc, {"x": a})
        >>> _ = g.run_upto(b)
        >>> len(g.invalidate(a).removed)
        2
        >>> _ = g.run_upto(b)
        >>> len(g.last_run.computed)
        2
        """
        from incgraph.run.controls import invalidate_targets

        return invalidate_targets(self, self.store, target, downstream=downstream, dry_run=dry_run)

    def accept(self, target: Any, *, dry_run: bool = False) -> list[AcceptReport]:
        """Say that a node's current code gives the results of its previous code.

        The results the node's most recent earlier code version stored become
        hits for its current code version (and so does everything downstream,
        whose keys follow data versions). The acceptance is recorded in the
        store and shown by ``incgraph show`` and ``incgraph lineage``. Never
        automatic: call it once after a refactor you know changes no result.

        Parameters
        ----------
        target : Node, processor class, or a list of these
            A processor class means each of its nodes in this graph.
        dry_run : bool
            Say what would be accepted; write nothing.

        Returns
        -------
        list of AcceptReport
            One per node accepted (``accepted`` lists (old key, new key) pairs).

        Raises
        ------
        NotCachedError
            No target node has results of an earlier code version.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Inc(Processor):
        ...     def process(self, x: int) -> int:
        ...         return x + 1
        >>> g = ProcessGraph(store=":memory:")
        >>> n = g.add_node(1, Inc, {"x": 1})
        >>> _ = g.run_upto(n)
        >>> Inc.version = 2  # a new code version that gives the same results
        >>> g2 = ProcessGraph(store=g.store)
        >>> n2 = g2.add_node(1, Inc, {"x": 1})
        >>> len(g2.accept(n2)[0].accepted)
        1
        >>> _ = g2.run_upto(n2)
        >>> len(g2.last_run.hits)
        1
        """
        from incgraph.run.controls import accept_targets

        return accept_targets(self, self.store, target, dry_run=dry_run)

    # -- batches ----------------------------------------------------------------------------

    def process_batch(
        self,
        batch_items: Iterable[Any],
        run_nodes: Sequence[Node],
        prep_fn: Callable[[int, Any], Any] | None = None,
        **options: Any,
    ) -> Any:
        """Run ``run_nodes`` for every item; see `incgraph.run.batch.process_batch`."""
        from incgraph.run.batch import process_batch

        new_run_epoch()  # code versions and files as they are now
        return process_batch(self, batch_items, run_nodes, prep_fn, **options)

    batch_process = process_batch

    # -- persistence ------------------------------------------------------------------------

    def persist(self, path: str | os.PathLike[str]) -> None:
        """Keep a human-readable JSON record of node states at ``path``, updated after each run.

        The record holds, per node visited: name, status, cache key, data version,
        compute time, and the output when it is JSON-representable (small stored
        results are loaded for it). Parent folders are created. The file is written
        only when what it records changes, so a cached rerun leaves it untouched.
        The cached values themselves live in the graph's store, so calling
        ``persist`` is optional everywhere, including in a batch's ``prep_fn``
        (each item then gets its own file; see `incgraph.run.persisting`).

        Parameters
        ----------
        path : str or os.PathLike
            Where the JSON record is kept.

        Examples
        --------
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from incgraph import ProcessGraph, Processor
        >>> class SumInt(Processor):
        ...     def process(self, a: int, b: int) -> int:
        ...         return a + b
        >>> graph = ProcessGraph(store=":memory:")
        >>> node1 = graph.add_node(1, SumInt, {"a": 1, "b": 200})
        >>> path = Path(tempfile.mkdtemp()) / "state" / "graph.json"
        >>> graph.persist(path)
        >>> graph.run_upto(node1)
        201
        >>> entry = json.loads(path.read_text())["nodes"]["1"]
        >>> entry["name"], entry["status"], entry["output"]
        ('SumInt', 'computed', 201)
        """
        self._persist_path = Path(path)
        if self.last_run.statuses:
            self._write_persist(self.last_run)

    def _write_persist(self, report: RunReport) -> None:
        assert self._persist_path is not None
        write_record(self._persist_path, self.name, report, self.store, self.settings)
