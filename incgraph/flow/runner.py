"""Running a flow: compile layers to ProcessGraph nodes wave by wave, run each wave once.

Design note
-----------
A ForEach layer's fan-out depends on data (how many elements a shard has), so
the graph cannot be built up front. The runner compiles in *waves*:

1. Walk the layers still to compile, in topological order. A plain layer can
   be compiled as soon as every layer it reads is either finished or compiled
   in this wave (it binds the live node). A ForEach layer needs every layer
   it reads *finished*: its grid is expanded from their manifests
   (`incgraph.flow.grid`), then one task node per grid point and a
   `ForEachJoin` node are added.
2. Run the wave's exit nodes with one ``run_upto`` call: the engine orders
   them once, runs independent layers and tasks in parallel on the executor,
   and decides hits and early cutoff as for any graph.
3. Record each finished layer's result (its manifest, or the join of its
   task manifests). Later waves bind it through a constant node holding that
   value: a constant's data version is the content hash of the value, equal
   to the data version the engine recorded for the node, so every cache key
   is the same as if the node itself were bound, and nothing finished is
   visited twice.

**ForEach memo.** A fully cached rerun of a ForEach over N tasks should not
add N nodes and look up N keys. Since a ForEach compiles only when all its
inputs are known, the runner hashes them all - the shared inputs' data
versions and every task's own inputs - into one *memo key*
(``node_key(task code version, join code version, {"grid": ..., ...})``).
After a run that computed the layer, the join's result is also recorded
under the memo key (same blob, one more index row, labelled
``<Flow>/<Layer>[*]``). The memo key goes through the run's decide step
(`incgraph.run.decide`) like any key: on the next run a memo hit yields the
join at the cost of one look-up; any change to code, params or any element
misses the memo (claimed, so its lease is held until the memo row is
committed) and the tasks are compiled as nodes, each decided on its own key.
A memo key another process is computing is not waited for: the tasks are
compiled, and each one waits for its own lease.

One run, one session. A flow run opens one store session (one row in the
store's run log, also for an in-memory store) and makes it current
(`incgraph.store.StoreSession.as_current`): each wave's engine run is a part
of it, so every wave's results, the artifacts the layers set and the memo
rows go through the session's one writer (`incgraph.store.writer`). Each
wave ends with a commit, also when a task failed: tasks that succeeded are
committed and are hits on the rerun. A layer reading an artifact its upstream
layer set a moment ago gets it from the writer's recent bytes.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.executors.base import Executor
from incgraph.flow.definition import LayerPlan, Plan
from incgraph.flow.grid import Grid, expand, without
from incgraph.flow.layer import Layer
from incgraph.flow.processors import (
    PARAMS_INPUT,
    TASK_INPUT,
    FlowContext,
    ForEachJoin,
    LayerProcessor,
    layer_processor,
)
from incgraph.flow.reads import layer_reads
from incgraph.graph import ProcessGraph
from incgraph.hashing._packages import with_packages
from incgraph.run.decide import Decider, Work
from incgraph.sentinels import MISSING
from incgraph.store import Store
from incgraph.store.garbage import GcReport
from incgraph.store.invalidation import FOREACH_MEMO
from incgraph.store.protocols import Record
from incgraph.store.session import StoreSession

__all__ = ["FlowRun", "LayerResult"]


@dataclass(frozen=True)
class LayerResult:
    """A finished layer: its result value and data version, and how it was obtained.

    ``tasks`` is the number of tasks of a ForEach layer (``None`` otherwise).
    """

    name: str
    value: Any
    data_version: str
    tasks: int | None

    @property
    def is_foreach(self) -> bool:
        """Whether the layer ran as a ForEach."""
        return self.tasks is not None


_PROCESSORS: weakref.WeakKeyDictionary[Plan, dict[str, type[LayerProcessor]]] = (
    weakref.WeakKeyDictionary()
)
"""Each plan's generated processor classes by layer name: a flow's runs reuse them, and
with them their signatures and code versions (read once per class). Dropped with the plan."""


@dataclass
class _Pending:
    """A ForEach layer compiled in the current wave, waiting for its join."""

    join: Node
    memo: Record


class FlowRun:
    """One run of a flow: compiles and runs its layers, collects their results."""

    def __init__(
        self,
        flow: str,
        plan: Plan,
        store: Store,
        executor: Executor,
        params: dict[str, Any],
    ) -> None:
        self.flow = flow
        self.plan = plan
        self.store = store
        self.graph = ProcessGraph(store=store, executor=executor, name=flow)
        self.params = params
        self._params_nodes: dict[frozenset[str] | None, Node] = {}
        self.classes: dict[str, type[Layer]] = {lp.name: lp.layer for lp in plan.layers}
        self._processors = _PROCESSORS.setdefault(plan, {})
        self.results: dict[str, LayerResult] = {}
        self.budget: GcReport | None = None  # what the store's byte budget removed after it
        self.computed: list[str] = []
        self.cached: list[str] = []
        self._live: dict[str, Node] = {}
        self._pending: dict[str, _Pending] = {}
        self._frozen: dict[str, Node] = {}
        self._versions: dict[str, str] = {}
        self.session: StoreSession | None = None  # the run's one session, while it runs
        self.decider: Decider | None = None

    # -- the waves ---------------------------------------------------------------------------

    def run(self) -> dict[str, LayerResult]:
        """Run every layer (computing only what is not cached); return their results."""
        todo = list(self.plan.layers)
        session = self.session = self.store.session("flow", self.flow)
        ok = False
        try:
            with session.as_current():  # each wave's engine run is a part of this session
                while todo:
                    compiled = self._compile_wave(todo)
                    todo = [lp for lp in todo if lp.name not in compiled]
                    self._run_wave()
            ok = True
        finally:
            session.close(ok)  # commits what is queued; the run's own error says more
            self.session = None
        self.budget = session.budget
        return self.results

    def _session(self) -> StoreSession:
        """The flow's one session: every wave's keys, memo hits and memo rows go in it."""
        session = self.session
        assert session is not None, "a flow's session exists while it runs"
        return session

    def _compile_wave(self, todo: list[LayerPlan]) -> set[str]:
        compiled: set[str] = set()
        for lp in todo:
            ready = self.results if lp.is_foreach else self.results.keys() | self._live.keys()
            if all(up in ready for up in lp.upstream):
                if lp.is_foreach:
                    self._compile_foreach(lp)
                else:
                    self._compile_layer(lp)
                compiled.add(lp.name)
        assert compiled, "a resolved plan always has a layer ready to compile"
        return compiled

    def _run_wave(self) -> None:
        if not self._live:
            return
        self.graph.run_upto(list(self._live.values()))  # committed when it returns or raises
        report = self.graph.last_run
        for node, status in report.statuses.items():
            if node.is_constant:
                continue
            (self.computed if status.status == "computed" else self.cached).append(str(node.id))
        for name, node in self._live.items():
            st = report.statuses[node]
            assert st.data_version is not None
            pending = self._pending.pop(name, None)
            tasks = None if pending is None else len(node.bindings)
            self.results[name] = LayerResult(name, report.values[node], st.data_version, tasks)
            if pending is not None:
                assert st.key is not None
                self._save_memo(pending, st.key, st.data_version, report.values[node])
        self._live.clear()

    # -- plain layers -------------------------------------------------------------------------

    def _params_node(self, lp: LayerPlan) -> Node:
        """The run context holding the parameters ``lp`` reads: one constant node per set."""
        keyed = layer_reads(lp.layer, self._version(lp)).params
        node = self._params_nodes.get(keyed)
        if node is None:
            name = "params" if keyed is None else f"params {', '.join(sorted(keyed)) or '(none)'}"
            node = self.graph.add_constant_node(
                f"{PARAMS_INPUT}<{name}>" if keyed is not None else PARAMS_INPUT,
                name,
                value=FlowContext(self.params, self.store, keyed, self._session()),
            )
            self._params_nodes[keyed] = node
        return node

    def _compile_layer(self, lp: LayerPlan) -> None:
        inputs: dict[str, Any] = {PARAMS_INPUT: self._params_node(lp)}
        for up in lp.upstream:
            inputs[up] = self._binding(up)
        proc = self._processor(lp)
        self._live[lp.name] = self.graph.add_node(lp.name, proc, inputs, version=self._version(lp))

    def _binding(self, up: str) -> Node:
        """The live node of ``up`` if it runs in this wave, else a constant holding its result."""
        live = self._live.get(up)
        if live is not None:
            return live
        frozen = self._frozen.get(up)
        if frozen is None:
            result = self.results[up]
            frozen = self.graph.add_constant_node(f"<{up}>", f"{up} (finished)", result.value)
            self._frozen[up] = frozen
        return frozen

    def _processor(self, lp: LayerPlan) -> type[LayerProcessor]:
        """``lp``'s generated processor class, made once per plan (so per flow class)."""
        made = self._processors.get(lp.name)
        if made is None:
            made = self._processors[lp.name] = layer_processor(lp, self.classes)
        return made

    def _version(self, lp: LayerPlan) -> str:
        v = self._versions.get(lp.name)
        if v is None:
            v = self._versions[lp.name] = hashing.code_version(lp.layer)
        return v

    # -- ForEach layers -----------------------------------------------------------------------

    def _compile_foreach(self, lp: LayerPlan) -> None:
        results = {up: self.results[up].value for up in lp.upstream}
        foreach = {up: self.results[up].is_foreach for up in lp.upstream}
        grid = expand(lp, results, foreach)
        shared = self._shared_inputs(lp, grid)
        proc = self._processor(lp)
        memo_key, memo = self._memo(lp, proc, grid, shared)
        decided = self._decider().decide([Work(memo_key, memo.node, kind=FOREACH_MEMO)])
        hit = decided.hits.get(memo_key)
        if hit is not None:
            self._memo_hit(lp, memo_key, hit, len(grid))
            return
        version = self._version(lp)
        add = self.graph.add_node
        # Pure bookkeeping (no user code runs): with the cyclic GC on, building N task
        # nodes would trigger collections that rescan the growing graph.
        with gc_paused():
            name = lp.name
            positional = layer_reads(lp.layer, version).index
            tasks_in = grid.tasks(positional)
            each = [(f"{name}[{task.index}]", {TASK_INPUT: task}) for task in tasks_in]
            tasks = self.graph.add_nodes(proc, shared, each, version=version)
            join = add(lp.name, ForEachJoin, {f"t{i}": t for i, t in enumerate(tasks)})
        self._live[lp.name] = join
        self._pending[lp.name] = _Pending(join, memo)

    def _shared_inputs(self, lp: LayerPlan, grid: Grid) -> dict[str, Node]:
        shared: dict[str, Node] = {PARAMS_INPUT: self._params_node(lp)}
        for up in lp.upstream:
            if up in grid.whole:
                continue
            attrs = grid.stripped.get(up)
            if attrs is None:
                shared[up] = self._binding(up)
            else:
                value = without(self.results[up].value, attrs)
                shared[up] = self.graph.add_constant_node(
                    f"{lp.name}<{up}>", f"{up} for {lp.name}", value
                )
        return shared

    def _memo(
        self, lp: LayerPlan, proc: type[LayerProcessor], grid: Grid, shared: dict[str, Node]
    ) -> tuple[str, Record]:
        """The memo key, and the record to save under it (its data version filled in later)."""
        inputs = {name: node.data_version_of_constant() for name, node in shared.items()}
        inputs["grid"] = grid.signature()
        code = hashing.code_version(proc, (getattr(proc, "version", None), self._version(lp)))
        # the declared packages are in every task's key, so in the memo's too
        packages = (*self.store.packages, *proc.packages)
        join_code = with_packages(hashing.code_version(ForEachJoin), packages, f"layer {lp.name}")
        key = hashing.node_key(code, join_code, inputs)
        record = Record(
            key=key,
            data_version="",
            node=f"{self.flow}/{lp.name}[*]",
            processor=FOREACH_MEMO,
            code_version=code,
            init_version=join_code,
            inputs=inputs,
        )
        return key, record

    def _decider(self) -> Decider:
        """The run's decide step for ForEach memo keys (made on the first ForEach)."""
        if self.decider is None:
            self.decider = Decider(self.store, self._session())
        return self.decider

    def _memo_hit(self, lp: LayerPlan, key: str, data_version: str, n: int) -> None:
        value = self.store.load(data_version)
        self._session().hits.append(key)
        self.results[lp.name] = LayerResult(lp.name, value, data_version, n)
        self.cached.extend(f"{lp.name}[{i}]" for i in range(n))
        self.cached.append(lp.name)

    def _save_memo(self, pending: _Pending, join_key: str, data_version: str, value: Any) -> None:
        """Record the join's result under the memo key too: one more index row, same blob.

        The join's own row is committed by now (the wave's engine run committed
        the session's writer when it ended), so its blob is stored: only the row
        is queued, not the join's bytes a second time.
        """
        join = self.store.lookup(join_key)
        writer = self._session().writer
        memo = replace(pending.memo, data_version=data_version)
        if join is MISSING or join.data_version != data_version:
            writer.add(memo, self.store.capture(value))
            return
        writer.add_row(replace(memo, size=join.size, created=time.time()))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Switch the cyclic GC off for a block that allocates much and makes no cycles."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
