"""How the objects a processor's code reaches are classified for its code version.

Design note
-----------
The walk in ``_code`` meets every object a processor's code can reach: module
constants, class attributes, closure cells, defaults, members of containers,
the state of instances. Each one either contributes to the code version or
stops the run; nothing is left out silently. This module holds the small,
pure decisions the walk asks for:

* `is_simple` / `is_plain_data`: immutable data, and containers of
  it, that enter by their data version;
* `allowlisted`: the short list of objects that cannot change results
  and are recorded by type only: loggers, locks and other threading
  primitives, executors, progress bars, the standard streams, files opened
  only for writing (a log file);
* `special_token`: objects with an obvious identity that
  ``data_version`` does not know: typing constructs (``Optional[int]``),
  compiled regular expressions, slot and named-tuple field descriptors;
* `pure_python`: instances of library classes written in Python only (an
  ``argparse.Namespace``, a scikit-learn estimator, ``dataclasses.MISSING``):
  their attributes are all of their state, so they enter by their class's
  name and their attributes, like instances of your own classes;
* `library_global`: an object a library module holds under a name (``from
  random import shuffle``, ``from scipy.stats import norm``, ``from
  numpy.random import rand``) is library code, like ``random.shuffle`` reached
  through the module: it enters by that ``module.name``;
* `instance_state`: the attributes (``__dict__`` and slots) of an
  instance of a user class, which enter by value like everything else.
"""

from __future__ import annotations

import _thread
import dataclasses
import enum
import fractions
import io
import logging
import operator
import re
import sys
import threading
import typing
from decimal import Decimal
from types import GetSetDescriptorType, MemberDescriptorType
from typing import Final

from incgraph.hashing._data import data_version
from incgraph.hashing._usercode import is_user_module

__all__ = [
    "allowlisted",
    "instance_state",
    "is_plain_data",
    "is_simple",
    "library_global",
    "pure_python",
    "special_token",
]

_SIMPLE_TYPES: Final = frozenset(
    {type(None), bool, int, float, complex, str, bytes, Decimal, fractions.Fraction}
)
PLAIN_DATA_CHECK_LIMIT: Final = 10_000

_SYNC_TYPES: Final = (
    _thread.LockType,
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
    threading.Semaphore,
    threading.Barrier,
    threading.local,
    logging.Logger,
    logging.LoggerAdapter,
    logging.Handler,
)
OPERATOR_CALLABLES: Final = (operator.itemgetter, operator.attrgetter, operator.methodcaller)
_ALLOWED_MODULE_PREFIXES: Final = (
    "tqdm.",
    "concurrent.futures.",
    "asyncio.locks",
    "multiprocessing.synchronize",
)


def is_simple(value: object, depth: int = 0) -> bool:
    """Whether a value is immutable data (numbers, strings, and tuples/frozen records of them)."""
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


def is_plain_data(value: object, depth: int = 0) -> bool:
    """Whether a value is simple data or a list/tuple/dict/set of it (checked up to a size).

    Examples
    --------
    >>> is_plain_data({"grid": [0.1, 1.0]}), is_plain_data([print])
    (True, False)
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
    if len(items) > PLAIN_DATA_CHECK_LIMIT:  # type: ignore[arg-type]
        return False
    return all(is_plain_data(item, depth + 1) for item in items)  # type: ignore[attr-defined]


def allowlisted(value: object) -> bool:
    """Whether ``value`` cannot change results and is recorded by its type only.

    Examples
    --------
    >>> allowlisted(logging.getLogger("x")), allowlisted(threading.Lock()), allowlisted([])
    (True, True, False)
    """
    if isinstance(value, _SYNC_TYPES):
        return True
    if isinstance(value, io.IOBase):  # a log file: code can write to it, never read from it
        return value.closed or not value.readable()
    if any(value is stream for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
        return True
    module = getattr(type(value), "__module__", "") or ""
    return module.startswith(_ALLOWED_MODULE_PREFIXES)


def special_token(value: object) -> str | None:
    """A deterministic token for objects ``data_version`` does not know, or None."""
    if isinstance(value, re.Pattern):
        return f"pattern {data_version((value.pattern, value.flags))}"
    module = getattr(type(value), "__module__", "")
    if module in ("typing", "typing_extensions", "types") and (
        typing.get_origin(value) is not None or module != "types"
    ):
        return f"typing {value!r}"
    if isinstance(value, MemberDescriptorType | GetSetDescriptorType):
        return f"descriptor {type(value).__qualname__} {value.__name__}"
    if type(value).__qualname__ == "_tuplegetter":  # a named tuple's field: its index is in _fields
        return "descriptor _tuplegetter"
    return None


def library_global(value: object) -> str | None:
    """``module.name`` where a library module holds ``value`` itself, or None.

    Examples
    --------
    >>> import random
    >>> library_global(random.shuffle), library_global(object())
    ('random.shuffle', None)
    """
    owner = type(getattr(value, "__self__", None))  # a method bound to a library's instance
    names = (getattr(value, "__module__", None), type(value).__module__, owner.__module__)
    for module_name in dict.fromkeys(name for name in names if isinstance(name, str)):
        module = sys.modules.get(module_name)
        if module is None or is_user_module(module):
            continue
        for name, found in list(vars(module).items()):
            if found is value:
                return f"{module_name}.{name}"
    return None


def instance_state(value: object) -> dict[str, object]:
    """An instance's attributes: its ``__dict__`` and every slot that is set.

    Read without ``__getattr__`` (a proxy's may raise or invent attributes).
    """
    try:
        own = object.__getattribute__(value, "__dict__")
    except AttributeError:
        own = {}
    state: dict[str, object] = dict(own) if isinstance(own, dict) else {}
    for klass in type(value).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                state[name] = object.__getattribute__(value, name)
            except AttributeError:
                continue
    return state


_HEAPTYPE: Final = 1 << 9


def pure_python(value: object) -> bool:
    """Whether ``value`` is an instance of classes written in Python only, so that its
    attributes (``__dict__`` and slots) are all of its state.

    Examples
    --------
    >>> import argparse, dataclasses
    >>> pure_python(argparse.Namespace(k=2)), pure_python(dataclasses.MISSING)
    (True, True)
    >>> pure_python(re.compile("a")), pure_python([1])
    (False, False)
    """
    cls = type(value)
    slots = 0
    for klass in cls.__mro__[:-1]:
        if not klass.__flags__ & _HEAPTYPE:
            return False
        declared = klass.__dict__.get("__slots__", ())
        slots += 1 if isinstance(declared, str) else len(declared)
    return cls.__basicsize__ <= object.__basicsize__ + 8 * (slots + 2)
