"""Code versions: fingerprints of processors and functions, and what they follow.

Design note
-----------
A code version is ``combine("CodeVersion", fingerprint(obj), data_version(version))``.

The *fingerprint* is a hash of the sorted set of *entries* collected by walking
from ``obj`` through the user's own code (``_usercode``):

* a function contributes its normalized source (``_source``), or, when no
  source matches the loaded code (exec'd code, a REPL, a file edited since
  import), its bytecode: ``co_code``, constants (recursively), names, argument
  counts and flags, tagged with the interpreter's cache tag, because bytecode
  changes with the Python version;
* a class contributes each class in its MRO that is user code: its methods
  (plain, static, class, property accessors, cached properties), nested
  classes, and class attributes of simple immutable types by value;
* every global name a function loads, and every dotted chain through user
  modules (``helpers.clean``), is resolved through ``__globals__``; closure
  cells likewise. User functions and classes found this way are walked in
  turn (cycles are fine: each is visited once); values of *simple immutable
  types* (None, bool, int, float, complex, str, bytes, Decimal, Fraction, enum
  members, and tuples, frozensets, named tuples and frozen dataclasses of
  those) contribute their data version, so ``THRESHOLD = 0.5 -> 0.6``
  invalidates; so do lists, dicts and sets of such values up to 10,000 items
  (``GRID = [0.1, 1.0]``), by their value when first fingerprinted in the
  process (rebinding the name is seen; mutating in place is not). Library
  code, modules and other objects (a loaded model, a big or non-data
  container) are not followed: pass such things as inputs, or bump
  ``version``.
* names inside annotations are part of the normalized source but are not
  followed: ``def __call__(self, up: Upstream)`` does not make the layer's
  version depend on ``Upstream``'s code.

A root that is not user code (``len``, ``numpy.sqrt``, a library class) is
fingerprinted by its qualified name and its top-level package's
``__version__``.

Memo. Walking parses source, so each function's analysis is cached in a
``WeakKeyDictionary`` (valid while ``fn.__code__`` is the same object), and
each root's fingerprint is cached together with the list of lookups the walk
made (namespace, name, object found). A later call re-checks those lookups by
identity, a few dict accesses per reference, and walks again only if one of
them changed: redefining a helper or a constant in a notebook cell invalidates
every processor that uses it even though the processor class itself is the
same object.
"""

from __future__ import annotations

import dataclasses
import enum
import fractions
import functools
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import BuiltinFunctionType, CellType, CodeType, FunctionType, MethodType, ModuleType
from typing import Any, Final
from weakref import WeakKeyDictionary

from incgraph.errors import HashingError
from incgraph.hashing._data import data_version
from incgraph.hashing._scheme import combine
from incgraph.hashing._source import find_definition
from incgraph.hashing._usercode import is_user_module, is_user_object, module_of
from incgraph.sentinels import MISSING

__all__ = ["code_version", "fingerprint"]

_SIMPLE_TYPES: Final = frozenset(
    {type(None), bool, int, float, complex, str, bytes, Decimal, fractions.Fraction}
)
_SKIPPED_CLASS_ATTRS: Final = frozenset(
    {
        "__dict__",
        "__doc__",
        "__module__",
        "__qualname__",
        "__weakref__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
        "__slots__",
        "__orig_bases__",
        "__parameters__",
        "__abstractmethods__",
        "_abc_impl",
        "__slotnames__",
    }
)


def is_simple(value: object, depth: int = 0) -> bool:
    """Whether a value is immutable data a code version may include by value."""
    cls = type(value)
    if cls in _SIMPLE_TYPES or isinstance(value, enum.Enum):
        return True
    if depth > 8:
        return False
    if cls is tuple or cls is frozenset:
        return all(is_simple(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    if isinstance(value, tuple) and hasattr(cls, "_fields"):
        return all(is_simple(item, depth + 1) for item in value)
    if dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        fields = dataclasses.fields(cls)
        return all(is_simple(getattr(value, f.name), depth + 1) for f in fields)
    return False


_MUTABLE_DATA_LIMIT: Final = 10_000


def is_plain_data(value: object, depth: int = 0) -> bool:
    """Whether a value is a (possibly mutable) container of simple data: list/dict/set of them.

    Such module-level constants (``GRID = [0.1, 1.0]``) are part of a code version by
    their value when the code is first fingerprinted in a process; afterwards, like
    every other reference, they are re-checked by identity only. So editing the
    source or rebinding the name (a re-run notebook cell) invalidates, while in-place
    mutation (``GRID.append(x)``, or a memo dict filling up) does not: state kept in a
    module-level container must not make every run a miss. Containers over
    ``_MUTABLE_DATA_LIMIT`` items are not followed (pass them as inputs).
    """
    if is_simple(value):
        return True
    if depth > 8:
        return False
    cls = type(value)
    if cls in (list, tuple, set, frozenset):
        items = value
    elif cls is dict:
        items = [*value.keys(), *value.values()]  # type: ignore[attr-defined]
    else:
        return False
    if len(items) > _MUTABLE_DATA_LIMIT:  # type: ignore[arg-type]
        return False
    return all(is_plain_data(item, depth + 1) for item in items)  # type: ignore[attr-defined]


def label(obj: object) -> str:
    """``module.qualname`` of a function or class."""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"{getattr(obj, '__module__', None)}.{qualname}"


# -- per-function analysis ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Analysis:
    code: CodeType
    entry: str
    names: frozenset[str]
    chains: frozenset[tuple[str, ...]]


_ANALYSES: WeakKeyDictionary[FunctionType, _Analysis] = WeakKeyDictionary()


def _analyse(fn: FunctionType) -> _Analysis:
    cached = _ANALYSES.get(fn)
    if cached is not None and cached.code is fn.__code__:
        return cached
    definition = find_definition(fn)
    if definition is not None:
        entry = f"source {label(fn)} {combine('Source', definition.dump)}"
        analysis = _Analysis(fn.__code__, entry, definition.names, definition.chains)
    else:
        names = frozenset(_code_names(fn.__code__))
        entry = f"bytecode {label(fn)} {data_version(_code_tuple(fn.__code__))}"
        analysis = _Analysis(fn.__code__, entry, names, frozenset())
    _ANALYSES[fn] = analysis
    return analysis


def _code_tuple(code: CodeType) -> tuple[object, ...]:
    consts = tuple(_code_tuple(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    return (
        sys.implementation.cache_tag,
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
    )


def _code_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _code_names(const)
    return names


# -- the walk ------------------------------------------------------------------------


class _Walk:
    """Collects a root's entries and the lookups that justify them."""

    def __init__(self) -> None:
        self.entries: set[str] = set()
        self.lookups: list[tuple[Mapping[str, Any], str, object]] = []
        self.cells: list[tuple[CellType, object]] = []
        self.codes: list[tuple[FunctionType, CodeType]] = []
        self.class_keys: list[tuple[Mapping[str, Any], tuple[str, ...]]] = []

        self.recorded: set[tuple[int, str]] = set()
        self.seen: set[int] = set()
        self.todo: list[object] = []

    def run(self, root: object) -> str:
        self.todo.append(root)
        while self.todo:
            self.visit(self.todo.pop())
        self.seen.clear()
        self.recorded.clear()
        return combine("CodeFingerprint", label(root), *sorted(self.entries))

    def first_visit(self, obj: object) -> bool:
        if id(obj) in self.seen:
            return False
        self.seen.add(id(obj))
        return True

    def visit(self, obj: object) -> None:
        if isinstance(obj, FunctionType):
            if self.first_visit(obj):
                self.visit_function(obj)
        elif isinstance(obj, type):
            for klass in obj.__mro__:
                if klass is not object and is_user_object(klass) and self.first_visit(klass):
                    self.visit_class(klass)

    def visit_function(self, fn: FunctionType) -> None:
        analysis = _analyse(fn)
        self.codes.append((fn, analysis.code))
        self.entries.add(analysis.entry)
        namespace = fn.__globals__
        for name in analysis.names:
            self.resolve(namespace, (name,), f"{label(fn)}:{name}")
        for chain in analysis.chains:
            self.resolve(namespace, chain, f"{label(fn)}:{'.'.join(chain)}")
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:
                contents = MISSING
            self.cells.append((cell, contents))
            self.depend(contents, f"{label(fn)}:<cell {name}>")
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            self.depend(wrapped, f"{label(fn)}:__wrapped__")

    def visit_class(self, klass: type) -> None:
        namespace = klass.__dict__
        self.class_keys.append((namespace, tuple(namespace)))
        self.entries.add(f"class {label(klass)}")
        for name, attr in namespace.items():
            if name in _SKIPPED_CLASS_ATTRS:
                continue
            if name.startswith("__") and name.endswith("__") and is_plain_data(attr):
                continue  # interpreter bookkeeping (e.g. copyreg's __slotnames__), not code
            self.record(namespace, name, attr)
            for member in _members(attr):
                self.depend(member, f"{label(klass)}.{name}")

    def record(self, namespace: Mapping[str, Any], name: str, found: object) -> None:
        """Remember a lookup (once) so that a later call can re-check it."""
        key = (id(namespace), name)
        if key not in self.recorded:
            self.recorded.add(key)
            self.lookups.append((namespace, name, found))

    def resolve(self, namespace: Mapping[str, Any], chain: tuple[str, ...], where: str) -> None:
        """Look a dotted chain up, descending only through user modules."""
        value: object = MISSING
        for depth, part in enumerate(chain):
            value = namespace.get(part, MISSING)
            self.record(namespace, part, value)
            last = depth == len(chain) - 1
            if last or not isinstance(value, ModuleType) or not is_user_module(value):
                break
            namespace = value.__dict__
        if not (isinstance(value, ModuleType) or value is MISSING):
            self.depend(value, where)

    def depend(self, value: object, where: str) -> None:
        """Follow a referenced object if it is user code; include it if it is simple data."""
        if is_simple(value):
            self.entries.add(f"value {where} {data_version(value)}")
            return
        if is_plain_data(value):
            self.entries.add(f"value {where} {data_version(value)}")
            return
        target = getattr(value, "py_func", value)
        if isinstance(target, functools.partial):
            target = target.func
        if not isinstance(target, FunctionType | type):
            target = getattr(target, "__wrapped__", target)
        if isinstance(target, FunctionType | type) and is_user_object(target):
            self.todo.append(target)
            self.entries.add(f"uses {where} {label(target)}")

    def still_valid(self) -> bool:
        """Whether every lookup made by the walk still finds the same object."""
        for namespace, name, found in self.lookups:
            if namespace.get(name, MISSING) is not found:
                return False
        for cell, found in self.cells:
            if _cell_contents(cell) is not found:
                return False
        for fn, code in self.codes:
            if fn.__code__ is not code:
                return False
        return all(tuple(namespace) == keys for namespace, keys in self.class_keys)


def _cell_contents(cell: CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:
        return MISSING


def _members(attr: object) -> list[object]:
    """What a class attribute contributes: functions behind descriptors, or the value."""
    if isinstance(attr, staticmethod | classmethod):
        return [attr.__func__]
    if isinstance(attr, property):
        return [f for f in (attr.fget, attr.fset, attr.fdel) if f is not None]
    if isinstance(attr, functools.cached_property):
        return [attr.func]
    return [attr]


# -- roots -----------------------------------------------------------------------------

_ROOTS: WeakKeyDictionary[object, tuple[str, _Walk]] = WeakKeyDictionary()


def _library_fingerprint(obj: object) -> str:
    module = module_of(obj)
    top = sys.modules.get(module.__name__.partition(".")[0]) if module is not None else None
    release = getattr(top, "__version__", "")
    return combine("LibraryCode", label(obj), release if isinstance(release, str) else "")


def fingerprint(obj: object) -> str:
    """The code fingerprint of a function or class (without any declared version)."""
    if isinstance(obj, MethodType):
        return combine("BoundMethod", fingerprint(obj.__func__), label(type(obj.__self__)))
    if isinstance(obj, functools.partial):
        parts = (obj.args, obj.keywords)
        return combine("Partial", fingerprint(obj.func), data_version(parts))
    if not isinstance(obj, FunctionType | type):
        if (
            isinstance(obj, BuiltinFunctionType)
            or not callable(obj)
            or not is_user_object(type(obj))
        ):
            return _library_fingerprint(obj)
        return combine("CallableObject", fingerprint(type(obj)), data_version(obj))
    cached = _ROOTS.get(obj)
    if cached is not None and cached[1].still_valid():
        return cached[0]
    if not is_user_object(obj):
        return _library_fingerprint(obj)
    walk = _Walk()
    result = walk.run(obj)
    _ROOTS[obj] = (result, walk)
    return result


def code_version(obj: type | Callable[..., object], version: object = None) -> str:
    """Fingerprint of a processor class or a plain function, plus its declared version.

    Editing a method, a helper it calls in your own modules, or a simple
    module-level constant it reads changes the result; editing comments,
    docstrings or formatting does not. See ``docs/hashing.md``.

    Parameters
    ----------
    obj : type or callable
        A processor class, a function (queue tasks), a bound method, a
        ``functools.partial`` or a callable instance (whose state must be
        hashable by `data_version`).
    version : object, optional
        Anything `data_version` can hash; bump it to invalidate what the
        fingerprint cannot see.

    Returns
    -------
    str
        32 lowercase hex characters.

    Raises
    ------
    HashingError
        If ``version``, a partial's arguments or a callable instance's state
        cannot be hashed.

    Examples
    --------
    >>> def double(x):
    ...     return 2 * x
    >>> code_version(double) == code_version(double)
    True
    >>> code_version(double) == code_version(double, version=2)
    False
    """
    try:
        declared = data_version(version)
    except HashingError as exc:
        raise HashingError(f"code_version({label(obj)}): version: {exc}") from exc
    try:
        found = fingerprint(obj)
    except HashingError as exc:
        raise HashingError(f"code_version({label(obj)}): {exc}") from exc
    return combine("CodeVersion", found, declared)
