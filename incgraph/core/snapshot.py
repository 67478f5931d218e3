"""A constant's value as it was when it was set: every reader gets its own copy.

Design note
-----------
``node.set_value(v)`` takes a `Snapshot` of ``v``: its pickle, made at
once, and (by the node) its data version, hashed at the same moment. A run
uses the snapshot, never ``v`` itself, so changing ``v`` in place after
``set_value`` changes neither the value a run sees nor its cache key; call
``set_value`` again to use the new value. Every read (each consumer's input,
``node.value``) unpickles a private copy, so a consumer that mutates its input
changes neither the constant nor what a sibling consumer sees.

Values of the immutable built-in types are kept as they are (nothing to
copy), and so are instances of classes that set ``_incgraph_share_as_is =
True``: incgraph's own read-only handles (a flow's context, which carries the
run's store) whose pickle would reopen a resource rather than copy data. A
value that cannot be pickled (an open handle, a lock) is kept as it is
too: it is handed to every reader as the one shared object, and its data
version is hashed again each time a run asks for it, so a change made to it in
place is seen by the next run.
"""

from __future__ import annotations

import pickle
from typing import Any, Final

__all__ = ["Snapshot"]

_IMMUTABLE: Final = frozenset({type(None), bool, int, float, complex, str, bytes})


class Snapshot:
    """A value frozen into bytes when it was set; `value` returns a private copy.

    Examples
    --------
    >>> value = [1, 2]
    >>> snap = Snapshot(value)
    >>> value.append(3)
    >>> snap.value(), snap.value() is snap.value(), snap.copied
    ([1, 2], False, True)
    """

    __slots__ = ("_data", "_shared")

    def __init__(self, value: Any) -> None:
        self._data: bytes | None = None
        self._shared: Any = value
        if _is_immutable(value):
            return
        try:
            self._data = pickle.dumps(value, protocol=5)
        except Exception:  # cannot be pickled: shared as is (see the module note)
            return
        self._shared = None

    @property
    def copied(self) -> bool:
        """Whether reads get copies (False: an immutable or unpicklable value, shared)."""
        return self._data is not None

    @property
    def frozen(self) -> bool:
        """Whether the value cannot change any more (a copy, or an immutable built-in)."""
        return self._data is not None or _is_immutable(self._shared)

    def value(self) -> Any:
        """The value: a new copy of the pickled one, or the shared object."""
        data = self._data
        return self._shared if data is None else pickle.loads(data)


def _is_immutable(value: Any) -> bool:
    """An immutable built-in, or an instance of a class shared as is (see the module note)."""
    cls = type(value)
    return cls in _IMMUTABLE or getattr(cls, "_incgraph_share_as_is", False) is True
