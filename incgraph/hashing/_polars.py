"""polars DataFrames and Series; LazyFrames are refused.

Design note
-----------
polars is never imported here: the rule looks it up in ``sys.modules``.

A Series is its tag, its name, its dtype (``repr``: ``Datetime(time_unit='us',
time_zone='UTC')``, ``Enum(categories=[...])``), its length and null count, then
its values, like a pandas column:

* numeric, boolean and temporal dtypes: the physical values as a numpy array
  (``to_numpy()``, no copy for a single-chunk column without nulls), so a float
  column is hashed in place at memory speed; with nulls, the null mask comes
  first and the nulls' slots are zeroed (a null and a NaN differ);
* strings, categoricals and enums: the strings, joined in C and hashed once (the
  object-sequence encoding numpy and pandas share);
* anything else (lists, structs, arrays, binary, decimals, 128-bit integers,
  objects): the Python values of ``to_list()``, each hashed by its own encoding.

A DataFrame is its column count, then each column as a Series (names, order and
dtypes are all part of the hash). A DataFrame with its chunks laid out
differently (after a ``vstack``, say) hashes the same: only values count.

A LazyFrame is a query, not a value: what it yields depends on the files and
sources its plan scans, which the plan does not capture (a ``scan_csv`` plan is
the same before and after the file changes). Hashing the plan would serve stale
results, so a LazyFrame raises, saying to ``collect()`` it.
"""

from __future__ import annotations

import sys
from typing import Any

from incgraph.hashing._encoder import Encoder, Handler, Unhashable, add_rule, pack_u64
from incgraph.hashing._numpy import encode_array, encode_object_values

__all__: list[str] = []


def _wider_than_numpy(dtype: Any, pl: Any) -> bool:
    """Whether ``dtype`` is a 128-bit integer, which numpy cannot hold."""
    wide = [getattr(pl, name) for name in ("Int128", "UInt128") if hasattr(pl, name)]
    return any(dtype == w for w in wide)


def _values_kind(dtype: Any, pl: Any) -> str:
    """How a column's values are written: ``numpy``, ``strings`` or ``objects``."""
    if dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean:
        return "objects" if dtype.is_decimal() or _wider_than_numpy(dtype, pl) else "numpy"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "strings"
    return "objects"


def encode_series(enc: Encoder, series: Any) -> None:
    """Write a Series: name, dtype, length, null count, then its values."""
    pl = sys.modules["polars"]
    buf = enc.buf
    buf += b"lS"
    enc.write_text(series.name)
    enc.write_text(repr(series.dtype))
    nulls = series.null_count()
    buf += pack_u64(len(series))
    buf += pack_u64(nulls)
    kind = _values_kind(series.dtype, pl)
    if kind == "numpy":
        physical = series.to_physical()
        if nulls:
            encode_array(enc, series.is_null().to_numpy())
            physical = physical.fill_null(False if physical.dtype == pl.Boolean else 0)
        encode_array(enc, physical.to_numpy())
        return
    if kind == "strings":
        series = series.cast(pl.String)
    encode_object_values(enc, series.to_list(), lambda i: f"[{i}]")


def encode_frame(enc: Encoder, frame: Any) -> None:
    """Write a DataFrame: its column count, then each column as a Series."""
    enc.buf += b"lD"
    enc.buf += pack_u64(frame.width)
    for column in frame.iter_columns():
        try:
            encode_series(enc, column)
        except Unhashable as exc:
            exc.path.append(f"[{column.name!r}]")
            raise
        enc.maybe_flush()


def _lazy_frame(enc: Encoder, value: Any) -> None:
    raise Unhashable(
        "cannot hash a polars LazyFrame: it is a query whose result depends on the sources "
        "its plan reads, not a value; pass or return lazy_frame.collect() (a DataFrame)"
    )


def _polars_rule(cls: type) -> Handler | None:
    pl = sys.modules.get("polars")
    if pl is None:
        return None
    if issubclass(cls, pl.DataFrame):
        return encode_frame
    if issubclass(cls, pl.Series):
        return encode_series
    if issubclass(cls, pl.LazyFrame):
        return _lazy_frame
    return None


add_rule(45, _polars_rule)
