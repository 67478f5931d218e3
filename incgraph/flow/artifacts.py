"""Artifacts: how what a layer sets becomes a small manifest plus blobs in the store.

Design note
-----------
A layer's (or a ForEach task's) node result is a *manifest*: a dict from
attribute name to an *entry*, one of

* ``("v", value)`` - a small scalar (``None``, ``bool``, ``int``, ``float``,
  ``complex``, or ``str``/``bytes`` of at most :data:`INLINE_MAX` items) kept
  inline, so reading a ForEach's scores loads nothing;
* ``("r", data_version)`` - any other value, stored as its own blob;
* ``("s", (entry, ...))`` - a shard: every element is its own blob, so an
  :class:`~incgraph.flow.accessor.Accessor` loads element ``i`` and nothing else.

A ForEach layer's result is the tuple of its tasks' manifests, in task order
(the *join*). Manifests are plain tuples, dicts and strings, so their data
version is a cheap content hash: a task that recomputes to the same artifacts
leaves its manifest's data version unchanged and everything downstream stays a
hit (early cutoff).

A value that cannot be content-hashed (a fitted model) gets a data version
derived from what made it: the layer's code version, the data versions of its
inputs and the attribute name, just as the engine derives the data version of
an unhashable node result from its cache key.

Blobs are written before the manifest is returned, so by the time the engine
records the node's index row every blob it names is stored (blob, then row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from incgraph import hashing
from incgraph.errors import FlowDefinitionError, HashingError

__all__ = [
    "INLINE",
    "INLINE_MAX",
    "REF",
    "SHARD",
    "ArtifactWriter",
    "inline",
    "is_inline",
    "ref",
    "shard",
]

INLINE: Final = "v"
REF: Final = "r"
SHARD: Final = "s"

INLINE_MAX: Final = 256
"""Strings and bytes up to this length are kept inside the manifest."""

_INLINE_SCALARS: Final = frozenset({type(None), bool, int, float, complex})
_INLINE_SIZED: Final = frozenset({str, bytes})


def inline(value: Any) -> tuple[str, Any]:
    """An entry holding ``value`` itself."""
    return (INLINE, value)


def ref(data_version: str) -> tuple[str, str]:
    """An entry naming a blob by data version."""
    return (REF, data_version)


def shard(entries: Iterable[Any]) -> tuple[str, tuple[Any, ...]]:
    """An entry for a sharded attribute, one element entry each."""
    return (SHARD, tuple(entries))


def is_inline(value: Any) -> bool:
    """Whether ``value`` is small enough to live inside a manifest.

    Examples
    --------
    >>> is_inline(0.93), is_inline("x" * 300), is_inline([1])
    (True, False, False)
    """
    cls = type(value)
    return cls in _INLINE_SCALARS or (cls in _INLINE_SIZED and len(value) <= INLINE_MAX)


class ArtifactWriter:
    """Turns a layer's attributes into a manifest, handing blobs to ``put``.

    Parameters
    ----------
    put : callable
        ``put(data_version, value)`` stores a blob.
    identity : callable
        Returns a string that pins down the computation (layer code and input
        data versions); only called for values that cannot be content-hashed.
    where : str
        The layer (and task index) for messages, e.g. ``"Process[3]"``.
    """

    def __init__(self, put: Callable[[str, Any], None], identity: Callable[[], str], where: str):
        self._put = put
        self._identity = identity
        self._where = where

    def manifest(self, values: dict[str, Any], shards: dict[str, list[Any]]) -> dict[str, Any]:
        """The manifest of a finished layer: plain attributes and shards by name."""
        both = values.keys() & shards.keys()
        if both:
            name = sorted(both)[0]
            raise FlowDefinitionError(
                f"layer {self._where} both set self.{name} and sharded {name!r}; "
                "use one of the two for each attribute"
            )
        out: dict[str, Any] = {name: self.entry(name, v) for name, v in values.items()}
        for name, elements in shards.items():
            out[name] = shard(self._stored(f"{name}[{i}]", e) for i, e in enumerate(elements))
        return out

    def entry(self, name: str, value: Any) -> tuple[str, Any]:
        """The entry of one attribute: inline if small, else a blob."""
        return inline(value) if is_inline(value) else self._stored(name, value)

    def _stored(self, name: str, value: Any) -> tuple[str, str]:
        try:
            dv = hashing.data_version(value)
        except HashingError:
            dv = hashing.combine("FlowArtifact", self._identity(), name)
        self._put(dv, value)
        return ref(dv)
