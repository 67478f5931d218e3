"""Hypothesis strategies shared by the test suite, and the value model they are checked against.

``semantic_key(value)`` is what incgraph's content hash is supposed to see in a
value built from the ``values`` strategy: the exact type of every node, float
bits (with every NaN equal), sequences and dicts in order, sets as multisets.
Two values have the same ``data_version`` exactly when their semantic keys are
equal.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "arrays",
    "frames",
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
