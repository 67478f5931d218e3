"""Functions, classes and methods as *values* (an input that is a callback or a class).

Design note
-----------
A function or class passed as data is written as its ``module.qualname`` and,
when it is the user's own code, its code fingerprint (``_code``): editing a
callback you pass to a node invalidates that node, exactly as editing the
processor would. Library callables (``len``, ``numpy.mean``, ``str.upper``, a
sklearn estimator class) are written by name only; their behaviour changes
only with a library upgrade. A name alone would not be safe for user code:
two lambdas share the name ``<lambda>``, and a helper's body can change under
the same name.

A bound method is its function plus the object it is bound to (which must be
hashable); ``functools.partial`` is its function, arguments and keywords.
"""

from __future__ import annotations

import functools
from types import (
    BuiltinFunctionType,
    FunctionType,
    MethodDescriptorType,
    MethodType,
    MethodWrapperType,
    ModuleType,
    WrapperDescriptorType,
)
from typing import Any

from incgraph.hashing._code import fingerprint, label
from incgraph.hashing._encoder import (
    Encoder,
    Handler,
    Unhashable,
    add_builtin,
    add_rule,
    encode,
)
from incgraph.hashing._usercode import is_user_object

__all__: list[str] = []


def _named(enc: Encoder, value: Any) -> None:
    enc.buf += b"Y"
    enc.write_text(label(value))
    enc.write_text(fingerprint(value) if is_user_object(value) else "")


def _builtin_function(enc: Encoder, value: Any) -> None:
    owner = getattr(value, "__self__", None)
    if owner is None or isinstance(owner, ModuleType):
        _named(enc, value)
        return
    _bound(enc, value, owner)


def _bound(enc: Encoder, value: Any, owner: object) -> None:
    enc.buf += b"M"
    enc.write_text(label(value))
    try:
        encode(enc, owner)
    except Unhashable as exc:
        exc.path.append(".__self__")
        raise


def _method(enc: Encoder, value: MethodType) -> None:
    enc.buf += b"M"
    _named(enc, value.__func__)
    try:
        encode(enc, value.__self__)
    except Unhashable as exc:
        exc.path.append(".__self__")
        raise


def _descriptor(enc: Encoder, value: Any) -> None:
    owner = getattr(value, "__objclass__", None)
    enc.buf += b"Y"
    enc.write_text(f"{label(owner)}.{value.__name__}" if owner is not None else label(value))
    enc.write_text("")


def _partial(enc: Encoder, value: functools.partial[Any]) -> None:
    enc.buf += b"p"
    for part, where in (
        (value.func, ".func"),
        (value.args, ".args"),
        (value.keywords, ".keywords"),
    ):
        try:
            encode(enc, part)
        except Unhashable as exc:
            exc.path.append(where)
            raise


def _class_rule(cls: type) -> Handler | None:
    return _named if issubclass(cls, type) else None


add_builtin(FunctionType, _named)
add_builtin(BuiltinFunctionType, _builtin_function)
add_builtin(MethodType, _method)
add_builtin(MethodWrapperType, _builtin_function)
add_builtin(MethodDescriptorType, _descriptor)
add_builtin(WrapperDescriptorType, _descriptor)
add_builtin(functools.partial, _partial)
add_rule(70, _class_rule)
