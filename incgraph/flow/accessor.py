"""``Accessor``: a lazy, read-only sequence over sharded artifacts and ForEach joins.

Design note
-----------
An accessor holds *entries*, never values (see `incgraph.flow.artifacts`):
each element of a shard is a small scalar kept inline or its own blob, named
by its data version. ``len`` reads nothing; ``accessor[i]`` loads element
``i`` alone; iteration loads one element at a time; a slice loads just the
elements it covers and returns a list. Nothing is cached by the accessor
itself, so holding one costs no memory beyond its entries.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from incgraph.flow.artifacts import INLINE, REF, SHARD

__all__ = ["Accessor", "resolve"]

Loader = Callable[[str], Any]


def resolve(entry: Any, load: Loader, where: str) -> Any:
    """The value an entry stands for: inline values as they are, refs loaded, shards lazily.

    Examples
    --------
    >>> from incgraph.flow.artifacts import inline, shard
    >>> resolve(inline(5), load=print, where="A.x")
    5
    >>> resolve(shard([inline(1)]), load=print, where="A.xs")
    <Accessor A.xs: 1 element(s)>
    """
    kind = entry[0]
    if kind == INLINE:
        return entry[1]
    if kind == REF:
        return load(entry[1])
    if kind == SHARD:
        return Accessor(entry[1], load, where)
    raise ValueError(f"{where}: unknown artifact entry {entry!r}")


class Accessor:
    """A lazy sequence of artifact values: ``len``, iteration, indexing and slicing.

    Downstream layers get an ``Accessor`` for every sharded attribute (even a
    one-element shard) and for every attribute of a ``ForEach`` layer (one
    element per task, in task order).

    Examples
    --------
    >>> from incgraph.flow.artifacts import inline
    >>> acc = Accessor([inline(1), inline(2), inline(3)], load=lambda dv: None, where="Shard.foo")
    >>> len(acc), acc[1], acc[-1], acc[1:]
    (3, 2, 3, [2, 3])
    >>> list(acc)
    [1, 2, 3]
    >>> acc["x"]  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Shard.foo: Accessor indices must be integers or slices, not str; ...
    """

    __slots__ = ("_entries", "_load", "_where")

    def __init__(self, entries: Sequence[Any], load: Loader, where: str) -> None:
        self._entries = entries
        self._load = load
        self._where = where

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Any]:
        for entry in self._entries:
            yield self._value(entry, self._where)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return [self._value(e, self._where) for e in self._entries[key]]
        try:
            i = operator.index(key)
        except TypeError:
            raise TypeError(
                f"{self._where}: Accessor indices must be integers or slices, not "
                f"{type(key).__name__}; use acc[0], acc[-1] or acc[1:3]"
            ) from None
        n = len(self._entries)
        if not -n <= i < n:
            raise IndexError(f"{self._where}: index {i} is out of range for {n} element(s)")
        return self._value(self._entries[i], f"{self._where}[{i % n}]")

    def _value(self, entry: Any, where: str) -> Any:
        return resolve(entry, self._load, where)

    def __repr__(self) -> str:
        return f"<Accessor {self._where}: {len(self._entries)} element(s)>"
