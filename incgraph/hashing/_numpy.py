"""numpy arrays, scalars and dtypes, and the shared encoding of object sequences.

Design note
-----------
numpy is never imported here: the rule looks it up in ``sys.modules``, and a
numpy value can only exist once numpy is imported.

An array is its tag, ``dtype.str`` (kind, item size and byte order: ``<f8``
and ``>f8`` arrays hash differently even when their values are equal), the
``dtype.descr`` of structured dtypes, its shape, then its *values in C
order*. Layout never matters, values do:

* C-contiguous arrays are fed to xxh3 in place, through a byte view (no copy);
* any other array (Fortran order, slices with steps, transposes) is copied to C
  order in blocks of about 4 MiB, so a huge strided array never needs a second
  full-size buffer. A Fortran-ordered array hashes equal to its C-ordered copy,
  at copy speed (~1 GB/s) instead of hashing speed;
* structured arrays are hashed field by field, which also skips the padding
  bytes of aligned dtypes (their contents are undefined);
* object arrays, and numpy 2 ``StringDType`` arrays, are hashed element by
  element as an *object sequence* (below).

Raw bits are hashed as they are: unlike Python floats, arrays do not
canonicalize NaN payloads, and ``-0.0`` differs from ``0.0`` in both.

A numpy scalar (``np.float64(1.0)``) is written as a scalar tag followed by the
0-d array of the same dtype, so it differs from the Python float ``1.0`` and
from ``np.float32(1.0)``.

Object sequences (numpy object arrays, pandas object and string columns) are
the slow case, and they are usually strings. The encoding is: the positions
and encodings of the elements that are not exactly ``str``, then all ``str``
elements at once as one run: joined with NUL separators when no element
contains a NUL (recoverable, since the count is known), otherwise with their
lengths written first. Joining in C and hashing once is ~20x faster than a
per-element loop, and the result does not depend on which path produced it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator
from itertools import compress, repeat
from operator import countOf, is_, is_not
from typing import Any, Final

from incgraph.hashing._builtins import encode_attributes, instance_state
from incgraph.hashing._encoder import (
    HANDLERS,
    Encoder,
    Handler,
    Unhashable,
    add_rule,
    pack_u64,
    resolve,
    type_label,
)

__all__ = ["encode_array", "encode_object_values"]

_BLOCK_BYTES: Final = 1 << 22


# -- object sequences ------------------------------------------------------------------


def encode_object_values(enc: Encoder, values: list[Any], where: Callable[[int], str]) -> None:
    """Write a list of arbitrary objects: non-``str`` ones by position, strings as one run.

    ``where(i)`` gives the error-path component of element ``i``.
    """
    n = len(values)
    buf = enc.buf
    buf += b"O"
    buf += pack_u64(n)
    if countOf(map(type, values), str) == n:
        buf += pack_u64(0)
        _encode_string_run(enc, values)
        return
    others = list(compress(range(n), map(is_not, map(type, values), repeat(str))))
    buf += pack_u64(len(others))
    for i in others:
        buf += pack_u64(i)
        item = values[i]
        handler = HANDLERS.get(type(item)) or resolve(type(item))
        try:
            handler(enc, item)
        except Unhashable as exc:
            exc.path.append(where(i))
            raise
        enc.maybe_flush()
    _encode_string_run(enc, list(compress(values, map(is_, map(type, values), repeat(str)))))


def _encode_string_run(enc: Encoder, strings: list[str]) -> None:
    joined = "\x00".join(strings)
    if joined.count("\x00") == max(len(strings) - 1, 0):
        enc.buf += b"S"
    else:
        lengths = array("q", map(len, strings))
        if sys.byteorder == "big":
            lengths.byteswap()
        enc.buf += b"L"
        enc.write_blob(memoryview(lengths).cast("B"), len(lengths) * 8)
    data = joined.encode("utf-8", "surrogatepass")
    enc.buf += pack_u64(len(data))
    enc.write_blob(data, len(data))


# -- arrays ----------------------------------------------------------------------------


def _write_dtype(enc: Encoder, dtype: Any) -> None:
    if dtype.kind == "T":
        enc.write_text(repr(dtype))
        return
    enc.write_text(dtype.str)
    if dtype.names is not None:
        enc.write_text(repr(dtype.descr))


def _index_path(shape: tuple[int, ...]) -> Callable[[int], str]:
    np = sys.modules["numpy"]

    def where(i: int) -> str:
        if len(shape) == 1:
            return f"[{i}]"
        return "[" + ", ".join(str(int(k)) for k in np.unravel_index(i, shape)) + "]"

    return where


def _c_order_blocks(a: Any) -> Iterator[Any]:
    """C-contiguous pieces whose concatenation is ``a``'s bytes in C order."""
    if a.flags.c_contiguous:
        yield a
        return
    np = sys.modules["numpy"]
    rows = a.shape[0]
    row_bytes = a.nbytes // rows
    if row_bytes > _BLOCK_BYTES and a.ndim > 1:
        for i in range(rows):
            yield from _c_order_blocks(a[i])
        return
    step = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    for start in range(0, rows, step):
        yield np.ascontiguousarray(a[start : start + step])


def encode_array(enc: Encoder, a: Any) -> None:
    """Write an ndarray: dtype, shape, then its values in C order."""
    dtype = a.dtype
    buf = enc.buf
    buf += b"A"
    _write_dtype(enc, dtype)
    buf += pack_u64(a.ndim)
    for n in a.shape:
        buf += pack_u64(n)
    if dtype.names is not None:
        for name in dtype.names:
            enc.write_text(name)
            try:
                encode_array(enc, a[name])
            except Unhashable as exc:
                exc.path.append(f"[{name!r}]")
                raise
    elif dtype.kind == "O":
        encode_object_values(enc, a.ravel().tolist(), _index_path(a.shape))
    elif dtype.kind == "T":
        encode_object_values(enc, a.ravel().astype(object).tolist(), _index_path(a.shape))
    else:
        np = sys.modules["numpy"]
        for block in _c_order_blocks(a):
            enc.write_blob(memoryview(block.reshape(-1).view(np.uint8)), block.nbytes)


# -- the rule --------------------------------------------------------------------------


def _ndarray(enc: Encoder, value: Any) -> None:
    encode_array(enc, value)


def _memmap(enc: Encoder, value: Any) -> None:
    encode_array(enc, value.view(sys.modules["numpy"].ndarray))


def _masked_array(enc: Encoder, value: Any) -> None:
    ma = sys.modules["numpy"].ma
    enc.buf += b"K"
    encode_array(enc, ma.getdata(value))
    encode_array(enc, ma.getmaskarray(value))
    try:
        _scalar(enc, value.fill_value)
    except Unhashable as exc:
        exc.path.append(".fill_value")
        raise


def _array_subclass(cls: type) -> Handler:
    label = type_label(cls)

    def handler(enc: Encoder, value: Any) -> None:
        enc.buf += b"S"
        enc.write_text(label)
        encode_array(enc, value.view(sys.modules["numpy"].ndarray))
        encode_attributes(enc, instance_state(value, []))

    return handler


def _scalar(enc: Encoder, value: Any) -> None:
    np = sys.modules["numpy"]
    if not isinstance(value, np.generic):
        handler = HANDLERS.get(type(value)) or resolve(type(value))
        handler(enc, value)
        return
    enc.buf += b"a"
    encode_array(enc, np.asarray(value))


def _dtype(enc: Encoder, value: Any) -> None:
    enc.buf += b"e"
    _write_dtype(enc, value)


def _ufunc(enc: Encoder, value: Any) -> None:
    enc.buf += b"U"
    enc.write_text(value.__name__)


def _numpy_rule(cls: type) -> Handler | None:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if cls is np.ndarray:
        return _ndarray
    if issubclass(cls, np.ma.MaskedArray):
        return _masked_array if cls is np.ma.MaskedArray else _array_subclass(cls)
    if issubclass(cls, np.memmap):
        return _memmap
    if issubclass(cls, np.ndarray):
        return _array_subclass(cls)
    if issubclass(cls, np.generic):
        return _scalar
    if issubclass(cls, np.dtype):
        return _dtype
    if issubclass(cls, np.ufunc):
        return _ufunc
    return None


add_rule(30, _numpy_rule)
