"""Hypothesis strategies shared by the test suite, and the value model they are checked against.

``graph_specs()`` draws small random DAGs of processors (as plain data, a
:class:`GraphSpec`) and ``graph_edits(spec)`` the edits a user makes between
runs: a constant's value, a node's processor, its init kwargs or its version.

``semantic_key(value)`` is what incgraph's content hash is supposed to see in a
value built from the ``values`` strategy: the exact type of every node, float
bits (with every NaN equal), sequences and dicts in order, sets as multisets.
Two values have the same ``data_version`` exactly when their semantic keys are
equal.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "KINDS",
    "GraphSpec",
    "NodeSpec",
    "arrays",
    "frames",
    "graph_edits",
    "graph_specs",
    "hashable_values",
    "scalars",
    "semantic_key",
    "values",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lu"]), max_size=4),
    st.binary(max_size=8),
)
"""Every built-in scalar type, including NaN, -0.0, big ints, NULs and lone surrogates."""

hashable_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(children, max_size=3),
    ),
    max_leaves=6,
)
"""Values usable as dict keys and set elements."""

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(hashable_values, children, max_size=4),
        st.sets(hashable_values, max_size=4),
        st.frozensets(hashable_values, max_size=4),
    ),
    max_leaves=16,
)
"""Nested containers of scalars: lists, tuples, dicts, sets and frozensets."""


def _float_key(x: float) -> bytes:
    return b"nan" if math.isnan(x) else struct.pack("<d", x)


def semantic_key(value: Any) -> Any:
    """A hashable, exactly comparable model of what data_version distinguishes."""
    cls = type(value)
    if cls is float:
        return ("float", _float_key(value))
    if cls is complex:
        return ("complex", _float_key(value.real), _float_key(value.imag))
    if cls in (list, tuple):
        return (cls.__name__, tuple(semantic_key(v) for v in value))
    if cls is dict:
        return ("dict", tuple((semantic_key(k), semantic_key(v)) for k, v in value.items()))
    if cls in (set, frozenset):
        return (cls.__name__, tuple(sorted((semantic_key(v) for v in value), key=repr)))
    return (cls.__name__, value)


@st.composite
def arrays(draw: st.DrawFn) -> Any:
    """numpy arrays of assorted dtypes (both byte orders) and shapes, possibly empty."""
    from hypothesis.extra import numpy as npst

    dtype = draw(
        st.one_of(
            npst.integer_dtypes(endianness="="),
            npst.floating_dtypes(endianness="=", sizes=(32, 64)),
            npst.boolean_dtypes(),
            npst.complex_number_dtypes(endianness="="),
            npst.datetime64_dtypes(endianness="="),
            npst.unicode_string_dtypes(endianness="=", max_len=4),
        )
    )
    shape = draw(npst.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    return draw(
        npst.arrays(dtype, shape, elements={"allow_nan": False} if dtype.kind in "fc" else None)
    )


@st.composite
def frames(draw: st.DrawFn) -> Any:
    """Small pandas DataFrames with numeric, string (some missing) and categorical columns."""
    import numpy as np
    import pandas as pd

    n = draw(st.integers(min_value=0, max_value=6))
    columns: dict[str, Any] = {}
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["float", "int", "str", "cat"]))
        if kind == "float":
            data: Any = draw(st.lists(st.floats(allow_nan=False, width=64), min_size=n, max_size=n))
            columns[f"c{i}"] = np.asarray(data, dtype=np.float64)
        elif kind == "int":
            data = draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n))
            columns[f"c{i}"] = np.asarray(data, dtype=np.int64)
        elif kind == "str":
            text = st.one_of(st.none(), st.text(max_size=5))
            columns[f"c{i}"] = pd.Series(draw(st.lists(text, min_size=n, max_size=n)), dtype="str")
        else:
            data = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
            columns[f"c{i}"] = pd.Categorical(data)
    return pd.DataFrame(columns)


# -- random graphs and the edits made between runs ------------------------------------

KINDS = ("add", "sub", "mod3", "max")
"""Processor kinds of a :class:`NodeSpec`: two inputs ``a`` and ``b`` and an init kwarg ``k``.

``mod3`` maps many inputs to one result, so recomputing it often gives an equal result
(early cutoff); ``sub`` is ``add`` with different code.
"""


@dataclass(frozen=True)
class NodeSpec:
    """One processor node: its kind, the positions of its two inputs, ``k`` and ``version``."""

    kind: str
    a: int
    b: int
    k: int
    version: int | None


@dataclass(frozen=True)
class GraphSpec:
    """Constants (positions ``0..len(constants)-1``), then nodes, each reading earlier ones."""

    constants: tuple[int, ...]
    nodes: tuple[NodeSpec, ...]

    def edited(self, edit: tuple[str, int, Any]) -> GraphSpec:
        """This graph after one edit: ``(what, index, new value)``."""
        what, i, new = edit
        if what == "constant":
            constants = list(self.constants)
            constants[i] = new
            return replace(self, constants=tuple(constants))
        nodes = list(self.nodes)
        field = {"kind": "kind", "init": "k", "version": "version"}[what]
        nodes[i] = replace(nodes[i], **{field: new})
        return replace(self, nodes=tuple(nodes))


small_ints = st.integers(min_value=-4, max_value=4)


@st.composite
def graph_specs(draw: st.DrawFn, max_nodes: int = 7) -> GraphSpec:
    """A random DAG: 1-3 integer constants and 1-``max_nodes`` nodes reading earlier ones."""
    constants = tuple(draw(st.lists(small_ints, min_size=1, max_size=3)))
    nodes: list[NodeSpec] = []
    for _ in range(draw(st.integers(min_value=1, max_value=max_nodes))):
        before = len(constants) + len(nodes)
        position = st.integers(min_value=0, max_value=before - 1)
        nodes.append(
            NodeSpec(
                draw(st.sampled_from(KINDS)),
                draw(position),
                draw(position),
                draw(st.integers(min_value=0, max_value=2)),
                draw(st.sampled_from([None, 1, 2])),
            )
        )
    return GraphSpec(constants, tuple(nodes))


def graph_edits(spec: GraphSpec) -> st.SearchStrategy[tuple[str, int, Any]]:
    """One edit of ``spec``: a constant's value, a node's kind, init kwarg ``k`` or version."""
    nodes = st.integers(min_value=0, max_value=len(spec.nodes) - 1)
    constants = st.integers(min_value=0, max_value=len(spec.constants) - 1)
    return st.one_of(
        st.tuples(st.just("constant"), constants, small_ints),
        st.tuples(st.just("kind"), nodes, st.sampled_from(KINDS)),
        st.tuples(st.just("init"), nodes, st.integers(min_value=0, max_value=2)),
        st.tuples(st.just("version"), nodes, st.sampled_from([None, 1, 2, 3])),
    )
