"""``ForEach`` and ``Parameter``: how a layer fans out into tasks.

Design note
-----------
A ``ForEach`` layer runs one *task* per point of a grid. Each
`Parameter` names an upstream layer's attribute:

* ``index=0`` (the default) on a layer that is not itself a ``ForEach``: the
  attribute is one *dimension* of the grid. A sharded attribute contributes
  one point per element; an attribute that was not sharded is passed whole to
  every task (a dimension of size one).
* ``index=k`` on a ``ForEach`` layer reads that layer's task ``k`` the same way.
* ``index=None`` *aligns* instead of crossing: every ``index=None`` parameter
  belongs to one shared dimension, and task ``i`` takes element ``i`` of each
  (a zip). On a ``ForEach`` layer the elements are its tasks, so task ``i``
  of this layer sees task ``i`` of that one whole (chained ``ForEach``).

The grid is the cartesian product of the dimensions with the FIRST varying
fastest, so ``foo=[1, 2, 3]`` and ``bar=["a", "b"]`` give ``(1, a), (2, a),
(3, a), (1, b), (2, b), (3, b)``; a task's ``self.index`` is its flat position.
`grid_points` is the pure function that orders the points.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from incgraph.errors import FlowDefinitionError

__all__ = ["ForEach", "Parameter", "grid_points"]


@dataclass(frozen=True)
class Parameter:
    """One attribute of an upstream layer that a ``ForEach`` layer fans out over.

    Parameters
    ----------
    layer : Layer subclass or str
        The upstream layer (or its class name, for forward references).
    attribute : str
        The attribute of that layer: sharded attributes give one task per
        element, others are passed whole to every task.
    index : int or None
        ``0`` (default) crosses this attribute with the other parameters.
        ``None`` aligns it: task ``i`` takes element (or, on a ``ForEach``
        layer, task) ``i``. An integer ``k`` on a ``ForEach`` layer reads its
        task ``k``.

    Examples
    --------
    >>> Parameter(layer="Shard", attribute="foo")
    Parameter(layer='Shard', attribute='foo', index=0)
    """

    layer: Any
    attribute: str
    index: int | None = 0

    def __post_init__(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute.isidentifier():
            raise FlowDefinitionError(
                f"Parameter(attribute={self.attribute!r}): the attribute must be the name of "
                "an attribute the upstream layer sets, e.g. attribute='foo'"
            )
        if self.index is not None and (
            isinstance(self.index, bool) or not isinstance(self.index, int)
        ):
            raise FlowDefinitionError(
                f"Parameter(attribute={self.attribute!r}, index={self.index!r}): index must be "
                "an int (which task of a ForEach layer to read) or None (align task i with i)"
            )

    @property
    def layer_name(self) -> str:
        """The upstream layer's class name."""
        return self.layer if isinstance(self.layer, str) else getattr(self.layer, "__name__", "?")

    @property
    def aligned(self) -> bool:
        """Whether this parameter maps task ``i`` to element ``i`` (``index=None``)."""
        return self.index is None


@dataclass(frozen=True)
class ForEach:
    """Run a layer once per point of the grid spanned by its parameters.

    Parameters
    ----------
    parameters : list of Parameter
        The attributes to fan out over; see the module notes for how they
        combine.

    Examples
    --------
    >>> fe = ForEach(parameters=[Parameter(layer="Shard", attribute="foo")])
    >>> [p.attribute for p in fe.parameters]
    ['foo']
    """

    parameters: Sequence[Parameter] = field(default_factory=list)

    def __post_init__(self) -> None:
        params = tuple(self.parameters)
        if not params:
            raise FlowDefinitionError(
                "ForEach(parameters=[]) has nothing to fan out over; pass at least one "
                "Parameter(layer=..., attribute=...)"
            )
        for p in params:
            if not isinstance(p, Parameter):
                raise FlowDefinitionError(
                    f"ForEach(parameters=[...]) takes Parameter objects, got {p!r}; "
                    "write Parameter(layer=SomeLayer, attribute='name')"
                )
        seen: set[tuple[str, str]] = set()
        for p in params:
            key = (p.layer_name, p.attribute)
            if key in seen:
                raise FlowDefinitionError(
                    f"ForEach lists Parameter({p.layer_name}.{p.attribute}) twice; "
                    "each attribute can be fanned out over once"
                )
            seen.add(key)
        object.__setattr__(self, "parameters", params)


def grid_points(sizes: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Coordinates of every grid point, the FIRST dimension varying fastest.

    Examples
    --------
    >>> list(grid_points([3, 2]))
    [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    >>> list(grid_points([2, 0]))
    []
    >>> list(grid_points([]))
    [()]
    """
    if len(sizes) == 1:  # the usual ForEach over one shard: (0,), (1,), ... made in C
        return zip(range(sizes[0]))
    return (point[::-1] for point in itertools.product(*(range(n) for n in reversed(sizes))))
