"""Encodings of Python's built-in value types and containers.

Design note
-----------
Scalars: ``None``, ``True``/``False``, ints (``i`` + int64, or ``I`` + length
+ two's complement bytes beyond 64 bits), floats (``f`` + IEEE-754 little
endian; every NaN is written as the one canonical quiet NaN; ``-0.0`` keeps
its sign bit, because ``1 / -0.0 != 1 / 0.0``), complex numbers (two such
floats), ``str`` (UTF-8, ``surrogatepass``), ``bytes``/``bytearray`` (distinct
tags: one is mutable) and ``memoryview`` (format, shape and the bytes in C
order). ``bool`` is not ``int`` and ``1.0`` is not ``1``: each has its own tag.

Containers: tuples and lists write a count and each item, in order. Dicts
write a count and each (key, value) pair **in insertion order**: code that
iterates a dict sees that order (``list(d)``, ``next(iter(d))``, a JSON dump),
so two dicts with equal items in a different order are different inputs.
``OrderedDict`` is ordered too, under its own tag, and ``defaultdict`` adds its
factory. Sets and frozensets are unordered: they write the sorted digests of
their elements, so equal sets hash equal whatever their iteration order.
Instance attributes (`encode_attributes`) are sorted by name: an
object's ``__dict__`` order records only the order its attributes were first
set.

Subclasses of these types that nothing more specific claims (a ``class
Config(dict)``, say) are written as their type's name, the built-in value and
their instance attributes, so two subclasses with equal contents differ and
extra state is not silently dropped.

Container handlers dispatch their children inline rather than through
`encode`: one Python frame per nesting level
keeps deep structures well inside the recursion limit.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from xxhash import xxh3_128_digest

from incgraph.hashing._encoder import (
    HANDLERS,
    Encoder,
    Handler,
    Unhashable,
    add_builtin,
    add_rule,
    encode,
    pack_u64,
    resolve,
    short_repr,
    type_label,
)
from incgraph.sentinels import MISSING

__all__ = [
    "attribute_path",
    "encode_attributes",
    "encode_items",
    "encode_mapping_items",
    "encode_ordered_items",
    "float_bytes",
    "instance_state",
    "key_digest",
    "slot_names",
]

_pack_q = struct.Struct("<q").pack
_pack_d = struct.Struct("<d").pack
_CANONICAL_NAN: Final = b"\x00\x00\x00\x00\x00\x00\xf8\x7f"
_INT64_MIN: Final = -(1 << 63)
_INT64_END: Final = 1 << 63
_FLUSH_AT: Final = 1 << 20
_first = itemgetter(0)


# -- scalars ---------------------------------------------------------------------------


def _none(enc: Encoder, value: None) -> None:
    enc.buf += b"N"


def _bool(enc: Encoder, value: bool) -> None:
    enc.buf += b"T" if value else b"F"


def _int(enc: Encoder, value: int) -> None:
    buf = enc.buf
    if _INT64_MIN <= value < _INT64_END:
        buf += b"i"
        buf += _pack_q(value)
        return
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    buf += b"I"
    buf += pack_u64(len(data))
    buf += data


def float_bytes(value: float) -> bytes:
    """IEEE-754 little-endian bytes of a float, with every NaN made the canonical one."""
    return _pack_d(value) if value == value else _CANONICAL_NAN


def _float(enc: Encoder, value: float) -> None:
    buf = enc.buf
    buf += b"f"
    buf += _pack_d(value) if value == value else _CANONICAL_NAN


def _complex(enc: Encoder, value: complex) -> None:
    buf = enc.buf
    buf += b"c"
    buf += float_bytes(value.real)
    buf += float_bytes(value.imag)


def _str(enc: Encoder, value: str) -> None:
    data = str.encode(value, "utf-8", "surrogatepass")
    buf = enc.buf
    buf += b"s"
    buf += pack_u64(len(data))
    enc.write_blob(data, len(data))


def _byte_string(tag: bytes) -> Handler:
    def handler(enc: Encoder, value: bytes | bytearray) -> None:
        buf = enc.buf
        buf += tag
        buf += pack_u64(len(value))
        enc.write_blob(value, len(value))

    return handler


def _memoryview(enc: Encoder, value: memoryview) -> None:
    try:
        data = value.cast("B") if value.c_contiguous else value.tobytes()
    except ValueError as exc:
        raise Unhashable(f"cannot hash a memoryview: {exc}") from None
    buf = enc.buf
    buf += b"m"
    enc.write_text(value.format)
    buf += pack_u64(value.itemsize)
    buf += pack_u64(value.ndim)
    for n in value.shape or ():
        buf += pack_u64(n)
    enc.write_blob(data, value.nbytes)


def _constant(tag: bytes) -> Handler:
    def handler(enc: Encoder, value: object) -> None:
        enc.buf += tag

    return handler


def _range(enc: Encoder, value: range) -> None:
    enc.buf += b"r"
    _int(enc, value.start)
    _int(enc, value.stop)
    _int(enc, value.step)


def _slice(enc: Encoder, value: slice) -> None:
    enc.buf += b":"
    for name in ("start", "stop", "step"):
        try:
            encode(enc, getattr(value, name))
        except Unhashable as exc:
            exc.path.append(f".{name}")
            raise


# -- containers ------------------------------------------------------------------------


def encode_items(enc: Encoder, items: Any) -> None:
    """Write each item of an iterable in order, naming ``[i]`` in errors."""
    buf = enc.buf
    for i, item in enumerate(items):
        handler = HANDLERS.get(type(item)) or resolve(type(item))
        try:
            handler(enc, item)
        except Unhashable as exc:
            exc.path.append(f"[{i}]")
            raise
        if len(buf) > _FLUSH_AT:
            enc.maybe_flush()


def _tuple(enc: Encoder, value: tuple[Any, ...]) -> None:
    buf = enc.buf
    buf += b"("
    buf += pack_u64(len(value))
    encode_items(enc, value)


def _list(enc: Encoder, value: list[Any]) -> None:
    enc.enter(value)
    buf = enc.buf
    buf += b"["
    buf += pack_u64(len(value))
    encode_items(enc, value)
    enc.leave(value)


def key_digest(enc: Encoder, key: object) -> bytes:
    """16-byte digest of one value's encoding, used to order dict keys and set elements."""
    cls = type(key)
    if cls is str:
        data = str.encode(key, "utf-8", "surrogatepass")  # type: ignore[arg-type]
        return xxh3_128_digest(b"s" + pack_u64(len(data)) + data)
    if cls is int and _INT64_MIN <= key < _INT64_END:  # type: ignore[operator]
        return xxh3_128_digest(b"i" + _pack_q(key))
    return enc.subdigest(key)


def _item_path(key: object) -> str:
    return f"[{short_repr(key)}]"


def attribute_path(name: object) -> str:
    """Error-path component for an attribute: ``.name``."""
    return f".{name}"


def encode_mapping_items(
    enc: Encoder, items: Any, count: int, where: Callable[[Any], str] = _item_path
) -> None:
    """Write ``count`` (key, value) pairs order-insensitively: sorted by key digest.

    ``where`` turns a key into the error-path component of its value.
    """
    entries = []
    for key, value in items:
        try:
            entries.append((key_digest(enc, key), key, value))
        except Unhashable as exc:
            exc.path.append(f"<key {short_repr(key)}>")
            raise
    entries.sort(key=_first)
    if len(set(map(_first, entries))) != len(entries):
        _break_ties(enc, entries, where)
    buf = enc.buf
    buf += pack_u64(count)
    for digest, key, value in entries:
        buf += digest
        handler = HANDLERS.get(type(value)) or resolve(type(value))
        try:
            handler(enc, value)
        except Unhashable as exc:
            exc.path.append(where(key))
            raise
        if len(buf) > _FLUSH_AT:
            enc.maybe_flush()


def _break_ties(
    enc: Encoder, entries: list[tuple[bytes, Any, Any]], where: Callable[[Any], str]
) -> None:
    """Order entries whose keys encode equally (several NaN keys, say) by their values."""

    def value_digest(entry: tuple[bytes, Any, Any]) -> bytes:
        try:
            return enc.subdigest(entry[2])
        except Unhashable as exc:
            exc.path.append(where(entry[1]))
            raise

    entries.sort(key=lambda entry: (entry[0], value_digest(entry)))


def encode_ordered_items(enc: Encoder, items: Any, count: int) -> None:
    """Write ``count`` (key, value) pairs in the order given (a dict's insertion order)."""
    buf = enc.buf
    buf += pack_u64(count)
    for key, item in items:
        for part, where in ((key, f"<key {short_repr(key)}>"), (item, f"[{short_repr(key)}]")):
            try:
                encode(enc, part)
            except Unhashable as exc:
                exc.path.append(where)
                raise
        if len(buf) > _FLUSH_AT:
            enc.maybe_flush()


def _dict(enc: Encoder, value: dict[Any, Any]) -> None:
    enc.enter(value)
    enc.buf += b"d"
    encode_ordered_items(enc, dict.items(value), len(value))
    enc.leave(value)


def _ordered_dict(enc: Encoder, value: OrderedDict[Any, Any]) -> None:
    enc.enter(value)
    enc.buf += b"O"
    encode_ordered_items(enc, value.items(), len(value))
    enc.leave(value)


def _defaultdict(enc: Encoder, value: defaultdict[Any, Any]) -> None:
    enc.enter(value)
    enc.buf += b"v"
    try:
        encode(enc, value.default_factory)
    except Unhashable as exc:
        exc.path.append(".default_factory")
        raise
    encode_ordered_items(enc, dict.items(value), len(value))
    enc.leave(value)


def _set_like(tag: bytes) -> Handler:
    def handler(enc: Encoder, value: set[Any] | frozenset[Any]) -> None:
        digests = []
        for item in value:
            try:
                digests.append(key_digest(enc, item))
            except Unhashable as exc:
                exc.path.append(f"{{{short_repr(item)}}}")
                raise
        digests.sort()
        buf = enc.buf
        buf += tag
        buf += pack_u64(len(digests))
        buf += b"".join(digests)

    return handler


# -- subclasses of built-ins -----------------------------------------------------------

_AS_BASE: Final[dict[type, Callable[[Any], Any]]] = {
    OrderedDict: lambda v: OrderedDict(OrderedDict.items(v)),
    defaultdict: lambda v: defaultdict(v.default_factory, dict.items(v)),
    int: int.__int__,
    float: float.__float__,
    complex: complex.__complex__,
    str: str.__str__,
    bytes: lambda v: bytes(memoryview(v)),
    bytearray: bytearray,
    tuple: lambda v: tuple(tuple.__iter__(v)),
    list: lambda v: list(list.__iter__(v)),
    dict: lambda v: dict(dict.items(v)),
    set: lambda v: set(set.__iter__(v)),
    frozenset: lambda v: frozenset(frozenset.__iter__(v)),
}


def slot_names(cls: type) -> list[str]:
    """Attribute names declared by ``__slots__`` anywhere in ``cls``'s MRO (mangled as stored)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            names.add(name)
    return sorted(names - {"__dict__", "__weakref__"})


def _builtin_subclass(cls: type) -> Handler | None:
    base = next((b for b in cls.__mro__[1:] if b in _AS_BASE), None)
    if base is None:
        return None
    to_base, base_handler, label, slots = (
        _AS_BASE[base],
        HANDLERS[base],
        type_label(cls),
        slot_names(cls),
    )

    def handler(enc: Encoder, value: Any) -> None:
        enc.enter(value)
        enc.buf += b"S"
        enc.write_text(label)
        base_handler(enc, to_base(value))
        encode_attributes(enc, instance_state(value, slots))
        enc.leave(value)

    return handler


def instance_state(value: object, slots: list[str]) -> dict[str, Any]:
    """An instance's attributes: its declared slots (MISSING when unset) and its ``__dict__``."""
    state: dict[str, Any] = {name: getattr(value, name, MISSING) for name in slots}
    state.update(getattr(value, "__dict__", {}))
    return state


def encode_attributes(enc: Encoder, state: dict[str, Any]) -> None:
    """Write a name -> value mapping of attributes (order-insensitive, ``.name`` in errors)."""
    enc.buf += b"{"
    encode_mapping_items(enc, state.items(), len(state), attribute_path)


add_builtin(type(None), _none)
add_builtin(bool, _bool)
add_builtin(int, _int)
add_builtin(float, _float)
add_builtin(complex, _complex)
add_builtin(str, _str)
add_builtin(bytes, _byte_string(b"b"))
add_builtin(bytearray, _byte_string(b"y"))
add_builtin(memoryview, _memoryview)
add_builtin(tuple, _tuple)
add_builtin(list, _list)
add_builtin(dict, _dict)
add_builtin(OrderedDict, _ordered_dict)
add_builtin(defaultdict, _defaultdict)
add_builtin(set, _set_like(b"<"))
add_builtin(frozenset, _set_like(b">"))
add_builtin(range, _range)
add_builtin(slice, _slice)
add_builtin(type(Ellipsis), _constant(b"."))
add_builtin(type(NotImplemented), _constant(b"!"))
add_rule(90, _builtin_subclass)
