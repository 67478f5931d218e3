"""``Execution``: one run of a flow, whose artifacts can be read now or in a later process.

Design note
-----------
``flow()`` returns an `Execution`. It knows, per layer, the data
version of the layer's result (a manifest, or a ForEach's tuple of task
manifests) and reads artifacts lazily through the same views layers use, so
``execution[Train].score`` is an ``Accessor`` over the tasks' scores.

Every execution is also recorded in the store as a small *execution
manifest* (flow name, id, params, per-layer data versions, counts), stored
like any result: a blob plus an index record whose key is
``combine("FlowExecution", <flow name>, <id>)`` and whose node label is
``<flow name>/execution``. Hence ``MyFlow().execution(id)`` finds it by key in
a later process, and ``MyFlow().execution()`` finds the latest one through
``latest_for_node``. Ids are ``<UTC time>-<6 hex digits>``: unique, sortable
and short enough to type.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from incgraph import hashing
from incgraph.errors import ExecutionNotFoundError, FlowError, NotCachedError
from incgraph.flow.layer import Layer, bind_view
from incgraph.sentinels import MISSING
from incgraph.store import Store
from incgraph.store.garbage import GcReport
from incgraph.store.protocols import Record

__all__ = ["Execution", "LayerRecord", "execution_key", "new_execution_id"]

FORMAT = 1


def new_execution_id() -> str:
    """A fresh execution id, e.g. ``20250101T120000-3fa2c1``."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def execution_key(flow: str, execution_id: str) -> str:
    """The index key under which an execution manifest is stored."""
    return hashing.combine("FlowExecution", flow, execution_id)


@dataclass(frozen=True)
class LayerRecord:
    """Where one layer's result is: its data version, and its task count for a ForEach."""

    data_version: str
    tasks: int | None = None


class Execution:
    """The artifacts and outcome of one run of a flow.

    Read a layer's artifacts with ``execution[Layer]`` or ``execution.layer(Layer)``
    (a ForEach layer's attributes are ``Accessor`` objects over its tasks;
    ``execution.layer(Layer, index=i)`` reads task ``i``). ``computed`` and
    ``cached`` list the nodes of this run by label; ``budget`` is what the
    store's byte budget removed after the run (a ``GcReport``, or None).

    Examples
    --------
    >>> from incgraph.flow import Flow, Layer
    >>> class Tiny(Flow): ...
    >>> @Tiny.register
    ... class Make(Layer):
    ...     def __call__(self) -> None:
    ...         self.answer = 42
    >>> flow = Tiny(store=":memory:")
    >>> execution = flow()
    >>> execution[Make].answer
    42
    >>> flow.execution(execution.id)[Make].answer
    42
    """

    def __init__(
        self,
        flow: str,
        execution_id: str,
        params: Mapping[str, Any],
        layers: Mapping[str, LayerRecord],
        store: Store,
        classes: Mapping[str, type[Layer]],
        *,
        computed: list[str] | None = None,
        cached: list[str] | None = None,
        counts: Mapping[str, int] | None = None,
        values: Mapping[str, Any] | None = None,
        graph: Any = None,
        budget: GcReport | None = None,
    ) -> None:
        self.flow = flow
        self.id = execution_id
        self.params = dict(params)
        self.layers = dict(layers)
        self.computed = list(computed or [])
        self.cached = list(cached or [])
        self.counts = dict(counts or {"computed": len(self.computed), "cached": len(self.cached)})
        self.graph = graph
        self.budget = budget
        self._store = store
        self._classes = dict(classes)
        self._values: dict[str, Any] = dict(values or {})

    # -- reading artifacts ---------------------------------------------------------------------

    def layer(self, layer: type[Layer] | str, index: int | None = None) -> Layer:
        """A read-only view of a layer's artifacts (of task ``index`` of a ForEach layer).

        Raises
        ------
        KeyError
            If the flow has no such layer.
        IndexError
            If ``index`` is out of range for the ForEach layer.
        NotCachedError
            If the store no longer holds the layer's result (a past execution
            whose results were collected or invalidated).
        """
        name = layer if isinstance(layer, str) else layer.__name__
        record = self.layers.get(name)
        if record is None:
            known = ", ".join(self.layers) or "none"
            raise KeyError(
                f"execution {self.id} of {self.flow} has no layer {name!r} (layers: {known})"
            )
        value = self._value(name, record)
        cls = self._classes.get(name, Layer)
        if index is None:
            return bind_view(
                cls, reader=f"execution {self.id}", base=value, load=self._store.load, name=name
            )
        if record.tasks is None:
            raise FlowError(f"layer {name} is not a ForEach layer; read it without index=")
        n = len(value)
        if not -n <= index < n:
            raise IndexError(f"layer {name} ran {n} task(s); index {index} is out of range")
        i = index % n
        return bind_view(
            cls,
            reader=f"execution {self.id}",
            base=value[i],
            load=self._store.load,
            name=f"{name}[{i}]",
        )

    __getitem__ = layer

    def _value(self, name: str, record: LayerRecord) -> Any:
        value = self._values.get(name, MISSING)
        if value is MISSING:
            try:
                value = self._values[name] = self._store.load(record.data_version)
            except KeyError:
                raise NotCachedError(
                    f"execution {self.id} of {self.flow}: the store no longer holds layer "
                    f"{name}'s result (`incgraph gc`, the byte budget or `incgraph invalidate` "
                    f"removed it); run the flow again with its parameters {self.params!r}"
                ) from None
        return value

    def __contains__(self, layer: object) -> bool:
        name = layer if isinstance(layer, str) else getattr(layer, "__name__", None)
        return name in self.layers

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def summary(self) -> str:
        """One line: ``GridFlow 20250101T120000-3fa2c1: 0 computed, 13 cached``."""
        counts = self.counts
        return f"{self.flow} {self.id}: {counts['computed']} computed, {counts['cached']} cached"

    def __repr__(self) -> str:
        return f"<Execution {self.summary()}>"

    def _rows(self) -> list[list[Any]]:
        return [[name, r.tasks or "-", r.data_version[:12]] for name, r in self.layers.items()]

    def __str__(self) -> str:
        from incgraph.display import text_table

        return text_table(("LAYER", "TASKS", "RESULT"), self._rows(), self.summary())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the summary, then one row per layer."""
        p.text(str(self))

    def _repr_html_(self) -> str:
        """A notebook's view: the summary, then one row per layer."""
        from incgraph.display import html_table

        return html_table(("LAYER", "TASKS", "RESULT"), self._rows(), caption=self.summary())

    # -- persistence ---------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The execution manifest stored in the store (see the module notes)."""
        return {
            "format": FORMAT,
            "flow": self.flow,
            "id": self.id,
            "params": dict(self.params),
            "created": time.time(),
            "layers": {
                n: {"data_version": r.data_version, "tasks": r.tasks}
                for n, r in self.layers.items()
            },
            "counts": dict(self.counts),
        }

    def save(self, store: Store) -> Record:
        """Record this execution's manifest in ``store``."""
        manifest = self.manifest()
        record = Record(
            key=execution_key(self.flow, self.id),
            data_version=hashing.data_version(manifest),
            node=f"{self.flow}/execution",
            processor="incgraph.flow.Execution",
            code_version=hashing.combine("FlowExecutionFormat", str(FORMAT)),
            init_version=hashing.data_version(self.params),
            inputs={n: r.data_version for n, r in self.layers.items()},
        )
        return store.save(record, manifest)

    @classmethod
    def load(
        cls,
        store: Store,
        flow: str,
        execution_id: str | None,
        classes: Mapping[str, type[Layer]],
    ) -> Execution:
        """The execution ``execution_id`` of ``flow`` (the latest one if ``None``)."""
        if execution_id is None:
            record = store.latest_for_node(f"{flow}/execution")
        else:
            record = store.lookup(execution_key(flow, execution_id))
        if record is MISSING:
            what = "no execution" if execution_id is None else f"no execution {execution_id!r}"
            raise ExecutionNotFoundError(
                f"{what} of {flow} is recorded in the store {store!r}; run the flow first, or open "
                "the store it ran with (MyFlow(store=...))"
            )
        m = store.load(record)
        layers = {n: LayerRecord(d["data_version"], d["tasks"]) for n, d in m["layers"].items()}
        return cls(m["flow"], m["id"], m["params"], layers, store, classes, counts=m["counts"])
