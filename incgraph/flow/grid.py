"""Expanding a ForEach layer into its tasks' inputs, from the manifests of the layers it reads.

Design note
-----------
Pure functions over manifests (see `incgraph.flow.artifacts`): nothing
here loads a value or touches the store. For every ForEach `Parameter`
the upstream result says how many points it contributes:

* a sharded attribute: one point per element (its *entry*, a data version);
* a ForEach layer under ``index=None``: one point per task (its manifest);
* anything else is passed whole to every task.

A task's inputs then name exactly what it sees, which is what makes its cache
key precise. Its own input ``"task"`` (a `Task`)
holds its flat index (in its key only when the layer reads ``self.index``, see
`incgraph.flow.reads`: otherwise inserting a value into a grid recomputes
only the new cells), its element entry of each fanned-out attribute
(changing element 3 changes task 3's key only) and, for an aligned ForEach,
the upstream task's manifest. Each other upstream layer is one input shared by
all tasks: its result *without* the fanned-out attributes (see
`without`), so a task's key does not depend on elements it does not see.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incgraph import hashing
from incgraph.errors import ArtifactNotFoundError, FlowError
from incgraph.flow.artifacts import SHARD, Join, Manifest, Task, entry_key, task_hash
from incgraph.flow.definition import LayerPlan
from incgraph.flow.foreach import Parameter, grid_points

__all__ = ["Grid", "expand", "without"]

Result = Manifest | Join


# A contribution to one task: (upstream layer, attribute or None for "the whole manifest", entry).
Contribution = tuple[str, str | None, Any]
# What a grid cell gives a task: elements by upstream layer, whole manifests, hash parts.
_Cell = tuple[dict[str, dict[str, Any]], dict[str, Manifest], list[str]]


@dataclass
class Grid:
    """A ForEach layer's grid: its dimensions, before (or without) expanding the tasks.

    Attributes
    ----------
    dims : per dimension, per coordinate, what a task at that coordinate receives.
    constant : what every task receives (a ForEach task's unsharded attribute).
    stripped : upstream layer -> attributes to leave out of the shared input.
    whole : upstream ForEach layers whose task ``i`` each task gets whole (aligned).
    """

    dims: list[list[list[Contribution]]] = field(default_factory=list)
    constant: list[Contribution] = field(default_factory=list)
    stripped: dict[str, frozenset[str]] = field(default_factory=dict)
    whole: frozenset[str] = frozenset()

    @property
    def sizes(self) -> list[int]:
        """The size of each dimension."""
        return [len(d) for d in self.dims]

    def __len__(self) -> int:
        return math.prod(self.sizes)

    def signature(self) -> str:
        """A hash of everything the tasks receive, in O(sum of the dimension sizes).

        The tasks are a fixed function of the dimensions, so hashing the
        dimensions (their cells' hash parts, see `_cell`) pins down every
        task's inputs without expanding the grid.
        """
        constant, cells = self._cells
        parts = ["|".join(constant[2])]
        for dim in cells:
            parts.append(str(len(dim)))
            parts.extend(["|".join(cell[2]) for cell in dim])
        return hashing.combine("FlowGrid", *parts)

    @functools.cached_property
    def _cells(self) -> tuple[_Cell, list[list[_Cell]]]:
        """The constant contributions and every dimension's cells, made once for both uses."""
        return _cell(self.constant), [[_cell(c) for c in dim] for dim in self.dims]

    def tasks(self, positional: bool = True) -> list[Task]:
        """Each task's own inputs, in flat order (the first dimension varies fastest).

        Each cell of each dimension is turned into its elements and hash parts
        once (a cell of a multi-dimensional grid is shared by many tasks); a
        task merges its cells' and hashes the sorted parts, exactly as
        `Task` would. ``positional`` puts each
        task's index into its hash (the layer reads ``self.index``).
        """
        (constant_elements, constant_whole, constant_parts), cells = self._cells
        tasks = []
        if len(cells) == 1 and not constant_parts:  # one dimension, nothing constant: a
            # task's inputs are its cell's (read-only, so shared with the cell)
            for index, (elements, whole, parts) in enumerate(cells[0]):
                content = task_hash([str(index) if positional else "", *sorted(parts)])
                tasks.append(Task.assembled(index, elements, whole, content, positional))
            return tasks
        for index, point in enumerate(grid_points(self.sizes)):
            elements = dict(constant_elements)
            whole = dict(constant_whole)
            parts = list(constant_parts)
            for d, coord in enumerate(point):
                cell_elements, cell_whole, cell_parts = cells[d][coord]
                for up, entries in cell_elements.items():
                    mine = elements.get(up)
                    elements[up] = entries if mine is None else {**mine, **entries}
                whole.update(cell_whole)
                parts += cell_parts
            parts.sort()
            parts.insert(0, str(index) if positional else "")
            content = task_hash(parts)
            tasks.append(Task.assembled(index, elements, whole, content, positional))
        return tasks


def without(result: Result, attributes: frozenset[str]) -> Result:
    """``result`` (a manifest or a join) without ``attributes``.

    Examples
    --------
    >>> from incgraph.flow.artifacts import inline
    >>> without(Manifest({"foo": inline(1), "bar": inline(2)}), frozenset({"foo"}))
    {'bar': ('v', 2)}
    >>> without(Join([Manifest({"foo": inline(1)})]), frozenset({"foo"}))[0]
    {}
    """
    if isinstance(result, Manifest):
        return Manifest({k: v for k, v in result.items() if k not in attributes})
    return Join(Manifest({k: v for k, v in m.items() if k not in attributes}) for m in result)


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
    return Grid(dims, constant, {k: frozenset(v) for k, v in stripped.items()}, frozenset(whole))


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
        assert isinstance(manifests, Join)
        if p.aligned:
            return [(up, None, m) for m in manifests], None
        manifest = _indexed(lp, p, manifests)
    else:
        assert isinstance(result, Manifest)
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


def _indexed(lp: LayerPlan, p: Parameter, manifests: Join) -> Manifest:
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


def _cell(contributions: list[Contribution]) -> _Cell:
    """What one grid cell gives a task: elements by upstream layer, whole manifests, hash parts.

    The hash parts are those `Task` hashes:
    ``"<up>[]<attr>=<entry key>"`` per element, ``"<up>=<content>"`` per whole manifest.
    """
    elements: dict[str, dict[str, Any]] = {}
    whole: dict[str, Manifest] = {}
    parts = []
    for up, attr, entry in contributions:
        if attr is None:
            whole[up] = entry
            parts.append(f"{up}={entry.content}")
        else:
            elements.setdefault(up, {})[attr] = entry
            parts.append(f"{up}[]{attr}={entry_key(entry)}")
    return elements, whole, parts
