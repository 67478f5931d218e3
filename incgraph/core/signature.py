"""Signatures of ``process`` and the type checks made against them.

Design note
-----------
Checks happen as early as they can be made:

* at ``add_node``: input names against ``process``'s parameters, bound
  constants against the parameter annotations, and an upstream processor's
  *return annotation* against the parameter annotation;
* at run time: each value handed to ``process`` (constants set later,
  results of unannotated upstream processors) and each value ``process``
  returns, against the annotations.

The checker understands plain classes, ``Any``, ``Optional`` and unions
(``X | Y``), ``Literal``, ``Annotated``, ``NewType``, ``Callable``, TypeVars
and the common generics (``list[int]``, ``dict[str, float]``, ``tuple[int, ...]``,
``Sequence[str]``...). Anything it does not understand is accepted: a check
that is unsure never rejects. Containers are checked element-wise up to
`ELEMENT_BUDGET` elements (first and last halves), so a check never costs
more than a few microseconds per value. Following PEP 484's numeric tower, an
``int`` is accepted where a ``float`` is expected, and ``int``/``float`` where a
``complex`` is.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import inspect
import types
import typing
import weakref
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from incgraph.hashing._paths import DataPath

__all__ = [
    "ELEMENT_BUDGET",
    "ProcessSignature",
    "annotation_name",
    "is_compatible",
    "process_signature",
    "value_matches",
]

ELEMENT_BUDGET = 64
_NUMERIC_TOWER: dict[type, tuple[type, ...]] = {float: (int,), complex: (int, float)}
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class ProcessSignature:
    """What ``process`` accepts: parameter annotations, which are required, and the return type."""

    params: dict[str, Any]
    required: frozenset[str]
    var_keyword: bool
    returns: Any

    def accepts(self, name: str) -> bool:
        """Whether an input called ``name`` can be bound."""
        return self.var_keyword or name in self.params


_SIGNATURES: weakref.WeakKeyDictionary[type, ProcessSignature] = weakref.WeakKeyDictionary()


def process_signature(cls: type) -> ProcessSignature:
    """Read ``cls.process``'s signature once per class (forward references resolved when possible).

    Examples
    --------
    >>> class Add:
    ...     def process(self, a: int, b: int = 0) -> int: ...
    >>> sig = process_signature(Add)
    >>> sorted(sig.params), sorted(sig.required), sig.returns
    (['a', 'b'], ['a'], <class 'int'>)
    """
    found = _SIGNATURES.get(cls)
    if found is None:
        found = _SIGNATURES[cls] = _read_signature(cls)
    return found


def _read_signature(cls: type) -> ProcessSignature:
    fn = cls.process  # type: ignore[attr-defined]
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    params: dict[str, Any] = {}
    required: set[str] = set()
    var_keyword = False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and name in ("self", "cls"):
            continue
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        ann = hints.get(name, p.annotation)
        params[name] = Any if ann is _EMPTY or isinstance(ann, str) else ann
        if p.default is _EMPTY:
            required.add(name)
    ret = hints.get("return", sig.return_annotation)
    returns = Any if ret is _EMPTY or isinstance(ret, str) else ret
    return ProcessSignature(params, frozenset(required), var_keyword, returns)


def annotation_name(ann: Any) -> str:
    """A short readable name for an annotation: ``int``, ``list[int]``, ``int | None``."""
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__qualname__
    return repr(ann).replace("typing.", "")


def _unwrap(ann: Any) -> Any:
    """Strip Annotated[...] and NewType wrappers."""
    while True:
        if typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif isinstance(ann, typing.NewType):
            ann = ann.__supertype__
        else:
            return ann


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _isinstance(value: Any, cls: type) -> bool:
    if isinstance(value, cls):
        return True
    if isinstance(value, DataPath):  # a file whose contents are the input, given as a path
        return issubclass(cls, PurePath) and isinstance(value.path, cls)
    return isinstance(value, _NUMERIC_TOWER.get(cls, ())) and not isinstance(value, bool)


def _sample(items: cabc.Sequence[Any] | list[Any]) -> cabc.Iterable[Any]:
    if len(items) <= ELEMENT_BUDGET:
        return items
    half = ELEMENT_BUDGET // 2
    return [*items[:half], *items[-half:]]


def value_matches(value: Any, ann: Any) -> bool:
    """Whether ``value`` fits annotation ``ann`` (unknown annotations always fit).

    Examples
    --------
    >>> value_matches([1, 2], list[int]), value_matches([1, "x"], list[int])
    (True, False)
    >>> value_matches(None, int | None), value_matches(3, float)
    (True, True)

    A `DataPath` fits a `pathlib.Path` annotation (it acts as the path):

    >>> from pathlib import Path
    >>> from incgraph import DataPath
    >>> value_matches(DataPath("data.csv"), Path), value_matches(DataPath("data.csv"), str)
    (True, False)
    """
    if ann is Any or ann is object or type(value) is ann:  # common cases: no typing calls
        return True
    ann = _unwrap(ann)
    if ann is Any or ann is object or isinstance(ann, typing.TypeVar):
        return True
    if ann is None or ann is type(None):
        return value is None
    origin = typing.get_origin(ann)
    if origin is None:
        if isinstance(ann, type):
            try:
                return _isinstance(value, ann)
            except TypeError:  # non-runtime-checkable protocols and the like
                return True
        return True
    args = typing.get_args(ann)
    if _is_union(origin):
        return any(value_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is cabc.Callable:
        return callable(value)
    if not isinstance(origin, type):
        return True
    try:
        if not isinstance(value, origin):
            return False
    except TypeError:
        return True
    return _args_match(value, origin, args)


def _args_match(value: Any, origin: type, args: tuple[Any, ...]) -> bool:
    if not args:
        return True
    if issubclass(origin, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return all(value_matches(v, args[0]) for v in _sample(list(value)))
        if args == ((),):
            return len(value) == 0
        return len(value) == len(args) and all(map(value_matches, value, args))
    if issubclass(origin, cabc.Mapping) and len(args) == 2:
        items = _sample(list(value.items()))
        return all(value_matches(k, args[0]) and value_matches(v, args[1]) for k, v in items)
    if issubclass(origin, (cabc.Sequence, cabc.Set)) and len(args) == 1:
        if isinstance(value, (str, bytes)):
            return True
        return all(value_matches(v, args[0]) for v in _sample(list(value)))
    return True


def is_compatible(produced: Any, expected: Any) -> bool:
    """Whether a processor declared to return ``produced`` can feed an ``expected`` parameter.

    Only clear mismatches are rejected: ``Any`` or an unknown form on either
    side is compatible.

    Examples
    --------
    >>> is_compatible(int, float), is_compatible(str, int)
    (True, False)
    >>> is_compatible(list[int], list[str]), is_compatible(int, int | None)
    (False, True)
    """
    if expected is Any or produced is Any:
        return True
    try:
        return _is_compatible_cached(produced, expected)
    except TypeError:  # unhashable annotation objects: check without the cache
        return _is_compatible(produced, expected)


@functools.lru_cache(maxsize=4096)
def _is_compatible_cached(produced: Any, expected: Any) -> bool:
    return _is_compatible(produced, expected)


def _is_compatible(produced: Any, expected: Any) -> bool:
    produced, expected = _unwrap(produced), _unwrap(expected)
    if produced is Any or expected is Any or expected is object:
        return True
    if isinstance(produced, typing.TypeVar) or isinstance(expected, typing.TypeVar):
        return True
    p_origin, e_origin = typing.get_origin(produced), typing.get_origin(expected)
    if _is_union(p_origin):
        return all(is_compatible(p, expected) for p in typing.get_args(produced))
    if _is_union(e_origin):
        return any(is_compatible(produced, e) for e in typing.get_args(expected))
    if produced is None or produced is type(None):
        return expected is None or expected is type(None)
    p_cls = p_origin or produced
    e_cls = e_origin or expected
    if not (isinstance(p_cls, type) and isinstance(e_cls, type)):
        return True
    if not (issubclass(p_cls, e_cls) or p_cls in _NUMERIC_TOWER.get(e_cls, ())):
        return _maybe_protocol(p_cls, e_cls)
    p_args, e_args = typing.get_args(produced), typing.get_args(expected)
    if not p_args or not e_args or len(p_args) != len(e_args):
        return True
    pairs = zip(p_args, e_args, strict=True)
    return all(a is Ellipsis or b is Ellipsis or is_compatible(a, b) for a, b in pairs)


def _maybe_protocol(p_cls: type, e_cls: type) -> bool:
    """Abstract collection/protocol expectations that a concrete class might still satisfy."""
    if getattr(e_cls, "_is_protocol", False):
        return True
    # e.g. a processor declared to return `object` subclass hierarchies unknown to us
    return p_cls is object
