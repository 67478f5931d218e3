"""Which part of a value cannot be pickled, said as a path a person can act on.

Design note
-----------
A result reaches the store as a pickle, and a result computed in a worker
process reaches the caller as one. When pickling fails, Python names a type
(``cannot pickle '_io.TextIOWrapper' object``) but not where in the value it
sits. `unpicklable_part` finds it: it walks into the parts of the value
(dict values, sequence and set elements, instance attributes and slots) and
follows the first part that does not pickle on its own, down to one whose
parts all pickle. It answers with a path and a type, such as
``result['model'].fh: _io.TextIOWrapper``. It is only called once pickling
failed, so the walk (which pickles parts again) costs nothing on success.

`check_sendable` is what a worker process asks before handing a result
back: the result must pickle with the standard pickler, as the store will
pickle it. Executors that ship values between processes (loky, dask) pickle
with cloudpickle, which quietly turns an open file into a ``StringIO`` of its
contents; checking with the standard pickler first makes every executor refuse
the same results. Classes and functions are left out of the check (cloudpickle
ships those defined in ``__main__`` by value, the standard pickler cannot find
them in a worker); the store's own pickle, in the caller's process, judges
them. Large buffers (numpy arrays) are not copied: they are handed to a
buffer callback (pickle protocol 5) and dropped, and the pickle goes to a sink
that keeps nothing.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

__all__ = ["check_sendable", "pickle_error", "type_name", "unpicklable_part"]

_MAX_DEPTH = 64


class _Sink:
    """A file that keeps nothing: pickling into it only checks that pickling works."""

    def write(self, data: Any) -> int:
        return len(data)


def _out_of_band(buffer: pickle.PickleBuffer) -> bool:
    return False  # never copied into the stream


class _LenientPickler(pickle.Pickler):
    """The standard pickler, minus classes and functions (see the module note)."""

    def reducer_override(self, obj: Any) -> Any:
        if obj is not int and isinstance(obj, (type, types.FunctionType)):
            return (int, ())  # stands in for it (``int`` itself pickles by reference)
        return NotImplemented


def pickle_error(value: Any, *, lenient: bool = False) -> Exception | None:
    """The exception pickling ``value`` raises (``None`` if it pickles).

    With ``lenient``, classes and functions inside ``value`` are not checked.

    Examples
    --------
    >>> import threading
    >>> pickle_error({"a": [1, 2]}) is None
    True
    >>> type(pickle_error(threading.Lock())).__name__
    'TypeError'
    >>> pickle_error(lambda: 1, lenient=True) is None
    True
    """
    try:
        pickle.Pickler(_Sink(), protocol=5, buffer_callback=_out_of_band).dump(value)
        return None
    except RecursionError:
        return None  # deep, not unpicklable: the store's own pickle decides
    except Exception as exc:
        if not lenient:
            return exc
    try:
        _LenientPickler(_Sink(), protocol=5, buffer_callback=_out_of_band).dump(value)
    except RecursionError:
        return None
    except Exception as exc:
        return exc
    return None


def type_name(value: Any) -> str:
    """``module.QualifiedName`` of ``value``'s type (``_io.TextIOWrapper``; builtins bare).

    Examples
    --------
    >>> type_name(open), type_name(1)
    ('builtin_function_or_method', 'int')
    """
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def unpicklable_part(
    value: Any,
    root: str = "result",
    *,
    lenient: bool = False,
    error_of: Callable[[Any], Exception | None] | None = None,
) -> str:
    """Where in ``value`` the part that cannot be pickled is, and its type.

    Parameters
    ----------
    value : object
        A value that does not pickle.
    root : str
        What the path starts with.
    lenient : bool
        Leave classes and functions out of the check (as `check_sendable` does).
    error_of : callable, optional
        ``error_of(part)``: the error pickling ``part`` raises, or ``None``; by
        default `pickle_error`. (Pass cloudpickle's to follow what it
        pickles by value: the globals, closures and defaults of functions and
        the attributes of classes defined in ``__main__``.)

    Examples
    --------
    >>> import threading
    >>> class Model:
    ...     def __init__(self):
    ...         self.weights = [1.0, 2.0]
    ...         self.lock = threading.Lock()
    >>> unpicklable_part({"model": Model(), "n": 3})
    "result['model'].lock: _thread.lock"
    >>> unpicklable_part([1, threading.Lock()])
    'result[1]: _thread.lock'
    """
    if error_of is None:
        error_of = partial(pickle_error, lenient=lenient)
    seen: set[int] = set()
    path, part = root, value
    for _ in range(_MAX_DEPTH):
        seen.add(id(part))
        for child_path, child in _parts(part, path):
            if id(child) not in seen and error_of(child) is not None:
                path, part = child_path, child
                break
        else:
            break
    return f"{path}: {type_name(part)}"


def _parts(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The parts of ``value`` a pickle would contain, each with its path."""
    if isinstance(value, types.FunctionType):
        yield from _function_parts(value, path)
        return
    if isinstance(value, type):
        for name, item in vars(value).items():
            if name not in ("__dict__", "__weakref__"):
                yield f"{value.__qualname__}.{name}", item
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}[{key!r}]", item
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield f"{path}[{i}]", item
        return
    if isinstance(value, (set, frozenset)):
        for item in value:
            yield f"{path} (element {item!r})", item
        return
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        for name, item in attributes.items():
            yield f"{path}.{name}", item
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(value, name):
                yield f"{path}.{name}", getattr(value, name)


def _function_parts(func: types.FunctionType, path: str) -> Iterator[tuple[str, Any]]:
    """What pickling a function by value takes along: the globals its code reads, its
    closure and its defaults."""
    scope = func.__globals__
    for name in sorted(_global_names(func.__code__)):
        if name in scope:
            yield f"{path} -> global {name}", scope[name]
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or (), strict=False):
        try:
            yield f"{path} -> {name} (closure)", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for i, default in enumerate(func.__defaults__ or ()):
        yield f"{path} -> default {i}", default


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, comprehensions
            names |= _global_names(const)
    return names


def check_sendable(value: Any) -> tuple[str, Exception] | None:
    """``None`` if ``value`` pickles (classes and functions aside), else (part, error).

    ``part`` is `unpicklable_part`'s answer.

    Examples
    --------
    >>> import io
    >>> check_sendable([1, "a"]) is None
    True
    >>> check_sendable({"log": io.StringIO()}) is None
    True
    """
    error = pickle_error(value, lenient=True)
    if error is None:
        return None
    return unpicklable_part(value, lenient=True), error
