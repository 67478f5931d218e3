"""Cache keys and the records stored under them: one definition for graph runs and batches.

Design note
-----------
A node's cache key is ``hashing.node_key(code version, init version, inputs)``
where ``inputs`` maps each input name to a data version: inline constants are
hashed once per node (`Node.fixed_input_versions`), and every input bound
to a node (constant or computed) contributes that node's data version *for the
current item*. Inputs the processor lists in ``ignore`` are left out
(`Node.keyed_upstream`); ignored init kwargs and declared package
versions are settled in `Node.init_version`. The engine loop and the
batch loop both build keys here, which is what makes "the same node with the
same inputs has the same cache key whichever front-end or executor ran it"
true by construction rather than by care.

`make_record` is likewise the one place a computed result becomes an
index `Record` with its lineage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from incgraph import hashing
from incgraph.core.graph import Node
from incgraph.store.protocols import Record

__all__ = [
    "cache_key",
    "call_key",
    "call_key_maker",
    "check_code_versions",
    "input_versions",
    "item_key_maker",
    "key_maker",
    "make_record",
    "processor_name",
]


def input_versions(node: Node, version_of: Callable[[Node], str]) -> dict[str, str]:
    """Input name -> data version for ``node``, asking ``version_of`` for bound nodes.

    Inputs named in the processor's ``ignore`` are not in it.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Add(Processor):
    ...     def process(self, a: int, b: int) -> int:
    ...         return a + b
    >>> g = ProcessGraph(store=":memory:")
    >>> c = g.add_constant_node(0, "c", value=1)
    >>> n = g.add_node(1, Add, {"a": c, "b": 2})
    >>> sorted(input_versions(n, lambda up: "dv-of-" + str(up.id)))
    ['a', 'b']
    >>> input_versions(n, lambda up: "dv-of-" + str(up.id))["a"]
    'dv-of-0'
    """
    dvs = dict(node.fixed_input_versions())
    ignored = node.ignored  # the names of `Node.keyed_upstream`, without building its list
    for name, src in node.bindings.items():
        if isinstance(src, Node) and name not in ignored:
            dvs[name] = version_of(src)
    return dvs


def check_code_versions(order: Iterable[Node]) -> None:
    """Compute every cached node's code version before anything runs.

    A processor whose code reaches something that cannot be fingerprinted raises
    `HashingError` here, naming the node and the name,
    instead of after the nodes before it have computed. Versions are memoized,
    so the engine's later calls cost a lookup.
    """
    for node in order:
        if node.cache and not node.is_constant:
            node.code_version()


def cache_key(node: Node, inputs: dict[str, str]) -> str:
    """The cache key of ``node`` given its inputs' data versions."""
    return hashing.node_key(node.code_version(), node.init_version(), inputs)


def call_key(code_version: str, init_version: str, inputs: dict[str, str]) -> str:
    """The cache key of code (by code version) called with init kwargs and inputs (by version).

    What `cache_key` gives a node; `incgraph.memoize` keys a call with it, and
    callers that have no `Node` (queue items, ForEach tasks) key their work with it
    or with `call_key_maker`.
    """
    return hashing.node_key(code_version, init_version, inputs)


def call_key_maker(code_version: str, init_version: str) -> Callable[[dict[str, str]], str]:
    """`call_key` with the code and init versions bound: for keying many calls of one code.

    What a queue stage or a batch needs for its items (no `Node` involved).

    Examples
    --------
    >>> make = call_key_maker("c" * 32, "i" * 32)
    >>> make({"item": "d" * 32}) == call_key("c" * 32, "i" * 32, {"item": "d" * 32})
    True
    """
    return hashing.node_key_maker(code_version, init_version)


def key_maker(node: Node) -> Callable[[dict[str, str]], str]:
    """`cache_key` for one node with its versions bound: for building many keys."""
    return hashing.node_key_maker(node.code_version(), node.init_version())


def item_key_maker(node: Node, name: str) -> Callable[[str], str]:
    """`cache_key` for ``node`` with one keyed input ``name``: data version -> key, built fast.

    The key text's head (code and init versions) is built once; each call hashes
    head + input. For keying a stream of items through one node (a queue stage).

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor, hashing
    >>> class Double(Processor):
    ...     def process(self, item: int) -> int:
    ...         return 2 * item
    >>> g = ProcessGraph(store=":memory:")
    >>> n = g.add_node(0, Double, {"item": 1})
    >>> dv = hashing.data_version(1)
    >>> item_key_maker(n, "item")(dv) == cache_key(n, {"item": dv})
    True
    """
    return hashing.node_key_function(node.code_version(), node.init_version(), name)


def processor_name(node: Node) -> str:
    """The processor's qualified name, as the index records it."""
    proc = node.processor
    assert proc is not None
    return f"{proc.__module__}.{proc.__qualname__}"


def make_record(
    node: Node,
    key: str,
    inputs: dict[str, str],
    data_version: str,
    duration: float,
    lineage: tuple[str, str, str] | None = None,
) -> Record:
    """The index record of a result ``node`` computed from ``inputs`` under ``key``.

    ``lineage`` is ``(processor name, code version, init version)`` when the
    caller has it already (the nodes of a fan-out share it).
    """
    if lineage is None:
        lineage = (processor_name(node), node.code_version(), node.init_version())
    processor, code, init = lineage
    return Record(
        key, data_version, node.label, processor, code, init, inputs, time.time(), duration
    )
