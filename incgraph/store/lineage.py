"""Lineage: the inputs and code that made a result, up the chain, from the index alone.

Design note
-----------
Every `Record` names the code version and
init version of its node and the *data version* of each input. A data version
leads back to the records that produced it: the index rows whose result has
that data version (``keys_for_data_version``; usually one, several when equal
results were made by different keys, none for constants and values from
outside the graph). Following inputs to producers, recursively, gives the
result's lineage: a tree whose leaves are constants.

Results shared by several consumers appear once in full; later occurrences
are marked ``seen`` instead of expanded again, so the tree stays as small as
the graph. No value is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from incgraph.sentinels import MISSING
from incgraph.store.acceptance import Acceptance, acceptances
from incgraph.store.protocols import Record

if TYPE_CHECKING:
    from incgraph.store.store import Store

__all__ = ["LineageInput", "LineageNode", "lineage"]

MAX_PRODUCERS = 5
"""At most this many producers of one data version are followed (the rest are counted)."""


@dataclass
class LineageInput:
    """One input of a result: its name, its data version, and the records that produced it."""

    name: str
    data_version: str
    producers: list[LineageNode] = field(default_factory=list)
    more_producers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "name": self.name,
            "data_version": self.data_version,
            "producers": [p.to_dict() for p in self.producers],
            "more_producers": self.more_producers,
        }


@dataclass
class LineageNode:
    """A result in a lineage tree.

    ``seen`` marks a result already expanded elsewhere in the tree;
    ``truncated`` one whose inputs were not followed (depth limit);
    ``accepted`` says the result was accepted from an earlier code version's
    (`incgraph.store.acceptance`) rather than computed by its own.
    """

    record: Record
    inputs: list[LineageInput] = field(default_factory=list)
    seen: bool = False
    truncated: bool = False
    accepted: Acceptance | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        rec = self.record
        return {
            "key": rec.key,
            "data_version": rec.data_version,
            "node": rec.node,
            "processor": rec.processor,
            "code_version": rec.code_version,
            "init_version": rec.init_version,
            "created": rec.created,
            "duration": rec.duration,
            "size": rec.size,
            "seen": self.seen,
            "truncated": self.truncated,
            "accepted_from": None if self.accepted is None else self.accepted.to_dict(),
            "inputs": [i.to_dict() for i in self.inputs],
        }

    def walk(self) -> list[LineageNode]:
        """Every node of the tree, depth first (this one first)."""
        found = [self]
        for item in self.inputs:
            for producer in item.producers:
                found += producer.walk()
        return found


def lineage(store: Store, key: str, *, depth: int | None = None) -> LineageNode:
    """The lineage tree of the result stored under ``key`` (a full key).

    Parameters
    ----------
    store : Store
    key : str
    depth : int, optional
        Follow inputs this many levels up (None: to the constants).

    Raises
    ------
    KeyError
        Nothing is stored under ``key``.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> _ = store.save(Record("k1" * 16, "d1" * 16, "1", "m.Inc", "c", "i", {"x": "d0" * 16}), 2)
    >>> _ = store.save(Record("k2" * 16, "d2" * 16, "2", "m.Dbl", "c", "i", {"y": "d1" * 16}), 4)
    >>> tree = lineage(store, "k2" * 16)
    >>> [n.record.node for n in tree.walk()]
    ['2', '1']
    >>> tree.inputs[0].producers[0].inputs[0].producers
    []
    """
    record = store.lookup(key)
    if record is MISSING:
        raise KeyError(f"no result is stored under key {key}")
    return _expand(store, record, depth, set(), acceptances(store))


def _expand(
    store: Store,
    record: Record,
    depth: int | None,
    seen: set[str],
    accepted: dict[str, Acceptance],
) -> LineageNode:
    node = LineageNode(record, accepted=accepted.get(record.key))
    if record.key in seen:
        node.seen = True
        return node
    seen.add(record.key)
    if depth is not None and depth <= 0:
        node.truncated = bool(record.inputs)
        return node
    for name, data_version in record.inputs.items():
        item = LineageInput(name, data_version)
        keys = store.index.keys_for_data_version(data_version)
        item.more_producers = max(0, len(keys) - MAX_PRODUCERS)
        for producer in store.lookup_many(keys[:MAX_PRODUCERS]).values():
            below = None if depth is None else depth - 1
            item.producers.append(_expand(store, producer, below, seen, accepted))
        node.inputs.append(item)
    return node
