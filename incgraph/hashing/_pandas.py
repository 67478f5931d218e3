"""pandas objects: frames, series, indexes, categoricals, extension arrays, scalars.

Design note
-----------
pandas is never imported here: the rule looks it up in ``sys.modules``.

A column is written as its dtype's name and its values; values go through
numpy wherever pandas holds a numpy buffer, so a float column is hashed in
place at memory speed:

* numpy dtypes: ``to_numpy()`` (no copy) and the array encoding;
* categoricals: the integer codes, the categories (an index) and ``ordered``;
* string dtypes (``"str"``/``"string"``, python or pyarrow storage): the
  object-sequence encoding, which joins all strings in C and hashes them once
  (a 5M-row string column takes ~0.3 s; ``pd.util.hash_pandas_object`` takes
  ~0.6 s without and ~8 s with its default ``categorize=True``, and its output
  depends on pandas' hashing internals, so it is not used);
* nullable integer/float/boolean: the missing-value mask and the values with
  missing entries zeroed;
* tz-aware datetimes: UTC instants as ``datetime64`` in the column's unit,
  plus the zone in the dtype name;
* any other extension array: ``to_numpy()`` and the numpy/object encoding.

A Series adds its name, index and ``attrs``; a DataFrame its column labels (an
index), its row index, each column in order and ``attrs``. Column order, index,
names and dtypes are all part of the hash. ``RangeIndex`` is written by its
start/stop/step (it hashes differently from an ``Index`` of the same
integers), a ``MultiIndex`` by its names and the values of each level (not its
internal codes, which differ between equal indexes), and a ``DatetimeIndex``
adds its ``freq``.

Subclasses (a GeoDataFrame, say) are written as their type name, the pandas
encoding of the base and the attributes listed in their ``_metadata``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from incgraph.hashing._builtins import encode_attributes
from incgraph.hashing._encoder import (
    Encoder,
    Handler,
    Unhashable,
    add_rule,
    encode,
    pack_u64,
    short_repr,
    type_label,
)
from incgraph.hashing._numpy import encode_array, encode_object_values

__all__: list[str] = []


def _pd() -> Any:
    return sys.modules["pandas"]


def _located(enc: Encoder, value: object, where: str) -> None:
    try:
        encode(enc, value)
    except Unhashable as exc:
        exc.path.append(where)
        raise


def _dtype_name(dtype: Any) -> str:
    pd = _pd()
    if isinstance(dtype, pd.StringDtype):
        return f"{dtype}[{dtype.storage}, na={dtype.na_value!r}]"
    return str(dtype)


_MASKED_DTYPE_NAMES = (
    "BooleanDtype",
    "Float32Dtype",
    "Float64Dtype",
    *(f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
)


def _is_masked(dtype: object, pd: Any) -> bool:
    """Nullable integer/float/boolean dtypes: numpy values plus a missing-value mask."""
    return isinstance(dtype, tuple(getattr(pd, name) for name in _MASKED_DTYPE_NAMES))


def _encode_values(enc: Encoder, column: Any, where: Callable[[int], str]) -> None:
    """Write a Series' or Index's dtype and values (not its name or index)."""
    pd = _pd()
    dtype: Any = column.dtype
    enc.write_text(_dtype_name(dtype))
    if isinstance(dtype, sys.modules["numpy"].dtype):
        values = column.to_numpy(copy=False)
        if dtype.kind == "O":
            encode_object_values(enc, values.tolist(), where)
        else:
            encode_array(enc, values)
    elif isinstance(dtype, pd.CategoricalDtype):
        _encode_categorical(enc, column.array)
    elif isinstance(dtype, pd.StringDtype):
        encode_object_values(enc, column.to_numpy(dtype=object).tolist(), where)
    elif isinstance(dtype, pd.DatetimeTZDtype):
        encode_array(enc, column.array.to_numpy(dtype=f"datetime64[{dtype.unit}]"))
    elif _is_masked(dtype, pd):
        array = column.array
        encode_array(enc, array.isna())
        fill = False if dtype.numpy_dtype.kind == "b" else 0
        encode_array(enc, array.to_numpy(dtype=dtype.numpy_dtype, na_value=fill))
    else:
        values = column.to_numpy()
        if values.dtype.kind == "O":
            encode_object_values(enc, values.tolist(), where)
        else:
            encode_array(enc, values)


def _encode_categorical(enc: Encoder, value: Any) -> None:
    enc.buf += b"pC"
    encode_array(enc, value.codes)
    _encode_index(enc, value.categories)
    enc.buf += b"T" if value.ordered else b"F"


def _row_path(prefix: str) -> Callable[[int], str]:
    return lambda i: f"{prefix}.iloc[{i}]"


def _encode_index(enc: Encoder, index: Any) -> None:
    pd = _pd()
    if isinstance(index, pd.RangeIndex):
        enc.buf += b"pR"
        _located(enc, index.name, ".name")
        for n in (index.start, index.stop, index.step):
            encode(enc, n)
        return
    if isinstance(index, pd.MultiIndex):
        enc.buf += b"pM"
        _located(enc, tuple(index.names), ".names")
        enc.buf += pack_u64(index.nlevels)
        for level in range(index.nlevels):
            _encode_index(enc, index.get_level_values(level))
        return
    enc.buf += b"pI"
    enc.write_text(type_label(type(index)))
    _located(enc, index.name, ".name")
    _encode_values(enc, index, lambda i: f"[{i}]")
    freq = getattr(index, "freqstr", None)
    encode(enc, freq if isinstance(freq, str) else None)


def _encode_series(enc: Encoder, series: Any) -> None:
    enc.buf += b"pS"
    _located(enc, series.name, ".name")
    _indexed(enc, series.index, ".index")
    _encode_values(enc, series, _row_path(""))
    _located(enc, dict(series.attrs), ".attrs")


def _indexed(enc: Encoder, index: Any, where: str) -> None:
    try:
        _encode_index(enc, index)
    except Unhashable as exc:
        exc.path.append(where)
        raise


def _encode_frame(enc: Encoder, frame: Any) -> None:
    enc.buf += b"pD"
    _indexed(enc, frame.columns, ".columns")
    _indexed(enc, frame.index, ".index")
    enc.buf += pack_u64(frame.shape[1])
    for position, label in enumerate(frame.columns):
        _encode_values(enc, frame.iloc[:, position], _row_path(f"[{short_repr(label)}]"))
        enc.maybe_flush()
    _located(enc, dict(frame.attrs), ".attrs")


def _encode_extension_array(enc: Encoder, value: Any) -> None:
    if isinstance(value, _pd().Categorical):
        _encode_categorical(enc, value)
        return
    enc.buf += b"pE"
    enc.write_text(type_label(type(value)))
    _encode_values(enc, _pd().Series(value, copy=False), lambda i: f"[{i}]")


def _scalar_handler(cls: type, pd: Any) -> Handler | None:
    if issubclass(cls, pd.Timestamp):
        return _timestamp
    if issubclass(cls, pd.Timedelta):
        return _timedelta
    if cls is type(pd.NaT):
        return lambda enc, value: enc.buf.extend(b"pn")
    if cls is type(pd.NA):
        return lambda enc, value: enc.buf.extend(b"pa")
    if issubclass(cls, pd.Period):
        return _period
    if issubclass(cls, pd.Interval):
        return _interval
    if issubclass(cls, pd.api.extensions.ExtensionDtype):
        return _extension_dtype
    return None


def _timestamp(enc: Encoder, value: Any) -> None:
    enc.buf += b"pT"
    enc.write_text(value.isoformat())
    enc.write_text(value.unit)
    _located(enc, value.tzinfo, ".tzinfo")


def _timedelta(enc: Encoder, value: Any) -> None:
    enc.buf += b"pt"
    enc.write_text(value.isoformat())
    enc.write_text(value.unit)


def _period(enc: Encoder, value: Any) -> None:
    enc.buf += b"pP"
    enc.write_text(str(value))
    enc.write_text(value.freqstr)


def _interval(enc: Encoder, value: Any) -> None:
    enc.buf += b"pV"
    _located(enc, value.left, ".left")
    _located(enc, value.right, ".right")
    enc.write_text(value.closed)


def _extension_dtype(enc: Encoder, value: Any) -> None:
    enc.buf += b"pY"
    enc.write_text(type_label(type(value)))
    enc.write_text(_dtype_name(value))


def _with_metadata(cls: type, core: Handler) -> Handler:
    """Subclasses: type name, the base encoding, and the attributes in ``_metadata``."""
    label = type_label(cls)
    names = list(getattr(cls, "_metadata", []))

    def handler(enc: Encoder, value: Any) -> None:
        enc.buf += b"S"
        enc.write_text(label)
        core(enc, value)
        encode_attributes(enc, {name: getattr(value, name, None) for name in names})

    return handler


def _pandas_rule(cls: type) -> Handler | None:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    containers: list[tuple[type, Handler]] = [
        (pd.DataFrame, _encode_frame),
        (pd.Series, _encode_series),
        (pd.Index, _encode_index),
        (pd.api.extensions.ExtensionArray, _encode_extension_array),
    ]
    for base, core in containers:
        if issubclass(cls, base):
            exact = cls is base or cls.__module__.startswith("pandas.")
            return core if exact else _with_metadata(cls, core)
    return _scalar_handler(cls, pd)


add_rule(40, _pandas_rule)
