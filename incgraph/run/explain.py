"""Explain a run before it happens: the engine's decide step with a read-only look-up, no submit.

Design note
-----------
`explain` walks the nodes a run would visit in the engine's waves (a node
joins a wave once every upstream node is decided) and decides each wave with
the same `Decider` the run uses, in read-only mode: one look-up per wave
(after the same prefetch of latest entries), no claim, nothing computed or
loaded. Keys come from the same builder (`incgraph.run.keys`). So what
``explain`` says and what the run does cannot differ:

* ``hit``: the node's key is stored; the run takes it as a hit.
* ``compute``: the run computes it: it is forced, ``cache=False``, its key is
  not stored, or its own code or init kwargs are new to the store (no stored
  result was made by this code version with these init kwargs, and no other
  node of the run has them), so no input value can make it a hit.
* ``maybe``: its inputs are not known yet because an upstream node computes
  first; it computes unless that result comes out unchanged (early cutoff
  would then make it a hit).

For a node that computes, the latest record stored for the same node says
*why*: its code changed, its init kwargs changed, or which input changed.
Only a node whose inputs are unknown and whose code version differs from its
latest record's needs the store's set of (code version, init version) pairs;
it is read once, and only then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from incgraph.core.graph import Node
from incgraph.core.plan import Decision, Plan
from incgraph.run.decide import Decider, Work
from incgraph.run.keys import cache_key, input_versions
from incgraph.sentinels import MISSING
from incgraph.settings import Settings
from incgraph.store import Store
from incgraph.store.protocols import Record

__all__ = ["explain"]

_SHOWN_BY_VALUE = (type(None), bool, int, float, str, bytes)


def explain(
    store: Store,
    order: list[Node],
    force: Iterable[Node] = (),
    *,
    settings: Settings | None = None,
) -> Plan:
    """What a run of ``order`` (a topological order) would do with each node, and why.

    ``force`` nodes are said to compute, as a forced run computes them.
    ``settings`` are the run's (default: the store's).

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> from incgraph.store import memory_store
    >>> class Inc(Processor):
    ...     def process(self, x: int) -> int:
    ...         return x + 1
    >>> g = ProcessGraph(store=memory_store())
    >>> c = g.add_constant_node(0, "c", value=1)
    >>> a = g.add_node(1, Inc, {"x": c})
    >>> b = g.add_node(2, Inc, {"x": a})
    >>> [d.action for d in explain(g.store, [c, a, b])]  # no result of Inc's code yet
    ['constant', 'compute', 'maybe']

    Node 2 is a "maybe": node 1 runs the same code first, and its result could
    be node 2's key.

    >>> _ = g.run_upto(b)
    >>> [d.action for d in explain(g.store, [c, a, b])]
    ['constant', 'hit', 'hit']
    >>> print(explain(g.store, [c, a, b], force=[a])[b])
    2 (Inc): maybe - node 1 (Inc) computes first; computed unless its result comes out unchanged
    """
    tuning = store.settings if settings is None else settings
    return _Explainer(store, order, frozenset(force), tuning).plan()


class _Explainer:
    """One explanation: the waves of ``order``, each decided in bulk (read-only)."""

    def __init__(
        self, store: Store, order: list[Node], force: frozenset[Node], settings: Settings
    ) -> None:
        self.store = store
        self.order = order
        self.force = force
        self.settings = settings
        self.decider = Decider(store, None, lease_min_seconds=settings.lease_min_seconds)
        self.dvs: dict[Node, str] = {}
        self.computing: dict[Node, Node] = {}  # node -> an upstream node that computes first
        self.decisions: dict[Node, Decision] = {}
        self.made_by: set[tuple[str, str]] | None = None  # stored (code, init) pairs, read once
        self.computed_keys: dict[str, Node] = {}  # key -> a node said to compute it
        self.sharing = Counter(_made_by(n) for n in order if n.cache and not n.is_constant)

    def plan(self) -> Plan:
        if len(self.order) >= self.settings.prefetch_min_nodes:  # as a run does
            self.decider.prefetch(n.label for n in self.order if n.cache and not n.is_constant)
        for wave in _waves(self.order):
            self.decide_wave(wave)
        return Plan(tuple(self.decisions[node] for node in self.order))

    def decide_wave(self, wave: list[Node]) -> None:
        keyed: list[tuple[Node, Work, dict[str, str]]] = []
        for node in wave:
            early = self.decide_without_key(node)
            if early is not None:
                self.decisions[node] = early
                continue
            inputs = input_versions(node, self.dvs.__getitem__)
            keyed.append((node, Work(cache_key(node, inputs), node.label), inputs))
        if not keyed:
            return
        decided = self.decider.decide([work for _, work, _ in keyed])
        earlier = dict(self.computed_keys)
        for node, work, inputs in keyed:
            version = decided.hits.get(work.key)
            same = earlier.get(work.key)
            if version is None and same is not None:
                # the run computes this key for another node first: a hit once that is stored
                self.computing[node] = same
                reason = f"{same.describe()} computes the same key first; a hit if it is stored"
                self.decisions[node] = Decision(node.label, node.name(), "maybe", reason, work.key)
            elif version is not None:
                self.dvs[node] = version
                reason = "stored result for the current inputs"
                self.decisions[node] = Decision(node.label, node.name(), "hit", reason, work.key)
            else:
                self.computing[node] = node
                self.computed_keys.setdefault(work.key, node)
                reason = _why_new(node, inputs, self.store.latest_for_node(node.label))
                self.decisions[node] = Decision(
                    node.label, node.name(), "compute", reason, work.key
                )

    def decide_without_key(self, node: Node) -> Decision | None:
        """The decision for a node that needs no look-up (constant, forced, ...), else None."""
        name = node.name()
        if node.is_constant:
            dv = self.dvs[node] = node.data_version_of_constant()
            return Decision(node.label, name, "constant", _constant_reason(node, dv))
        if not node.cache:
            self.computing[node] = node
            return Decision(node.label, name, "compute", "cache=False: always computes")
        waiting = [up for up in node.upstream() if up in self.computing]
        if node in self.force:
            self.computing[node] = node
            key = None if waiting else cache_key(node, input_versions(node, self.dvs.__getitem__))
            return Decision(node.label, name, "compute", "forced", key)
        if not waiting:
            return None
        self.computing[node] = waiting[0]
        new = self.new_code(node)
        if new is not None:
            return Decision(node.label, name, "compute", new)
        up = waiting[0].describe()
        reason = f"{up} computes first; computed unless its result comes out unchanged"
        return Decision(node.label, name, "maybe", reason)

    def new_code(self, node: Node) -> str | None:
        """Why ``node`` computes whatever its inputs: its code or init kwargs are new to the store.

        None unless no stored result was made with its code and init versions, and
        no other node of the run has them (it could store the key first).
        """
        made_by = _made_by(node)
        if self.sharing[made_by] > 1:
            return None  # another node of this run computing the same code may store its key
        before = self.store.latest_for_node(node.label)
        if before is not MISSING and (before.code_version, before.init_version) == made_by:
            return None
        if self.made_by is None:
            self.made_by = {(r.code_version, r.init_version) for r in self.store.index.records()}
        if made_by in self.made_by:
            return None
        if before is MISSING:
            return "no stored result for this node yet, nor for its code and init kwargs"
        return ", ".join(_what_changed(node, before)) + ": no stored result has them"


def _waves(order: list[Node]) -> list[list[Node]]:
    """``order`` in waves: a node comes one wave after its latest upstream node."""
    level: dict[Node, int] = {}
    waves: list[list[Node]] = []
    for node in order:
        depth = max((level[up] + 1 for up in node.upstream() if up in level), default=0)
        level[node] = depth
        if depth == len(waves):
            waves.append([])
        waves[depth].append(node)
    return waves


def _made_by(node: Node) -> tuple[str, str]:
    return node.code_version(), node.init_version()


def _constant_reason(node: Node, dv: str) -> str:
    """``value 100000 (8972ca6cb271), set by the caller``: small scalars by value and hash."""
    value = node.constant_value()
    text = repr(value) if type(value) in _SHOWN_BY_VALUE else ""
    if not text or len(text) > 40:
        return f"value set by the caller ({dv[:12]})"
    return f"value {text} ({dv[:12]}), set by the caller"


def _what_changed(node: Node, before: Record) -> list[str]:
    """``code changed`` and/or ``init kwargs changed``, against ``before``."""
    reasons = []
    if before.code_version != node.code_version():
        reasons.append("code changed")
    if before.init_version != node.init_version():
        packages = node.packages()
        reasons.append(
            f"init kwargs or versions of {', '.join(packages)} changed"
            if packages
            else "init kwargs changed"
        )
    return reasons


def _why_new(node: Node, inputs: dict[str, str], before: Record | Any) -> str:
    """Why a node whose key is not stored computes, against its latest record ``before``."""
    if before is MISSING:
        return "no stored result for this node yet"
    reasons = _what_changed(node, before)
    changed = sorted(
        k for k in inputs.keys() | before.inputs.keys() if inputs.get(k) != before.inputs.get(k)
    )
    reasons.extend(f"input {k!r} changed" for k in changed)
    return ", ".join(reasons) or "new inputs since the last stored result"
