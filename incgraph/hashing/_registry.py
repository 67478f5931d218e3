"""How user types join the hash scheme: registered hashers and ``__incgraph_hash__``.

Design note
-----------
A *hasher* reduces a value to something `data_version` already knows
(typically a tuple of fields). The reduction is written after a ``R`` tag and
the value's type name (``module.qualname`` of the value's own class, even when
the hasher was registered for a base), so two types with equal reductions
never collide.

Lookup walks the value type's MRO, so a hasher registered for a base applies
to its subclasses; registration wins over every built-in rule except the fixed
encodings of exact built-in types (``int``, ``str``, ``dict``, ``datetime``,
...), which cannot be replaced. Registering again replaces the hasher and
drops every cached dispatch decision.

Classes may instead define ``__incgraph_hash__(self) -> object`` returning the
reduction; a registered hasher takes precedence over the method.

A hasher must be deterministic and must not return an instance of the type it
reduces (that would recurse forever); exceptions it raises become a
`HashingError` that names the value's location.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from incgraph.errors import HashingError
from incgraph.hashing._encoder import (
    Encoder,
    Handler,
    Unhashable,
    add_rule,
    encode,
    forget_resolved,
    is_builtin,
    pack_u64,
    type_label,
)
from incgraph.hashing._scheme import DATA_HEADER

__all__ = ["register_hasher"]

T = TypeVar("T")

_HASHERS: dict[type, Callable[[Any], object]] = {}


def register_hasher(type_: type[T], fn: Callable[[T], object]) -> None:
    """Teach `data_version` to hash instances of ``type_`` (and its subclasses).

    Parameters
    ----------
    type_ : type
        The class to register. Exact built-in types (``int``, ``dict``, ...)
        have fixed encodings and are refused.
    fn : callable
        Reduces an instance to a hashable value, e.g. a tuple of its fields.
        The result is tagged with the instance's ``module.qualname``.

    Raises
    ------
    HashingError
        If ``type_`` is not a class, ``fn`` is not callable, or ``type_`` is an
        exact built-in type.

    Examples
    --------
    >>> from incgraph.hashing import data_version
    >>> class Point:
    ...     def __init__(self, x, y):
    ...         self.x, self.y = x, y
    >>> register_hasher(Point, lambda p: (p.x, p.y))
    >>> data_version(Point(1, 2)) == data_version(Point(1, 2))
    True
    >>> data_version(Point(1, 2)) == data_version((1, 2))
    False
    """
    if not isinstance(type_, type):
        raise HashingError(f"register_hasher: type_ must be a class, got {type_!r}")
    if not callable(fn):
        raise HashingError(
            f"register_hasher({type_.__qualname__}, fn): fn must be callable, got {fn!r}"
        )
    if is_builtin(type_):
        raise HashingError(
            f"register_hasher: {type_label(type_)} has a fixed built-in encoding that "
            "cannot be replaced; wrap such values in a class of your own and register that"
        )
    _HASHERS[type_] = fn
    forget_resolved()


def _reduction_handler(cls: type, reduce: Callable[[Any], object], where: str) -> Handler:
    label = type_label(cls)

    def handler(enc: Encoder, value: Any) -> None:
        enc.enter(value)
        try:
            reduced = reduce(value)
        except HashingError as exc:  # says what is wrong already (a DataPath to nothing)
            raise Unhashable(str(exc)) from exc
        except Exception as exc:
            error = Unhashable(f"{where} raised {type(exc).__name__}: {exc}")
            raise error from exc
        if type(reduced) is cls:
            raise Unhashable(
                f"{where} returned another {cls.__qualname__}; return a reduction "
                "such as a tuple of its fields instead"
            )
        enc.buf += b"R"
        enc.write_text(label)
        try:
            encode(enc, reduced)
        except Unhashable as exc:
            exc.path.append(f" (reduced by {where})")
            raise
        enc.leave(value)

    return handler


def _registered_rule(cls: type) -> Handler | None:
    for klass in cls.__mro__:
        fn = _HASHERS.get(klass)
        if fn is not None:
            return _reduction_handler(cls, fn, f"the hasher registered for {klass.__qualname__}")
    return None


def _call_protocol(value: Any) -> object:
    return value.__incgraph_hash__()


def _protocol_rule(cls: type) -> Handler | None:
    if not callable(getattr(cls, "__incgraph_hash__", None)):
        return None
    handler = _reduction_handler(cls, _call_protocol, f"{cls.__qualname__}.__incgraph_hash__()")
    # What the handler writes before the reduced value, for data_version's shortcut when
    # a value of this type is hashed on its own and reduces to a str (see _data.py).
    label = type_label(cls).encode("utf-8", "surrogatepass")
    setattr(handler, "str_prefix", DATA_HEADER + b"R" + pack_u64(len(label)) + label)
    return handler


add_rule(10, _registered_rule)
add_rule(20, _protocol_rule)
