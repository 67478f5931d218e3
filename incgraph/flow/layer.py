"""``Layer``: one step of a flow, and the views downstream layers read it through.

Design note
-----------
A layer instance exists in one of two roles, kept in one private attribute:

* **running** - the flow calls ``__call__`` on a fresh instance. Every public
  attribute it sets (``self.model = ...``) is an artifact; ``self.shard(...)``
  adds sharded ones. Names starting with ``_`` are scratch space, never
  stored. ``self.index`` and ``self.params`` are read-only.
* **view** - downstream layers (and `Execution`)
  receive an instance of the *upstream* layer's class bound to its manifest.
  Attribute reads resolve lazily: a plain artifact is loaded on first read
  (then kept on the view), a shard or a ForEach join is an
  `Accessor`, a name that was never set raises
  `ArtifactNotFoundError` naming both layers. Views
  are read-only.

Because a view is an instance of the user's own class, methods defined on the
upstream layer work on what it produced (``upstream.summary()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from incgraph.errors import ArtifactNotFoundError, FlowDefinitionError, FlowError
from incgraph.flow.accessor import Accessor, Loader, resolve
from incgraph.flow.artifacts import INLINE

__all__ = ["FlowParams", "Layer", "bind_view", "run_layer"]

RESERVED: Final = frozenset({"index", "params", "shard"})
_STATE: Final = "_incgraph_state"


class FlowParams(Mapping[str, Any]):
    """The keyword arguments of ``flow(**params)``, read-only, as ``self.params`` in a layer.

    Both ``self.params["lr"]`` and ``self.params.lr`` work. A layer's cache key
    holds the parameters its code reads (see `incgraph.flow.reads`), so
    changing one recomputes the layers that read it and what depends on them.

    Examples
    --------
    >>> p = FlowParams({"lr": 0.1})
    >>> p.lr, p["lr"], dict(p)
    (0.1, 0.1, {'lr': 0.1})
    >>> p.epochs
    Traceback (most recent call last):
    ...
    AttributeError: flow parameter 'epochs' was not passed; flow(...) got: lr
    """

    __slots__ = ("_read", "_values")

    def __init__(self, values: Mapping[str, Any], read: set[str] | None = None) -> None:
        self._values = dict(values)
        self._read = read

    def __getitem__(self, name: str) -> Any:
        if self._read is not None:
            self._read.add(name)
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(self._missing(name)) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._read is not None:
            self._read.add(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(self._missing(name)) from None

    def _missing(self, name: str) -> str:
        got = ", ".join(sorted(self._values)) or "no parameters"
        return f"flow parameter {name!r} was not passed; flow(...) got: {got}"

    def __iter__(self) -> Iterator[str]:
        if self._read is not None:
            self._read.add("*")
        return iter(self._values)

    def __len__(self) -> int:
        if self._read is not None:
            self._read.add("*")
        return len(self._values)

    def __repr__(self) -> str:
        if self._read is not None:
            self._read.add("*")
        return f"FlowParams({self._values!r})"


class _Running:
    """State of a layer whose ``__call__`` the flow is running.

    (Plain slotted classes, here and in `_View`: a ForEach makes one of
    each per task.)
    """

    __slots__ = ("index", "index_read", "params", "shards", "where")

    def __init__(self, where: str, index: int, params: FlowParams) -> None:
        self.where = where
        self.index = index
        self.index_read = False
        self.params = params
        self.shards: dict[str, list[Any]] = {}


class _View:
    """State of an upstream layer as a downstream reader sees it.

    ``base`` is a manifest (a dict) or a ForEach join (a sequence of manifests);
    ``overrides`` are a ForEach task's own elements, which win over ``base``.
    """

    __slots__ = ("base", "index", "load", "name", "overrides", "reader")

    def __init__(
        self,
        name: str,
        reader: str,
        base: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        overrides: dict[str, Any],
        load: Loader,
        index: int,
    ) -> None:
        self.name = name
        self.reader = reader
        self.base = base
        self.overrides = overrides
        self.load = load
        self.index = index


class Layer:
    """Base class of a flow's steps: subclass it, define ``__call__``, register it on a flow.

    ``__call__``'s parameters are annotated with the upstream layers it reads
    (the parameter names are free; forward references as strings work). Every
    public attribute it sets is an artifact stored in the flow's store;
    ``self.shard(name=iterable)`` stores each element separately. A class
    attribute ``packages = ("scikit-learn",)`` puts those packages' installed
    versions into the layer's cache key, as ``Processor.packages`` does.

    Examples
    --------
    >>> from incgraph.flow import Flow, Layer
    >>> class Hello(Flow): ...
    >>> @Hello.register
    ... class Greet(Layer):
    ...     def __call__(self) -> None:
    ...         self.text = "hello"
    >>> @Hello.register
    ... class Shout(Layer):
    ...     def __call__(self, greet: Greet) -> None:
    ...         print(greet.text.upper())
    >>> if flow := Hello(store=":memory:"):
    ...     _ = flow()
    HELLO
    """

    # Subclasses define it; declared here (without a value) for type checkers only.
    __call__: Callable[..., None]

    packages: tuple[str, ...] = ()
    """Installed packages whose versions enter the layer's cache key (``Processor.packages``)."""

    def __init__(self) -> None:
        """Layers take no constructor arguments: inputs come through ``__call__``."""

    # -- what a running layer can use ----------------------------------------------------

    @property
    def index(self) -> int:
        """This task's flat position in its ForEach grid (``0`` for a layer without ForEach)."""
        state = self.__dict__.get(_STATE)
        if state is None:
            return 0
        if type(state) is _Running:
            state.index_read = True
        return state.index

    @property
    def params(self) -> FlowParams:
        """The flow's parameters: ``flow(lr=0.1)`` -> ``self.params.lr``."""
        state = self.__dict__.get(_STATE)
        if not isinstance(state, _Running):
            raise FlowError(
                f"{type(self).__name__}.params is only available while the flow runs the layer"
            )
        return state.params

    def shard(self, **named: Iterable[Any]) -> None:
        """Store each element of each iterable separately; downstream reads get an ``Accessor``.

        Examples
        --------
        ``self.shard(foo=[1, 2, 3])`` then, downstream, ``len(shard.foo) == 3``
        and ``shard.foo[1] == 2`` load one element each.
        """
        state = self.__dict__.get(_STATE)
        if not isinstance(state, _Running):
            raise FlowError(
                f"{type(self).__name__}.shard() can only be called while the layer runs"
            )
        for name, values in named.items():
            _check_artifact_name(state.where, name)
            try:
                state.shards[name] = list(values)
            except TypeError:
                raise FlowDefinitionError(
                    f"layer {state.where}: shard({name}=...) needs an iterable, got "
                    f"{type(values).__name__}; pass a list (or set self.{name} to store it whole)"
                ) from None

    # -- attributes ---------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__.get(_STATE)
        if state is not None:
            if type(state) is _View:
                raise FlowError(
                    f"layer {state.reader} tried to set {state.name}.{name}; upstream layers "
                    f"are read-only, set self.{name} in {state.reader} instead"
                )
            if name in RESERVED:
                _check_artifact_name(state.where, name)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        state = self.__dict__.get(_STATE)
        if isinstance(state, _View):
            value = _read(state, name)
            object.__setattr__(self, name, value)
            return value
        if isinstance(state, _Running) and name in state.shards:
            return state.shards[name]
        raise AttributeError(f"layer {type(self).__name__} has no attribute {name!r}")

    def __dir__(self) -> Iterable[str]:
        state = self.__dict__.get(_STATE)
        names = set(super().__dir__())
        if isinstance(state, _View):
            names |= set(_artifact_names(state))
        return sorted(names)

    def __repr__(self) -> str:
        state = self.__dict__.get(_STATE)
        if isinstance(state, _View):
            return f"<{state.name} artifacts: {', '.join(_artifact_names(state)) or 'none'}>"
        return f"<layer {type(self).__name__}>"


def _check_artifact_name(where: str, name: str) -> None:
    if name in RESERVED:
        raise FlowError(
            f"layer {where}: {name!r} is reserved on layers (self.index, self.params, "
            "self.shard); store the artifact under another name"
        )


def _artifact_names(state: _View) -> list[str]:
    base = state.base
    if isinstance(base, Mapping):
        names = set(base)
    else:
        names = set(base[0]) if base else set()
    return sorted(names | set(state.overrides))


def _read(state: _View, name: str) -> Any:
    entry = state.overrides.get(name)
    if entry is not None:
        if entry[0] == INLINE:  # the common case of a task's element: no name to format
            return entry[1]
        return resolve(entry, state.load, f"{state.name}.{name}")
    where = f"{state.name}.{name}"
    base = state.base
    if isinstance(base, Mapping):
        entry = base.get(name)
        if entry is None:
            raise _not_found(state, name, sorted(base))
        return resolve(entry, state.load, where)
    entries = []
    for i, manifest in enumerate(base):
        entry = manifest.get(name)
        if entry is None:
            raise _not_found(state, name, sorted(manifest), task=i)
        entries.append(entry)
    return Accessor(entries, state.load, where)


def _not_found(state: _View, name: str, names: list[str], task: int | None = None) -> Exception:
    who = state.name if task is None else f"{state.name}[{task}]"
    did = ", ".join(names) or "nothing"
    return ArtifactNotFoundError(
        f"layer {state.reader} read {name!r} from layer {who}, but {who} never set it "
        f"(it set: {did}); set self.{name} (or shard it) in {state.name.split('[')[0]}.__call__, "
        "or read one of those"
    )


def run_layer(
    layer_cls: type[Layer],
    where: str,
    index: int,
    params: FlowParams,
    views: dict[str, Layer],
    *,
    index_keyed: bool = True,
    params_keyed: frozenset[str] | None = None,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Run ``__call__`` of a fresh ``layer_cls`` on ``views``; return what it left.

    That is its public attributes (name -> value) and its shards (name -> elements).
    ``where`` names the layer (and task) in messages, e.g. ``"Process[3]"``.
    ``index_keyed`` and ``params_keyed`` say what the run's cache key holds (the
    position; the parameters, ``None`` for all): reading anything else fails
    with a `FlowError` (see `incgraph.flow.reads`).
    """
    inst = layer_cls.__new__(layer_cls)
    if params_keyed is not None:
        params = _recording(params)
    state = _Running(where, index, params)
    object.__setattr__(inst, _STATE, state)
    if layer_cls.__init__ is not Layer.__init__:  # Layer's own __init__ does nothing
        layer_cls.__init__(inst)
    inst(**views)
    if not index_keyed and state.index_read:
        raise _unseen_read(where, "self.index", "its position")
    if params_keyed is not None:
        read = params._read
        if read and not read <= params_keyed:
            unseen = sorted(read - params_keyed)
            what = "self.params" if "*" in unseen else f"flow parameter {unseen[0]!r}"
            raise _unseen_read(where, what, "that parameter")
    values = {k: v for k, v in inst.__dict__.items() if not k.startswith("_")}
    return values, state.shards


def _recording(params: FlowParams) -> FlowParams:
    """The same parameters, noting in ``_read`` each one read (``"*"``: all of them)."""
    recording = FlowParams.__new__(FlowParams)  # shares the values: no copy per task
    recording._values = params._values
    recording._read = set()
    return recording


def _unseen_read(where: str, what: str, left_out: str) -> FlowError:
    return FlowError(
        f"layer {where} read {what} in a way incgraph could not see in its code, so its "
        f"cache key leaves out {left_out} and the result is not stored; read {what} "
        "directly as an attribute of self in the layer's own methods (self.index, "
        "self.params.name, self.params['name']) so that its key includes it"
    )


def bind_view(
    layer_cls: type[Layer],
    *,
    reader: str,
    base: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    load: Loader,
    overrides: dict[str, Any] | None = None,
    index: int = 0,
    name: str | None = None,
) -> Layer:
    """An instance of ``layer_cls`` that reads ``base`` (a manifest or a join) lazily.

    ``name`` is how messages refer to it (default: the class name; ``"First[2]"``
    for one task of a ForEach layer).
    """
    inst = layer_cls.__new__(layer_cls)
    attrs = inst.__dict__
    attrs[_STATE] = _View(name or layer_cls.__name__, reader, base, overrides or {}, load, index)
    if overrides:
        # A task's inline elements cost nothing to read: set them now, so reading one
        # is a plain attribute access (what __getattr__ would leave after a first read).
        for attr, entry in overrides.items():
            if entry[0] == INLINE:
                attrs[attr] = entry[1]
    return inst
