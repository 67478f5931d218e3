"""How one ``init`` entry becomes the arguments of one parallel call.

``init`` returns one entry per call. Its shape decides the arguments:

==========================================  ===================================
entry                                       call
==========================================  ===================================
a mapping ``{"a": 1}``                      ``fn(a=1)``
a 2-tuple ``([1, 2], {"a": 3})``            ``fn(1, 2, a=3)``
another sequence: list, 1-D+ numpy array,   ``fn(*entry)``
tuple of any other length, range
anything else: scalar, str, bytes, 0-d      ``fn(entry)``
array, set, pandas object, None
==========================================  ===================================

A 2-tuple is always read as ``(args, kwargs)``: its first element must be a
sequence and its second a mapping, or the run stops with a ``TypeError`` that says
to return a list for two positional arguments. This is the original in-batch
library's rule; checking it catches ``(data, index)`` written where
``[data, index]`` was meant, which would otherwise fail in every call with a
confusing message.

Call-time arguments of the action come after the entry's: positionals are
appended, keywords are added. A keyword given both by the entry and at call time
is ambiguous and raises before any call runs.

pandas objects are deliberately scalars even though they have ``len`` and
``__getitem__``: unpacking a DataFrame would pass its column labels.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Call", "calls_from_entries", "is_positional_sequence"]

Call = tuple[tuple[Any, ...], Mapping[str, Any]]
"""The positional and keyword arguments of one parallel call."""

_TEXT = (str, bytes, bytearray)
_PLAIN_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_NO_KWARGS: Mapping[str, Any] = {}


def is_positional_sequence(value: Any) -> bool:
    """Return whether an entry is unpacked as positional arguments.

    Examples
    --------
    >>> is_positional_sequence([1, 2]), is_positional_sequence("ab"), is_positional_sequence(3)
    (True, False, False)
    """
    if isinstance(value, Sequence):
        return not isinstance(value, _TEXT)
    numpy = sys.modules.get("numpy")  # an ndarray exists only if numpy is imported
    return numpy is not None and isinstance(value, numpy.ndarray) and value.ndim > 0


def calls_from_entries(
    entries: Any,
    call_args: tuple[Any, ...],
    call_kwargs: Mapping[str, Any],
    where: str,
) -> list[Call]:
    """Turn what ``init`` returned into one `Call` per entry.

    Parameters
    ----------
    entries : iterable
        The return value of ``init``.
    call_args, call_kwargs
        The action's call-time arguments, added after each entry's.
    where : str
        Names the action and its init in error messages.

    Examples
    --------
    >>> calls_from_entries([7, [1, 2], {"a": 3}, ([4], {"b": 5})], ("x",), {}, "demo")
    [((7, 'x'), {}), ((1, 2, 'x'), {}), (('x',), {'a': 3}), ((4, 'x'), {'b': 5})]
    """
    scalar_kwargs = call_kwargs if call_kwargs else _NO_KWARGS
    return [
        ((entry, *call_args), scalar_kwargs)
        if type(entry) in _PLAIN_SCALARS  # the common case, kept off the slower ABC checks
        else _call_from_entry(entry, pos, call_args, call_kwargs, where)
        for pos, entry in enumerate(_entry_list(entries, where))
    ]


def _entry_list(entries: Any, where: str) -> Iterable[Any]:
    if isinstance(entries, (Mapping, *_TEXT)) or not isinstance(entries, Iterable):
        raise TypeError(
            f"{where} returned {type(entries).__name__}; it must return a list "
            "(or another iterable) with one entry per parallel call"
        )
    return entries


def _call_from_entry(
    entry: Any,
    pos: int,
    call_args: tuple[Any, ...],
    call_kwargs: Mapping[str, Any],
    where: str,
) -> Call:
    if isinstance(entry, Mapping):
        args: tuple[Any, ...] = ()
        kwargs: Mapping[str, Any] = entry
    elif isinstance(entry, tuple) and len(entry) == 2:
        args, kwargs = _split_args_kwargs(entry, pos, where)
    elif is_positional_sequence(entry):
        args, kwargs = tuple(entry), _NO_KWARGS
    else:
        args, kwargs = (entry,), _NO_KWARGS
    return args + call_args, _merge_kwargs(kwargs, call_kwargs, pos, where)


def _split_args_kwargs(
    entry: tuple[Any, Any], pos: int, where: str
) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
    args, kwargs = entry
    if is_positional_sequence(args) and isinstance(kwargs, Mapping):
        return tuple(args), kwargs
    raise TypeError(
        f"{where} returned entry {pos} = {_short_repr(entry)}, a 2-tuple, which is "
        "reserved for (args, kwargs): args must be a list or tuple and kwargs a dict. "
        "To pass two positional arguments return a list [a, b] instead of a tuple (a, b)"
    )


def _merge_kwargs(
    entry_kwargs: Mapping[str, Any], call_kwargs: Mapping[str, Any], pos: int, where: str
) -> Mapping[str, Any]:
    if not call_kwargs:
        return entry_kwargs
    if not entry_kwargs:
        return call_kwargs
    clash = sorted(entry_kwargs.keys() & call_kwargs.keys())
    if clash:
        raise TypeError(
            f"{where} returned entry {pos} with keyword(s) {', '.join(clash)} that the "
            "call also passes; give each keyword in one place only"
        )
    return {**entry_kwargs, **call_kwargs}


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
