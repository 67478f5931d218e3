"""Cache controls on a graph: invalidate and accept, in terms of nodes and processors.

Design note
-----------
The store modules `incgraph.store.invalidation` and
`incgraph.store.acceptance` work on records (node labels, processor
names, code versions); this module turns what a graph's user holds into those
terms:

* a `Node` means the results recorded under its
  label *by its processor* (several graphs sharing a store may reuse a label
  such as ``"2"``); downstream means the nodes that read it in this graph,
  transitively (the graph's edges, not equal data versions);
* a processor class means every result recorded under its qualified name, and
  downstream the nodes reading this graph's nodes of that class;
* a string is a cache key (or a unique prefix); downstream follows its data
  version in the store (`downstream_of`)
  into the results of the nodes that read its node in this graph (none when
  the key belongs to no node of this graph).

Acceptance needs the code version a node has *now*, which only the graph
knows (a node's own ``version`` is part of it): `accept_targets` asks
each node, in a fresh run epoch so that edited helpers are seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from incgraph.core.graph import Graph, Node, new_run_epoch
from incgraph.errors import GraphDefinitionError, NotCachedError
from incgraph.run.keys import processor_name
from incgraph.store import Store
from incgraph.store.acceptance import AcceptReport, accept
from incgraph.store.invalidation import InvalidateReport, downstream_of, invalidate, select
from incgraph.store.protocols import Record

__all__ = ["accept_targets", "invalidate_targets"]


def _as_list(target: Any) -> list[Any]:
    if isinstance(target, (list, tuple, set, frozenset)):
        return list(target)
    return [target]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _nodes_of(graph: Graph, cls: type) -> list[Node]:
    return [n for n in graph if n.processor is cls]


def _check_target(graph: Graph, target: Any) -> None:
    if isinstance(target, Node):
        if graph.nodes.get(target.id) is not target:
            raise GraphDefinitionError(f"{target!r} is not a node of this graph")
        if target.is_constant:
            raise GraphDefinitionError(
                f"{target.describe()} is a constant node: it has no stored results; "
                "invalidate or accept the nodes that read it"
            )
    elif not isinstance(target, (type, str)):
        raise GraphDefinitionError(
            f"cannot target {target!r}: pass a node of this graph, a processor class or a "
            "cache key (or a list of these)"
        )


def _downstream_nodes(graph: Graph, starts: Iterable[Node]) -> list[Node]:
    """Nodes of ``graph`` reading ``starts``, transitively (not ``starts`` themselves)."""
    seen: set[Node] = set(starts)
    stack = list(seen)
    found = []
    while stack:
        for consumer, _ in graph.consumers(stack.pop()):
            if consumer not in seen:
                seen.add(consumer)
                found.append(consumer)
                stack.append(consumer)
    return found


def _records_of_nodes(store: Store, nodes: Iterable[Node]) -> list[Record]:
    wanted = {(n.label, processor_name(n)) for n in nodes if not n.is_constant}
    if not wanted:
        return []
    labels = sorted({label for label, _ in wanted})
    return [r for r in select(store, nodes=labels) if (r.node, r.processor) in wanted]


def _owns(node: Node, records: list[Record]) -> bool:
    pair = (node.label, processor_name(node))
    return any((r.node, r.processor) == pair for r in records)


def invalidate_targets(
    graph: Graph, store: Store, target: Any, *, downstream: bool, dry_run: bool
) -> InvalidateReport:
    """What `incgraph.ProcessGraph.invalidate` does (see the module note)."""
    targets = _as_list(target)
    for t in targets:
        _check_target(graph, t)
    nodes = [t for t in targets if isinstance(t, Node)]
    classes = [t for t in targets if isinstance(t, type)]
    keys = [store.resolve(t) for t in targets if isinstance(t, str)]
    chosen = _records_of_nodes(store, nodes)
    if classes:
        chosen += select(store, processors=[_qualified(cls) for cls in classes])
    by_key = select(store, keys=keys) if keys else []
    chosen += by_key
    below: list[Record] = []
    if downstream:
        starts = nodes + [n for cls in classes for n in _nodes_of(graph, cls)]
        below = _records_of_nodes(store, _downstream_nodes(graph, starts))
        if by_key:
            owners = [n for n in graph if not n.is_constant and _owns(n, by_key)]
            within = {(n.label, processor_name(n)) for n in _downstream_nodes(graph, owners)}
            below += downstream_of(store, by_key, within)
    report = invalidate(store, chosen + below, downstream=False, dry_run=dry_run)
    chosen_keys = {r.key for r in chosen}
    report.downstream = sum(1 for r in report.removed if r.key not in chosen_keys)
    return report


def accept_targets(graph: Graph, store: Store, target: Any, *, dry_run: bool) -> list[AcceptReport]:
    """What `incgraph.ProcessGraph.accept` does: one report per node accepted."""
    nodes: list[Node] = []
    for t in _as_list(target):
        _check_target(graph, t)
        if isinstance(t, str):
            raise GraphDefinitionError(
                f"accept takes nodes or processor classes, not a key ({t!r}): a code change "
                "is accepted for a node, for all its inputs"
            )
        if isinstance(t, type):
            found = _nodes_of(graph, t)
            if not found:
                raise GraphDefinitionError(
                    f"processor {t.__qualname__} has no node in this graph; pass one of its "
                    "nodes, or add them first"
                )
            nodes += found
        else:
            nodes.append(t)
    new_run_epoch()  # code versions as the code is now
    reports, refused = [], []
    for node in dict.fromkeys(nodes):
        try:
            reports.append(
                accept(
                    store,
                    node.label,
                    processor_name(node),
                    node.code_version(),
                    what=node.describe(),
                    dry_run=dry_run,
                )
            )
        except NotCachedError as exc:
            refused.append(exc)
    if refused and not reports:
        raise (
            refused[0]
            if len(refused) == 1
            else NotCachedError(
                f"nothing to accept for any of {len(refused)} nodes; the first: {refused[0]}"
            )
        )
    return reports
