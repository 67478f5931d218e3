"""A flow's definition: registered layers, their dependencies, and their order.

Design note
-----------
``@MyFlow.register`` only records the layer class and its ``ForEach`` (so
layers may refer to layers registered after them). `resolve` turns the
registrations into a `Plan` before anything runs:

* each ``__call__`` parameter's annotation names the upstream layer it reads.
  Annotations are evaluated in the layer's module with this flow's registered
  layers in scope, so forward references (``first: "First"``) and layers
  defined inside a function both work; parameter names are free;
* each ``Parameter`` of a ``ForEach`` adds its layer as a dependency too;
* the layers are ordered topologically (registration order breaks ties).

An annotation that names no registered layer, a ``Parameter`` on an unknown
layer, or a cycle raises `FlowDefinitionError` naming
the layer and the parameter, before any layer runs.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

from incgraph.errors import FlowDefinitionError
from incgraph.flow.foreach import ForEach, Parameter
from incgraph.flow.layer import Layer

__all__ = ["LayerPlan", "Plan", "Registration", "resolve"]


@dataclass(frozen=True)
class Registration:
    """A layer as registered on a flow."""

    layer: type[Layer]
    foreach: ForEach | None


@dataclass(frozen=True)
class LayerPlan:
    """A resolved layer: what it reads and how it fans out.

    Attributes
    ----------
    layer : the user's Layer subclass.
    name : its class name, used in node labels (``GridFlow/Process[3]``).
    call_args : ``(__call__ parameter name, upstream layer name)`` pairs.
    upstream : every upstream layer name (call arguments, then ForEach parameters).
    parameters : the ForEach parameters with their layer resolved to a name.
    """

    layer: type[Layer]
    name: str
    call_args: tuple[tuple[str, str], ...]
    upstream: tuple[str, ...]
    parameters: tuple[Parameter, ...] | None

    @property
    def is_foreach(self) -> bool:
        """Whether the layer runs one task per grid point."""
        return self.parameters is not None


@dataclass(frozen=True)
class Plan:
    """A flow's layers in topological order."""

    flow: str
    layers: tuple[LayerPlan, ...]

    def __getitem__(self, name: str) -> LayerPlan:
        for lp in self.layers:
            if lp.name == name:
                return lp
        raise KeyError(name)

    def downstream(self, name: str) -> list[LayerPlan]:
        """The layers that read ``name``."""
        return [lp for lp in self.layers if name in lp.upstream]


def resolve(flow: str, registrations: dict[str, Registration]) -> Plan:
    """Resolve dependencies and order the layers; raise ``FlowDefinitionError`` if impossible."""
    classes = {name: reg.layer for name, reg in registrations.items()}
    plans = {name: _plan_layer(flow, name, reg, classes) for name, reg in registrations.items()}
    for lp in plans.values():
        _check_indices(flow, lp, plans)
    return Plan(flow, tuple(plans[n] for n in _topological(flow, plans)))


def _plan_layer(
    flow: str, name: str, reg: Registration, classes: dict[str, type[Layer]]
) -> LayerPlan:
    call_args = tuple(_call_args(flow, reg.layer, classes))
    upstream = [up for _, up in call_args]
    parameters = None
    if reg.foreach is not None:
        parameters = tuple(
            _resolve_parameter(flow, name, p, classes) for p in reg.foreach.parameters
        )
        upstream += [p.layer_name for p in parameters]
    return LayerPlan(reg.layer, name, call_args, tuple(dict.fromkeys(upstream)), parameters)


def _call_args(
    flow: str, layer: type[Layer], classes: dict[str, type[Layer]]
) -> list[tuple[str, str]]:
    name = layer.__name__
    call = next((k.__dict__["__call__"] for k in layer.__mro__ if "__call__" in k.__dict__), None)
    if call is None:
        raise FlowDefinitionError(
            f"layer {name} of {flow} has no __call__ method; define "
            "`def __call__(self, upstream: SomeLayer) -> None:`"
        )
    params = list(inspect.signature(call).parameters.values())[1:]
    out = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise FlowDefinitionError(
                f"layer {name} of {flow}: __call__ takes *{p.name}; list each upstream layer "
                "as its own annotated parameter instead"
            )
        up = _annotation_layer(flow, layer, p, classes)
        out.append((p.name, up))
    return out


def _annotation_layer(
    flow: str, layer: type[Layer], p: inspect.Parameter, classes: dict[str, type[Layer]]
) -> str:
    where = f"layer {layer.__name__} of {flow}: __call__ parameter {p.name!r}"
    ann = p.annotation
    if ann is inspect.Parameter.empty:
        raise FlowDefinitionError(
            f"{where} has no annotation; annotate it with the upstream layer it reads, "
            f"e.g. `{p.name}: SomeLayer`"
        )
    for _ in range(3):  # "'First'" under `from __future__ import annotations` is two levels
        if not isinstance(ann, str):
            break
        ann = _evaluate(where, layer, ann, classes)
    ann = _unwrap(ann)
    if isinstance(ann, type) and issubclass(ann, Layer):
        found = classes.get(ann.__name__)
        if found is ann:
            return ann.__name__
    registered = ", ".join(sorted(classes)) or "none"
    raise FlowDefinitionError(
        f"{where} is annotated {_show(ann)}, which is not a layer registered on {flow} "
        f"(registered: {registered}); register it with @{flow}.register or fix the annotation"
    )


def _evaluate(where: str, layer: type[Layer], text: str, classes: dict[str, type[Layer]]) -> Any:
    module = sys.modules.get(layer.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    namespace.update(classes)
    try:
        return eval(text, namespace)
    except Exception as exc:
        registered = ", ".join(sorted(classes)) or "none"
        raise FlowDefinitionError(
            f"{where}: cannot resolve the annotation {text!r} ({type(exc).__name__}: {exc}); "
            f"layers registered on this flow: {registered}"
        ) from exc


def _unwrap(ann: Any) -> Any:
    if typing.get_origin(ann) is typing.Annotated:
        return typing.get_args(ann)[0]
    return ann


def _show(ann: Any) -> str:
    return ann.__qualname__ if isinstance(ann, type) else repr(ann)


def _resolve_parameter(
    flow: str, name: str, p: Parameter, classes: dict[str, type[Layer]]
) -> Parameter:
    target = classes.get(p.layer_name)
    if target is None or (not isinstance(p.layer, str) and target is not p.layer):
        registered = ", ".join(sorted(classes)) or "none"
        raise FlowDefinitionError(
            f"layer {name} of {flow}: ForEach Parameter(layer={p.layer_name}, "
            f"attribute={p.attribute!r}) names a layer that is not registered on {flow} "
            f"(registered: {registered}); register it or fix the Parameter"
        )
    return Parameter(layer=p.layer_name, attribute=p.attribute, index=p.index)


def _check_indices(flow: str, lp: LayerPlan, plans: dict[str, LayerPlan]) -> None:
    for p in lp.parameters or ():
        up = plans[p.layer_name]
        if p.index not in (0, None) and not up.is_foreach:
            raise FlowDefinitionError(
                f"layer {lp.name} of {flow}: Parameter({p.layer_name}.{p.attribute}, "
                f"index={p.index}) reads task {p.index}, but {p.layer_name} is not a ForEach "
                "layer; use index=0 (cross) or index=None (align)"
            )
    aligned = {
        p.layer_name for p in lp.parameters or () if p.aligned and plans[p.layer_name].is_foreach
    }
    for p in lp.parameters or ():
        if p.layer_name in aligned and not p.aligned:
            raise FlowDefinitionError(
                f"layer {lp.name} of {flow}: ForEach layer {p.layer_name} is both aligned "
                "(index=None) and read by task index; use index=None for all its parameters"
            )


def _topological(flow: str, plans: dict[str, LayerPlan]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise FlowDefinitionError(
                f"{flow} has a cycle: {' -> '.join(cycle)}; a layer cannot read itself, "
                "directly or through other layers"
            )
        state[name] = 1
        for up in plans[name].upstream:
            visit(up, [*path, name])
        state[name] = 2
        order.append(name)

    for name in plans:
        visit(name, [])
    return order
