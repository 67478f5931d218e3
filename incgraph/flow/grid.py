"""Expanding a ForEach layer into its tasks' inputs, from the manifests of the layers it reads.

Design note
-----------
Pure functions over manifests (see :mod:`incgraph.flow.artifacts`): nothing
here loads a value or touches the store. For every ForEach :class:`Parameter`
the upstream result says how many points it contributes:

* a sharded attribute: one point per element (its *entry*, a data version);
* a ForEach layer under ``index=None``: one point per task (its manifest);
* anything else is passed whole to every task.

A task's inputs then name exactly what it sees, which is what makes its cache
key precise: ``"<Layer>[]"`` maps each fanned-out attribute to the task's own
element entry (changing element 3 changes task 3's key only); ``"<Layer>"``
is either the upstream task's manifest (aligned ForEach) or, shared by all
tasks, the upstream result *without* the fanned-out attributes (see
:func:`without`), so that a task's key does not depend on elements it does
not see; and ``"index"`` is the task's flat position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incgraph.errors import ArtifactNotFoundError, FlowError
from incgraph.flow.artifacts import SHARD
from incgraph.flow.definition import LayerPlan
from incgraph.flow.foreach import Parameter, grid_points
from incgraph.flow.processors import ELEMENTS_SUFFIX, INDEX_INPUT

__all__ = ["Grid", "expand", "without"]

Result = dict[str, Any] | tuple[dict[str, Any], ...]


@dataclass
class Grid:
    """A ForEach layer's tasks, ready to become nodes.

    Attributes
    ----------
    tasks : per task, its inputs that differ between tasks (inline constants).
    stripped : upstream layer -> attributes to leave out of the shared input.
    whole : upstream ForEach layers whose task ``i`` each task gets whole (aligned).
    sizes : the size of each grid dimension (for messages and rendering).
    """

    tasks: list[dict[str, Any]] = field(default_factory=list)
    stripped: dict[str, frozenset[str]] = field(default_factory=dict)
    whole: frozenset[str] = frozenset()
    sizes: list[int] = field(default_factory=list)


def without(result: Result, attributes: frozenset[str]) -> Result:
    """``result`` (a manifest or a join) without ``attributes``.

    Examples
    --------
    >>> without({"foo": 1, "bar": 2}, frozenset({"foo"}))
    {'bar': 2}
    >>> without(({"foo": 1}, {"foo": 2, "x": 3}), frozenset({"foo"}))
    ({}, {'x': 3})
    """
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k not in attributes}
    return tuple({k: v for k, v in m.items() if k not in attributes} for m in result)


# A contribution to one task: (upstream layer, attribute or None for "the whole manifest", entry).
Contribution = tuple[str, str | None, Any]


def expand(lp: LayerPlan, results: Mapping[str, Result], foreach: Mapping[str, bool]) -> Grid:
    """The tasks of ForEach layer ``lp`` given the results of the layers it reads."""
    assert lp.parameters is not None
    dims: list[list[list[Contribution]]] = []
    constant: list[Contribution] = []
    aligned: list[list[Contribution]] | None = None
    aligned_from: Parameter | None = None
    stripped: dict[str, set[str]] = {}
    whole: set[str] = set()
    for p in lp.parameters:
        is_foreach = foreach[p.layer_name]
        points, fixed = _points(lp, p, results[p.layer_name], is_foreach)
        if p.aligned and is_foreach:
            whole.add(p.layer_name)
        elif points is not None or (fixed is not None and is_foreach):
            stripped.setdefault(p.layer_name, set()).add(p.attribute)
        if points is None:
            if fixed is not None:
                constant.append(fixed)
            continue
        if not p.aligned:
            dims.append([[c] for c in points])
        elif aligned is None:
            aligned, aligned_from = [[c] for c in points], p
            dims.append(aligned)
        else:
            _check_same_length(lp, aligned_from, p, len(aligned), len(points))
            for cell, c in zip(aligned, points, strict=True):
                cell.append(c)
    sizes = [len(d) for d in dims]
    tasks = [_task_inputs(i, point, dims, constant) for i, point in enumerate(grid_points(sizes))]
    return Grid(tasks, {k: frozenset(v) for k, v in stripped.items()}, frozenset(whole), sizes)


def _points(
    lp: LayerPlan, p: Parameter, result: Result, is_foreach: bool
) -> tuple[list[Contribution] | None, Contribution | None]:
    """Either the points this parameter contributes, or the one entry every task gets.

    A ``None`` fixed entry with ``None`` points means the attribute is passed
    whole through the shared input (a non-sharded attribute of a plain layer).
    """
    up, attr = p.layer_name, p.attribute
    if is_foreach:
        manifests = result
        assert isinstance(manifests, tuple)
        if p.aligned:
            return [(up, None, m) for m in manifests], None
        manifest = _task(lp, p, manifests)
    else:
        assert isinstance(result, dict)
        manifest = result
    entry = manifest.get(attr)
    if entry is None:
        who = up if not is_foreach else f"{up}[{p.index}]"
        did = ", ".join(sorted(manifest)) or "nothing"
        raise ArtifactNotFoundError(
            f"ForEach layer {lp.name} fans out over {up}.{attr}, but layer {who} never set "
            f"{attr!r} (it set: {did}); set or shard it in {up}.__call__, or fix the Parameter"
        )
    if entry[0] == SHARD:
        return [(up, attr, e) for e in entry[1]], None
    if is_foreach:
        return None, (up, attr, entry)
    return None, None


def _task(lp: LayerPlan, p: Parameter, manifests: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    n = len(manifests)
    assert p.index is not None
    if not -n <= p.index < n:
        raise FlowError(
            f"ForEach layer {lp.name}: Parameter({p.layer_name}.{p.attribute}, index={p.index}) "
            f"reads task {p.index}, but {p.layer_name} ran {n} task(s); use an index below {n} "
            "or index=None to align the tasks"
        )
    return manifests[p.index]


def _check_same_length(
    lp: LayerPlan, first: Parameter | None, p: Parameter, n: int, m: int
) -> None:
    if n != m:
        assert first is not None
        raise FlowError(
            f"ForEach layer {lp.name} aligns (index=None) {first.layer_name}.{first.attribute} "
            f"({n} elements) with {p.layer_name}.{p.attribute} ({m} elements); aligned "
            "parameters must have the same length (use index=0 to cross them instead)"
        )


def _task_inputs(
    index: int,
    point: tuple[int, ...],
    dims: list[list[list[Contribution]]],
    constant: list[Contribution],
) -> dict[str, Any]:
    inputs: dict[str, Any] = {INDEX_INPUT: index}
    for d, coord in enumerate(point):
        for up, attr, entry in dims[d][coord]:
            _put(inputs, up, attr, entry)
    for up, attr, entry in constant:
        _put(inputs, up, attr, entry)
    return inputs


def _put(inputs: dict[str, Any], up: str, attr: str | None, entry: Any) -> None:
    if attr is None:
        inputs[up] = entry
    else:
        key = up + ELEMENTS_SUFFIX
        elements = inputs.get(key)
        if elements is None:
            inputs[key] = {attr: entry}
        else:
            elements[attr] = entry
