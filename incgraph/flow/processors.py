"""The processors a flow compiles to, and the run context they receive as an input.

Design note
-----------
Every layer becomes an ordinary `Processor`
node of a `ProcessGraph`, so flows share the engine,
the store, the executors and ``explain`` with every other front-end:

* `LayerProcessor` - one generated subclass per layer, named after it
  (messages read ``node GridFlow/Process[3] (Process) failed: ...``). Its node
  is added with ``version=code_version(<the user's Layer class>)``, so editing
  the layer's ``__call__`` (or a helper it calls) invalidates its results; its
  readers recompute only if its artifacts changed. The same class runs a plain
  layer and each task of a ForEach.
* `ForEachJoin` - gathers a ForEach layer's task manifests, in task
  order, into the `Join` downstream layers read.

The run context (`FlowContext`) travels as the ``params`` input of
every layer node: it carries the flow parameters and the store that artifact
blobs are written to and read from. Its data version is that of the
parameters the layer's code reads (``keyed``, see `incgraph.flow.reads`;
all of them when that cannot be told), so a layer's key changes only with
the parameters it reads, and two runs with equal parameters share their keys.
Pickled (for an executor in another process) it carries the store's folder
and reopens it there.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from incgraph import hashing
from incgraph.core.processor import Processor
from incgraph.errors import FlowError
from incgraph.flow.artifacts import ArtifactWriter, Join, Manifest, Task, inline_manifest
from incgraph.flow.definition import LayerPlan
from incgraph.flow.layer import FlowParams, Layer, bind_view, run_layer
from incgraph.sentinels import MISSING

if TYPE_CHECKING:
    from incgraph.store import Store
    from incgraph.store.session import StoreSession

__all__ = [
    "PARAMS_INPUT",
    "TASK_INPUT",
    "FlowContext",
    "ForEachJoin",
    "LayerProcessor",
    "layer_processor",
]

PARAMS_INPUT = "params"
TASK_INPUT = "task"
"""Input of a ForEach task holding its own index and elements (a ``Task``)."""


class FlowContext:
    """What a layer needs from the run besides its inputs: parameters and the store.

    Parameters
    ----------
    params : mapping
        The keyword arguments of ``flow(**params)``.
    store : Store
        The flow's store.
    keyed : frozenset of str, optional
        The parameters in the cache key of the layers given this context
        (their values, or their absence); ``None`` (default): all of them.
    session : StoreSession, optional
        The flow run's session: artifacts are queued in its writer, and reads
        of artifacts just set are served from it. Without one (a layer run in
        another process) artifacts are written to the store at once.
    """

    __slots__ = ("keyed", "params", "session", "store")
    # read-only (params cannot change); a copy would reopen the store instead of the run's
    _incgraph_share_as_is = True

    def __init__(
        self,
        params: Mapping[str, Any],
        store: Store,
        keyed: frozenset[str] | None = None,
        session: StoreSession | None = None,
    ) -> None:
        self.params = FlowParams(params)
        self.store = store
        self.keyed = keyed
        self.session = session

    def __incgraph_hash__(self) -> object:
        if self.keyed is None:
            return dict(self.params)  # in the caller's order: a layer may iterate it
        values = self.params._values
        return ("FlowParamsRead", {k: values[k] for k in sorted(self.keyed) if k in values})

    def __reduce__(self) -> tuple[Any, ...]:
        path = self.store.location  # a folder, or a URL with its blobs
        if path is None:
            raise FlowError(
                "a flow with an in-memory store cannot run layers in other processes; "
                "give the flow a store folder (MyFlow(store='path')) or use executor='threads'"
            )
        return (_reopened_context, (dict(self.params), str(path), self.keyed))

    def load(self, data_version: str) -> Any:
        """Load a blob (an artifact or a shard element), from the run's writer if it has it."""
        if self.session is not None:
            value = self.session.writer.load(data_version)
            if value is not MISSING:
                return value
        return self.store.load(data_version)

    def put(self, data_version: str, value: Any) -> None:
        """Store an artifact blob (queued in the run's writer, written before its layer's row)."""
        if self.session is not None:
            self.session.writer.put_blob(data_version, value)
        else:
            self.store.blobs.put(data_version, value)


_OPENED: dict[str, Any] = {}
"""Stores reopened in this (worker) process, by folder: one per folder, not one per job."""


def _reopened_context(
    params: dict[str, Any], path: str, keyed: frozenset[str] | None
) -> FlowContext:
    store = _OPENED.get(path)
    if store is None:
        from incgraph.store import open_store

        store = _OPENED[path] = open_store(path)
    return FlowContext(params, store, keyed)


class LayerProcessor(Processor):
    """Runs one layer (or one ForEach task): builds its upstream views, calls it, stores artifacts.

    Generated per layer by `layer_processor`; ``layer_plan`` says what the
    layer reads and ``classes`` maps layer names to the user's classes.
    """

    __signature__ = inspect.Signature()  # no constructor arguments; keeps add_node cheap
    layer_plan: ClassVar[LayerPlan]
    classes: ClassVar[dict[str, type[Layer]]]

    def process(self, **inputs: Any) -> Manifest:
        """Run the layer on its inputs; return its manifest (see `incgraph.flow.artifacts`)."""
        lp = self.layer_plan
        ctx: FlowContext = inputs[PARAMS_INPUT]
        task: Task | None = inputs.get(TASK_INPUT)
        if task is None:
            index, where, elements, whole = 0, lp.name, {}, {}
        else:
            index, where, elements, whole = (
                task.index,
                f"{lp.name}[{task.index}]",
                task.elements,
                task.whole,
            )
        load, classes = ctx.load, self.classes
        views = {}
        for arg, up in lp.call_args:
            base = whole[up] if up in whole else inputs[up]
            views[arg] = bind_view(
                classes[up], reader=where, base=base, load=load, overrides=elements.get(up)
            )
        values, shards = run_layer(
            lp.layer,
            where,
            index,
            ctx.params,
            views,
            index_keyed=task is None or task.positional,
            params_keyed=ctx.keyed,
        )
        if not shards:
            small = inline_manifest(values)  # all small scalars: no blob, no writer
            if small is not None:
                return small
        writer = ArtifactWriter(ctx.put, lambda: self._identity(inputs), where)
        return writer.manifest(values, shards)

    def _identity(self, inputs: dict[str, Any]) -> str:
        parts = sorted(f"{k}={hashing.data_version(v)}" for k, v in inputs.items())
        return hashing.combine(
            "FlowArtifactSource", hashing.code_version(self.layer_plan.layer), *parts
        )


def layer_processor(lp: LayerPlan, classes: dict[str, type[Layer]]) -> type[LayerProcessor]:
    """The processor class of one layer, named after it."""
    namespace = {
        "layer_plan": lp,
        "classes": classes,
        "packages": getattr(lp.layer, "packages", ()),  # checked by add_node
        "__module__": __name__,
        "__qualname__": f"LayerProcessor[{lp.name}]",
        "__doc__": f"Runs layer {lp.name} ({lp.layer.__module__}.{lp.layer.__qualname__}).",
    }
    return type(lp.name, (LayerProcessor,), namespace)


class ForEachJoin(Processor):
    """Gathers a ForEach layer's task manifests (inputs ``t0``, ``t1``, ...) in task order."""

    __signature__ = inspect.Signature()

    def process(self, **tasks: Manifest) -> Join:
        """The task manifests, ordered by task index."""
        return Join([tasks[f"t{i}"] for i in range(len(tasks))])
