"""A batch of items, and the ``action`` marker for its chainable methods.

``Batch`` is deliberately small: an ordered container of items (``data``) with a
label for each item (``indices``). Subclasses add actions, methods that transform
the batch and return a batch, so that calls chain::

    batch.load().resize(64).normalize()

Most actions process every item the same way and are run item by item with
`incgraph.parallel.inbatch_parallel`; ``Batch`` itself knows nothing about
threads or processes.

Labels default to positions ``0 .. n-1``, so ``batch.data[index]`` and
``batch[index]`` agree for a batch built without ``index=``. With labels (file
names, ids), ``batch[label]`` looks the item up by label and ``batch.data[pos]``
by position.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["Batch", "action"]

_F = TypeVar("_F", bound=Callable[..., Any])


class Batch:
    """An ordered container of items, each with a hashable label.

    Parameters
    ----------
    data : sequence
        The items: a list, a tuple, a numpy array (its first axis), anything with
        ``len`` and integer indexing. It is kept as given, not copied.
    index : sequence of hashable, optional
        One label per item, unique. Defaults to the positions ``0 .. len(data)-1``.

    Attributes
    ----------
    indices : tuple
        The labels, in item order. This is what an ``init`` function usually returns.
    data : sequence
        The items. Assigning a new sequence of the same length replaces them; a
        ``post`` function typically does ``self.data = results`` and returns ``self``.

    Examples
    --------
    >>> batch = Batch(["a.png", "b.png"], index=["a", "b"])
    >>> len(batch), batch.indices, batch["b"]
    (2, ('a', 'b'), 'b.png')
    >>> Batch([10, 20, 30]).indices
    (0, 1, 2)
    """

    def __init__(self, data: Sequence[Any], index: Sequence[Hashable] | None = None) -> None:
        n_items = len(data)
        labels = tuple(range(n_items)) if index is None else tuple(index)
        if len(labels) != n_items:
            raise ValueError(
                f"Batch: index has {len(labels)} labels for {n_items} items; "
                "pass one label per item or leave index out"
            )
        positions = {label: pos for pos, label in enumerate(labels)}
        if len(positions) != n_items:
            raise ValueError("Batch: index labels must be unique; found duplicates")
        self._data = data
        self._indices = labels
        self._positions = positions

    @property
    def indices(self) -> tuple[Hashable, ...]:
        """The item labels, in order."""
        return self._indices

    @property
    def data(self) -> Sequence[Any]:
        """The items, in the order of `indices`."""
        return self._data

    @data.setter
    def data(self, items: Sequence[Any]) -> None:
        if len(items) != len(self._indices):
            raise ValueError(
                f"{type(self).__name__}.data: got {len(items)} items for "
                f"{len(self._indices)} labels; build a new batch to change its length"
            )
        self._data = items

    def get_pos(self, label: Hashable) -> int:
        """Return the position of the item labelled ``label``.

        Examples
        --------
        >>> Batch("xyz", index=["a", "b", "c"]).get_pos("c")
        2
        """
        try:
            return self._positions[label]
        except KeyError:
            raise KeyError(
                f"{type(self).__name__}: no item labelled {label!r}; "
                f"labels are {_preview(self._indices)}"
            ) from None

    def __getitem__(self, label: Hashable) -> Any:
        return self._data[self.get_pos(label)]

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[Any]:
        return (self._data[pos] for pos in range(len(self._indices)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} items, indices={_preview(self._indices)})"


def _preview(labels: tuple[Hashable, ...], limit: int = 5) -> str:
    shown = ", ".join(repr(label) for label in labels[:limit])
    more = ", ..." if len(labels) > limit else ""
    return f"({shown}{more})"


def action(method: _F) -> _F:
    """Mark a batch method as an action: a step that returns a batch, so calls chain.

    The wrapper checks the return value: an action that returns something other
    than a `Batch` (a ``post`` function that forgot ``return self``) raises
    a ``TypeError`` naming the action at once, instead of an ``AttributeError`` on
    the next call in the chain. Marked methods carry ``is_action = True``.

    Examples
    --------
    >>> class Numbers(Batch):
    ...     @action
    ...     def double(self):
    ...         self.data = [x * 2 for x in self.data]
    ...         return self
    >>> Numbers([1, 2]).double().double().data
    [4, 8]
    """

    @functools.wraps(method)
    def run_action(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        if not isinstance(result, Batch):
            raise TypeError(
                f"action {type(self).__name__}.{method.__name__} returned "
                f"{type(result).__name__}, not a Batch; return self (or a new batch) "
                "so that actions can be chained"
            )
        return result

    run_action.is_action = True  # type: ignore[attr-defined]
    return run_action  # type: ignore[return-value]
