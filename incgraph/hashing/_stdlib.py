"""Encodings of standard-library value types: records, enums, paths, times, numbers.

Design note
-----------
Every encoding here names the value's type (``module.qualname``), so two types
with equal contents never collide:

* dataclasses, attrs classes and named tuples are *records*: the type and each
  field's name and value, in declaration order (``compare=False`` fields too:
  what an instance holds counts, not what ``==`` compares). Attributes a
  dataclass or attrs instance carries beyond its fields (set in
  ``__post_init__``, or later from outside) count too, sorted by name, since a
  processor may read them; only ``functools.cached_property`` values are left
  out (derived from the instance, and present only once read). To hash fewer
  attributes, register a hasher for the class or give it ``__incgraph_hash__``.
* an enum member is its type, its ``name`` and its ``value``.
* a path is its type (``PosixPath`` differs from ``PurePosixPath``) and its
  text. A path's hash never looks at the file it points to.
* ``datetime``/``time`` write their fields and their ``tzinfo``: ``timezone``
  by offset and name, ``ZoneInfo`` by key, any other ``tzinfo`` by type and
  ``str()``. Two aware datetimes that denote the same instant in different
  zones hash differently (they print differently, and ``.hour`` differs).
* ``Decimal`` is its exact string (``Decimal("1.0") != Decimal("1.00")`` here,
  as in its ``str``), ``Fraction`` its numerator and denominator, ``UUID`` its
  16 bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import fractions
import functools
import pathlib
import struct
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

from incgraph.hashing._builtins import attribute_path
from incgraph.hashing._encoder import (
    Encoder,
    Handler,
    Unhashable,
    add_builtin,
    add_rule,
    encode,
    type_label,
)

__all__: list[str] = []

_pack_times = struct.Struct("<qqqqqqqq").pack
_pack_td = struct.Struct("<qqq").pack


def _record_handler(cls: type, names: list[str], extras: bool = False) -> Handler:
    """Fields by name in order; with ``extras``, then the other instance attributes."""
    label = type_label(cls)
    skipped = frozenset(names) | _derived_names(cls)

    def handler(enc: Encoder, value: Any) -> None:
        enc.enter(value)
        enc.buf += b"D"
        enc.write_text(label)
        enc.write_len(len(names))
        for name in names:
            _attribute(enc, name, getattr(value, name))
        if extras:
            found = getattr(value, "__dict__", None) or {}
            more = sorted(name for name in found if name not in skipped)
            enc.write_len(len(more))
            for name in more:
                _attribute(enc, name, found[name])
        enc.leave(value)

    return handler


def _attribute(enc: Encoder, name: str, value: Any) -> None:
    enc.write_text(name)
    try:
        encode(enc, value)
    except Unhashable as exc:
        exc.path.append(attribute_path(name))
        raise


def _derived_names(cls: type) -> frozenset[str]:
    """Names of ``cls``'s ``functools.cached_property`` attributes (kept in ``__dict__``)."""
    return frozenset(
        name
        for klass in cls.__mro__
        for name, attr in vars(klass).items()
        if isinstance(attr, functools.cached_property)
    )


def _record_rule(cls: type) -> Handler | None:
    if dataclasses.is_dataclass(cls):
        return _record_handler(cls, [f.name for f in dataclasses.fields(cls)], extras=True)
    attrs_fields = getattr(cls, "__attrs_attrs__", None)
    if attrs_fields is not None:
        return _record_handler(cls, [a.name for a in attrs_fields], extras=True)
    if issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        return _record_handler(cls, list(cls._fields))  # type: ignore[attr-defined]
    return None


def _enum_rule(cls: type) -> Handler | None:
    if not issubclass(cls, enum.Enum):
        return None
    label = type_label(cls)

    def handler(enc: Encoder, value: enum.Enum) -> None:
        enc.buf += b"E"
        enc.write_text(label)
        encode(enc, value.name)
        try:
            encode(enc, value.value)
        except Unhashable as exc:
            exc.path.append(".value")
            raise

    return handler


def _path_rule(cls: type) -> Handler | None:
    if not issubclass(cls, pathlib.PurePath):
        return None
    label = type_label(cls)

    def handler(enc: Encoder, value: pathlib.PurePath) -> None:
        enc.buf += b"P"
        enc.write_text(label)
        enc.write_text(str(value))

    return handler


def _tzinfo(enc: Encoder, tz: dt.tzinfo | None) -> None:
    try:
        encode(enc, tz)
    except Unhashable as exc:
        exc.path.append(".tzinfo")
        raise


def _datetime(enc: Encoder, value: dt.datetime) -> None:
    enc.buf += b"W"
    enc.buf += _pack_times(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
    )
    _tzinfo(enc, value.tzinfo)


def _date(enc: Encoder, value: dt.date) -> None:
    enc.buf += b"w"
    enc.buf += _pack_td(value.year, value.month, value.day)


def _time(enc: Encoder, value: dt.time) -> None:
    enc.buf += b"h"
    enc.buf += _pack_times(
        0, 0, 0, value.hour, value.minute, value.second, value.microsecond, value.fold
    )
    _tzinfo(enc, value.tzinfo)


def _timedelta(enc: Encoder, value: dt.timedelta) -> None:
    enc.buf += b"k"
    enc.buf += _pack_td(value.days, value.seconds, value.microseconds)


def _timezone(enc: Encoder, value: dt.timezone) -> None:
    enc.buf += b"z"
    _timedelta(enc, value.utcoffset(None))
    enc.write_text(value.tzname(None))


def _zoneinfo(enc: Encoder, value: zoneinfo.ZoneInfo) -> None:
    if value.key is None:
        raise Unhashable(
            "cannot hash a ZoneInfo loaded from a file (it has no key); "
            "use ZoneInfo('Area/City') or mark the node cache=False"
        )
    enc.buf += b"Z"
    enc.write_text(value.key)


def _tzinfo_rule(cls: type) -> Handler | None:
    if not issubclass(cls, dt.tzinfo):
        return None
    label = type_label(cls)

    def handler(enc: Encoder, value: dt.tzinfo) -> None:
        text = str(value)
        if " at 0x" in text:
            raise Unhashable(
                f"cannot hash a {label} time zone: its str() shows a memory address; "
                f"call incgraph.register_hasher({cls.__qualname__}, fn)"
            )
        enc.buf += b"X"
        enc.write_text(label)
        enc.write_text(text)

    return handler


def _decimal(enc: Encoder, value: Decimal) -> None:
    enc.buf += b"x"
    enc.write_text(str(value))


def _fraction(enc: Encoder, value: fractions.Fraction) -> None:
    enc.buf += b"q"
    encode(enc, value.numerator)
    encode(enc, value.denominator)


def _uuid(enc: Encoder, value: uuid.UUID) -> None:
    enc.buf += b"u"
    enc.buf += value.bytes


add_builtin(dt.datetime, _datetime)
add_builtin(dt.date, _date)
add_builtin(dt.time, _time)
add_builtin(dt.timedelta, _timedelta)
add_builtin(dt.timezone, _timezone)
add_builtin(zoneinfo.ZoneInfo, _zoneinfo)
add_builtin(Decimal, _decimal)
add_builtin(fractions.Fraction, _fraction)
add_builtin(uuid.UUID, _uuid)
add_rule(50, _enum_rule)
add_rule(55, _record_rule)
add_rule(60, _path_rule)
add_rule(65, _tzinfo_rule)
