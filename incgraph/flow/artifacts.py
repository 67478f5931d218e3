"""Artifacts: how what a layer sets becomes a small manifest plus blobs in the store.

Design note
-----------
A layer's (or a ForEach task's) node result is a *manifest*: a dict from
attribute name to an *entry*, one of

* ``("v", value)`` - a small scalar (``None``, ``bool``, ``int``, ``float``,
  ``complex``, or ``str``/``bytes`` of at most `INLINE_MAX` items) kept
  inline, so reading a ForEach's scores loads nothing;
* ``("r", data_version)`` - any other value, stored as its own blob;
* ``("s", (entry, ...))`` - a shard: one entry per element, by the same rule
  (a small scalar inline, anything else its own blob), so an
  `Accessor` loads element ``i`` and nothing
  else. Inlining small elements matters for ForEach speed: a shard of N
  numbers costs no N blob writes, and each task reads its element for free.

A ForEach layer's result is a `Join`: its tasks' manifests in task
order. A `Manifest` (and a `Join`) computes its *content hash*
once, when it is made, from the entries' data versions (`entry_key`),
and hands it to `data_version` through
``__incgraph_hash__``: the engine, the constant nodes that carry a finished
layer into later waves and the ForEach memo then hash a 32-character string
instead of walking N entries again. A task that recomputes to the same
artifacts has the same content hash, so everything downstream stays a hit
(early cutoff).

A value that cannot be content-hashed (a fitted model) gets a data version
derived from what made it: the layer's code version, the data versions of its
inputs and the attribute name, just as the engine derives the data version of
an unhashable node result from its cache key.

Blobs are written before the manifest is returned, so by the time the engine
records the node's index row every blob it names is stored (blob, then row).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, overload

from incgraph import hashing
from incgraph.errors import FlowDefinitionError, HashingError, UnstorableResultError

__all__ = [
    "INLINE",
    "INLINE_MAX",
    "REF",
    "SHARD",
    "ArtifactWriter",
    "Join",
    "Manifest",
    "Task",
    "entry_key",
    "inline",
    "is_inline",
    "ref",
    "shard",
    "task_hash",
]

INLINE: Final = "v"
REF: Final = "r"
SHARD: Final = "s"

# The content hashes of manifests, joins and tasks: hashing.combine under these domains.
_manifest_hash = hashing.combiner("FlowManifest")
_join_hash = hashing.combiner("FlowJoin")
task_hash = hashing.combiner("FlowTask")

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


def entry_key(entry: tuple[str, Any]) -> str:
    """A string that identifies an entry's content: its data version, tagged by kind.

    Examples
    --------
    >>> entry_key(ref("ab" * 16))
    'rabababababababababababababababab'
    >>> entry_key(inline(1)) == entry_key(inline(1)) != entry_key(inline(1.0))
    True
    """
    kind, payload = entry
    if kind == REF:
        return "r" + str(payload)
    if kind == INLINE:
        # Inline values are small scalars (see is_inline): type name plus repr
        # identifies them exactly (float repr round-trips, -0.0 keeps its sign)
        # and costs less than the general encoder.
        return f"v{type(payload).__name__}:{payload!r}"
    return "s" + hashing.combine("FlowShard", *[entry_key(e) for e in payload])


def inline_manifest(values: Mapping[str, Any]) -> Manifest | None:
    """The manifest of ``values`` if every one is inline (see `is_inline`), else None.

    What `ArtifactWriter.manifest` returns for such values, without a writer:
    the usual case of a ForEach task that sets a few numbers.

    Examples
    --------
    >>> inline_manifest({"score": 0.5})
    {'score': ('v', 0.5)}
    >>> inline_manifest({"model": [1, 2]}) is None
    True
    """
    out = {}
    for name, value in values.items():
        cls = type(value)
        if cls in _INLINE_SCALARS or (cls in _INLINE_SIZED and len(value) <= INLINE_MAX):
            out[name] = (INLINE, value)
        else:
            return None
    return Manifest(out)


class Manifest(dict[str, Any]):
    """Attribute name -> entry, with its content hash computed once, when first asked for.

    Examples
    --------
    >>> m = Manifest({"score": inline(0.9)})
    >>> m["score"], m.content == Manifest({"score": inline(0.9)}).content
    (('v', 0.9), True)
    """

    __slots__ = ("_content",)

    def __init__(self, entries: Mapping[str, Any] = {}, content: str | None = None) -> None:
        super().__init__(entries)
        self._content = content

    @property
    def content(self) -> str:
        """The content hash: equal entries, equal hash (see `entry_key`)."""
        content = self._content
        if content is None:
            parts = [
                f"{name}=v{type(e[1]).__name__}:{e[1]!r}"
                if e[0] == INLINE
                else f"{name}={entry_key(e)}"
                for name, e in self.items()
            ]  # entry_key(e) with its inline case written out: the usual one
            parts.sort()
            content = self._content = _manifest_hash(parts)
        return content

    def __incgraph_hash__(self) -> object:
        return self.content

    def __incgraph_refs__(self) -> list[str]:
        """The data versions of the blobs this manifest names: the store keeps them with it.

        Examples
        --------
        >>> m = Manifest({"a": ref("ab" * 16), "b": inline(1), "c": shard([ref("cd" * 16)])})
        >>> m.__incgraph_refs__() == ["ab" * 16, "cd" * 16]
        True
        """
        return list(_refs(self.values()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Manifest, (dict(self), self.content))


def _refs(entries: Iterable[tuple[str, Any]]) -> Iterator[str]:
    """The data versions named by ``entries`` (and by the elements of their shards)."""
    for kind, payload in entries:
        if kind == REF:
            yield payload
        elif kind == SHARD:
            yield from _refs(payload)


class Join:
    """A ForEach layer's result: its tasks' manifests in task order, with a content hash.

    Examples
    --------
    >>> j = Join([Manifest({"foo": inline(1)}), Manifest({"foo": inline(2)})])
    >>> len(j), j[1]["foo"]
    (2, ('v', 2))
    """

    __slots__ = ("content", "manifests")

    def __init__(self, manifests: Iterable[Manifest], content: str | None = None) -> None:
        self.manifests = tuple(manifests)
        if content is None:
            content = _join_hash([m.content for m in self.manifests])
        self.content = content

    def __len__(self) -> int:
        return len(self.manifests)

    @overload
    def __getitem__(self, i: int) -> Manifest: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Manifest, ...]: ...
    def __getitem__(self, i: int | slice) -> Manifest | tuple[Manifest, ...]:
        return self.manifests[i]

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Join) and other.content == self.content

    def __hash__(self) -> int:
        return hash(self.content)

    def __incgraph_hash__(self) -> object:
        return self.content

    def __incgraph_refs__(self) -> list[str]:
        """The blobs its tasks' manifests name (each once): the store keeps them with it."""
        return list(dict.fromkeys(ref for m in self.manifests for ref in _refs(m.values())))

    def __reduce__(self) -> tuple[Any, ...]:
        # Plain dicts, not Manifests: pickle writes those in C, without a Python
        # __reduce__ call per task (5x faster for a join of many small manifests,
        # and a quarter of the bytes); each manifest's content is recomputed on
        # demand after loading.
        return (_restored_join, ([dict(m) for m in self.manifests], self.content))

    def __repr__(self) -> str:
        return f"<Join of {len(self.manifests)} task(s)>"


def _restored_join(entries: list[dict[str, Any]], content: str) -> Join:
    """A `Join` from its pickled form (see ``Join.__reduce__``)."""
    return Join([Manifest(e) for e in entries], content)


class Task:
    """A ForEach task's own inputs, hashed once: its index and what it alone sees upstream.

    Attributes
    ----------
    index : the task's flat position in the grid.
    elements : upstream layer -> this task's elements of it (a partial manifest).
    whole : upstream ForEach layer -> the task of it this one is aligned with.
    positional : whether ``index`` is part of ``content`` (the layer reads
        ``self.index``); otherwise tasks that see the same elements share it.
    """

    __slots__ = ("content", "elements", "index", "positional", "whole")

    def __init__(
        self,
        index: int,
        elements: Mapping[str, Manifest],
        whole: Mapping[str, Manifest],
        content: str | None = None,
        positional: bool = True,
    ) -> None:
        self.index = index
        self.elements = dict(elements)
        self.whole = dict(whole)
        self.positional = positional
        if content is None:
            # the elements' entries directly (their partial manifests are never hashed)
            parts = [
                f"{up}[]{name}={entry_key(e)}"
                for up, m in self.elements.items()
                for name, e in m.items()
            ]
            parts += [f"{up}={m.content}" for up, m in self.whole.items()]
            content = task_hash([str(index) if positional else "", *sorted(parts)])
        self.content = content

    @classmethod
    def assembled(
        cls,
        index: int,
        elements: dict[str, Any],
        whole: dict[str, Manifest],
        content: str,
        positional: bool = True,
    ) -> Task:
        """A task from parts already built and hashed (the grid's fast path): no copies.

        ``content`` must be what ``Task(index, elements, whole, None, positional).content``
        would be.
        """
        task = cls.__new__(cls)
        task.index, task.elements, task.whole, task.content = index, elements, whole, content
        task.positional = positional
        return task

    def __incgraph_hash__(self) -> object:
        return self.content

    def __reduce__(self) -> tuple[Any, ...]:
        return (Task, (self.index, self.elements, self.whole, self.content, self.positional))

    def __repr__(self) -> str:
        return f"<Task {self.index}>"


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

    def manifest(self, values: dict[str, Any], shards: dict[str, list[Any]]) -> Manifest:
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
            entries = []
            for i, e in enumerate(elements):
                cls = type(e)  # is_inline(e), spelled out: a shard can have millions
                if cls in _INLINE_SCALARS or (cls in _INLINE_SIZED and len(e) <= INLINE_MAX):
                    entries.append((INLINE, e))
                else:
                    entries.append(self._stored(f"{name}[{i}]", e))
            out[name] = (SHARD, tuple(entries))
        return Manifest(out)

    def entry(self, name: str, value: Any) -> tuple[str, Any]:
        """The entry of one attribute: inline if small, else a blob."""
        return inline(value) if is_inline(value) else self._stored(name, value)

    def _stored(self, name: str, value: Any) -> tuple[str, str]:
        try:
            dv = hashing.data_version(value)
        except HashingError:
            # Not content-hashable: a fitted model, or a lock, a file, a connection. Check
            # here that it can be stored, while the layer and the attribute are known (the
            # blob is written later, in a batch); buffers go out of band, so no copy is made.
            _check_storable(self._where, name, value)
            dv = hashing.combine("FlowArtifact", self._identity(), name)
        self._put(dv, value)
        return ref(dv)


def _check_storable(where: str, name: str, value: Any) -> None:
    """Raise an error naming the layer and the attribute if ``value`` cannot be pickled."""
    attribute = name.partition("[")[0]
    try:
        pickle.dumps(value, protocol=5, buffer_callback=_ignore)
    except Exception as exc:
        raise UnstorableResultError(
            f"layer {where}: artifact self.{name} (a {type(value).__qualname__}) cannot be "
            f"stored: it cannot be pickled ({type(exc).__name__}: {exc}); if it is not a "
            f"result, name it self._{attribute} (attributes starting with '_' are not "
            "stored), else store what rebuilds it (its parameters, its state) instead",
            part=f"self.{name}: {type(value).__module__}.{type(value).__qualname__}",
        ) from exc


def _ignore(buffer: pickle.PickleBuffer) -> None:
    """Out-of-band buffers are not needed to know that a value pickles."""
