"""``Flow``: a named set of layers, run in-process against a store.

Design note
-----------
A ``Flow`` subclass is a registry: ``@MyFlow.register`` records a layer (and
its ``ForEach``) on that subclass only. An instance holds *where* to run -
the store and the default executor - and nothing about any one run:
``flow(**params)`` resolves the layers (`incgraph.flow.definition`),
runs them (`incgraph.flow.runner`), records an execution manifest and
returns the `Execution`.

The plan is resolved on the first call and kept on the class until the next
``register``: a flow script or a grid search calls the same flow many times,
and resolving (signatures, annotations evaluated in the layers' modules) is a
fixed cost of every call otherwise. Registrations and ``ForEach`` objects are
immutable once registered, so a kept plan is the one ``resolve`` would return.

``bool(flow)`` is true in the user's process, so the original library's idiom
``if flow := MyFlow(): flow()`` runs the flow. It is false only when the
script is being re-imported as ``__mp_main__`` by a ``multiprocessing`` or
loky worker (spawn start method), where running the flow again would recurse.
"""

from __future__ import annotations

import functools
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from incgraph import hashing
from incgraph.errors import FlowDefinitionError, HashingError
from incgraph.executors import Executor, check_executor, resolve_executor
from incgraph.flow.definition import Plan, Registration, resolve
from incgraph.flow.execution import Execution, LayerRecord, new_execution_id
from incgraph.flow.foreach import ForEach
from incgraph.flow.layer import Layer
from incgraph.flow.runner import FlowRun
from incgraph.store import Store, memory_store, open_store

if TYPE_CHECKING:
    from incgraph.render import Drawing

__all__ = ["Flow"]

_LOADING_ONLY: ContextVar[bool] = ContextVar("incgraph_flow_loading_only", default=False)


@contextmanager
def loading_only() -> Iterator[None]:
    """While active, ``bool(flow)`` is false: a script's ``if flow := MyFlow(): flow()`` only
    defines the flow. The ``incgraph`` command loads scripts this way, so that looking at a
    script never runs its flow."""
    token = _LOADING_ONLY.set(True)
    try:
        yield
    finally:
        _LOADING_ONLY.reset(token)


L = TypeVar("L", bound=type[Layer])


class Flow:
    """Base class of flows: subclass it, register layers on the subclass, call an instance.

    Parameters
    ----------
    store : str, pathlib.Path, Store or None
        Where artifacts live: a folder, ``":memory:"``, or a store object.
        ``None`` uses ``$INCGRAPH_STORE`` if set, else ``./.incgraph``.
    executor : str or Executor, optional
        Where layers and tasks run: ``"serial"`` (default), ``"threads"``, ...

    Examples
    --------
    The original Flow library's first example:

    >>> from incgraph.flow import Flow, Layer
    >>> class ShardedFlow(Flow): ...
    >>> @ShardedFlow.register
    ... class Shard(Layer):
    ...     def __call__(self) -> None:
    ...         self.shard(foo=[1, 2, 3])
    >>> @ShardedFlow.register
    ... class Process(Layer):
    ...     def __call__(self, shard: Shard) -> None:
    ...         print(list(shard.foo))
    ...         print(shard.foo[1])
    ...         print(shard.foo[1:])
    >>> if flow := ShardedFlow(store=":memory:"):
    ...     execution = flow()
    [1, 2, 3]
    2
    [2, 3]
    """

    _registrations: ClassVar[dict[str, Registration]] = {}
    _plan: ClassVar[Plan | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._registrations = dict(cls._registrations)
        cls._plan = None

    def __init__(
        self,
        *,
        store: str | os.PathLike[str] | Store | None = None,
        executor: Executor | str | None = None,
    ) -> None:
        self._store_location = store
        self._store: Store | None = None
        check_executor(executor)
        self._executor = executor

    # -- registration ----------------------------------------------------------------------------

    @overload
    @classmethod
    def register(cls, layer: L, /) -> L: ...

    @overload
    @classmethod
    def register(
        cls, layer: None = None, /, *, foreach: ForEach | None = None
    ) -> Callable[[L], L]: ...

    @classmethod
    def register(cls, layer: Any = None, /, *, foreach: ForEach | None = None) -> Any:
        """Add a layer to this flow: ``@MyFlow.register`` or ``@MyFlow.register(foreach=...)``.

        Raises
        ------
        FlowDefinitionError
            ``register`` on ``Flow`` itself, a non-Layer class, a bad ``foreach``, or
            another layer of the same name already registered.
        """
        if cls is Flow:
            raise FlowDefinitionError(
                "register layers on a subclass of Flow (class MyFlow(Flow): ...), "
                "not on Flow itself"
            )
        if layer is None:
            return functools.partial(cls.register, foreach=foreach)
        if not (isinstance(layer, type) and issubclass(layer, Layer)):
            raise FlowDefinitionError(
                f"{cls.__name__}.register takes a Layer subclass, got {layer!r}; "
                "write `class MyLayer(Layer): def __call__(self) -> None: ...`"
            )
        if foreach is not None and not isinstance(foreach, ForEach):
            raise FlowDefinitionError(
                f"{cls.__name__}.register(foreach=...) takes a ForEach, got {foreach!r}"
            )
        existing = cls._registrations.get(layer.__name__)
        if existing is not None and existing.layer is not layer:
            raise FlowDefinitionError(
                f"{cls.__name__} already has a layer named {layer.__name__} "
                f"({existing.layer.__module__}.{existing.layer.__qualname__}); layer names "
                "must be unique within a flow"
            )
        cls._registrations[layer.__name__] = Registration(layer, foreach)
        cls._plan = None
        return layer

    @classmethod
    def plan(cls) -> Plan:
        """The layers resolved and ordered; raises ``FlowDefinitionError`` if that is impossible.

        Resolved once and kept until the next `register` on this class.
        """
        plan = cls._plan
        if plan is None:
            plan = cls._plan = resolve(cls.__name__, cls._registrations)
        return plan

    # -- running -------------------------------------------------------------------------------

    def __bool__(self) -> bool:
        if _LOADING_ONLY.get():
            return False
        main = sys.modules.get("__main__")
        return getattr(main, "__name__", "__main__") != "__mp_main__"

    @property
    def store(self) -> Store:
        """The flow's store, opened on first use."""
        if self._store is None:
            loc = self._store_location
            self._store = memory_store() if loc == ":memory:" else open_store(loc)
            if not isinstance(loc, Store):
                # The store is ours: close it when the flow is dropped (executions
                # reading it later reopen it on use).
                weakref.finalize(self, self._store.close)
        return self._store

    def __call__(self, *, executor: Executor | str | None = None, **params: Any) -> Execution:
        """Run every layer, computing only what is not cached; return the execution.

        Parameters
        ----------
        executor : str or Executor, optional
            Overrides the flow's executor for this run.
        **params
            Flow parameters, readable in layers as ``self.params``; each one is part
            of the cache key of the layers that read it, so all must be hashable
            (they are checked before anything runs).

        Raises
        ------
        FlowDefinitionError
            Before anything runs, for an unresolvable annotation, unknown layer or cycle.
        HashingError
            If a parameter cannot be content-hashed.
        NodeError
            If a layer (or a ForEach task) raised; it names the layer and the task index.
        """
        plan = self.plan()
        _check_params(type(self).__name__, params)
        spec = executor if executor is not None else self._executor
        ex = resolve_executor(spec)
        name = type(self).__name__
        run = FlowRun(name, plan, self.store, ex, params)
        try:
            results = run.run()
        finally:
            if not isinstance(spec, Executor):
                ex.shutdown()
        execution = Execution(
            name,
            new_execution_id(),
            params,
            {n: LayerRecord(r.data_version, r.tasks) for n, r in results.items()},
            self.store,
            run.classes,
            computed=run.computed,
            cached=run.cached,
            values={n: r.value for n, r in results.items()},
            graph=run.graph,
            budget=run.budget,
        )
        execution.save(self.store)
        return execution

    def execution(self, execution_id: str | None = None) -> Execution:
        """A past execution of this flow by id (the latest if ``None``), from this flow's store.

        Raises
        ------
        ExecutionNotFoundError
            If the store holds no such execution.
        """
        classes = {name: reg.layer for name, reg in self._registrations.items()}
        return Execution.load(self.store, type(self).__name__, execution_id, classes)

    # -- drawing -------------------------------------------------------------------------------

    def render(self, format: str = "mermaid") -> str:
        """A ``stateDiagram-v2`` (mermaid) or DOT drawing of the flow's layers, forks and joins."""
        from incgraph.flow.diagram import render

        return render(self.plan(), format)

    def draw(self) -> Drawing:
        """A drawing of the flow's layers: a picture in a notebook, mermaid text in a terminal."""
        from incgraph.flow.diagram import diagram, to_drawing

        return to_drawing(diagram(self.plan()))

    def close(self) -> None:
        """Close the store (it reopens if used again)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Flow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} layers: {', '.join(self._registrations) or 'none'}>"


def _check_params(flow: str, params: dict[str, Any]) -> None:
    for name, value in params.items():
        try:
            hashing.data_version(value)
        except HashingError as exc:
            raise HashingError(
                f"{flow}(): flow parameter {name!r}: {exc}; flow parameters enter the cache "
                "keys of the layers that read them, so pass hashable values (or register a "
                "hasher for the type)"
            ) from exc
