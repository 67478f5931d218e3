"""When a batch releases processor instances: the resource policy, as one pure function.

Design note
-----------
A processor declares what heavy thing it holds with the class attribute
``resource`` (``"llm"``, ``"gpu"``, ``"stable-diffusion"``), or ``None`` for
"nothing heavy". Breadth-first batches run one *pass* per node; before a pass
over a node whose processor holds resource ``R``, every instance alive that
holds a *different named* resource is released. So:

* consecutive passes over processors sharing ``"llm"`` keep their instances
  alive (LLMSummary then LLMCuration load the model once each and keep it);
* the first pass needing ``"stable-diffusion"`` releases the LLM instances
  before anything of its own is constructed, so the two never share memory;
* ``None`` processors are light: they never cause a release and their
  instances are kept until the batch ends (a tokenizer, a regex, a parser).
  A pass over one leaves the heavy instances alive, so ``llm -> light -> llm``
  loads the model once.

Every instance a batch touched is released when the batch ends. Depth-first
batches never release between nodes (each item goes through every node, so
every instance is needed all the time). This replaces the hand-written
``release_resources()`` calls of the original batch recipe's "further optimizations".
"""

from __future__ import annotations

from collections.abc import Iterable

from incgraph.core.graph import Node

__all__ = ["resource_of", "to_release"]


def resource_of(node: Node) -> str | None:
    """The resource ``node``'s processor declares (``None``: nothing heavy)."""
    return getattr(node.processor, "resource", None)


def to_release(alive: Iterable[Node], next_node: Node) -> list[Node]:
    """The alive nodes to release before a pass over ``next_node``.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Summary(Processor):
    ...     resource = "llm"
    ...     def process(self, text: str) -> str: return text
    >>> class Curation(Summary): pass
    >>> class Paint(Processor):
    ...     resource = "stable-diffusion"
    ...     def process(self, prompt: str) -> bytes: return b""
    >>> class Words(Processor):
    ...     def process(self, text: str) -> int: return len(text.split())
    >>> g = ProcessGraph(store=":memory:")
    >>> doc = g.add_constant_node(0, "doc")
    >>> s = g.add_node(1, Summary, {"text": doc})
    >>> c = g.add_node(2, Curation, {"text": s})
    >>> w = g.add_node(3, Words, {"text": c})
    >>> p = g.add_node(4, Paint, {"prompt": c})
    >>> to_release([s], c), to_release([s, c], w), to_release([s, c, w], p)
    ([], [], [<Node 1 Summary>, <Node 2 Curation>])
    """
    wanted = resource_of(next_node)
    if wanted is None:
        return []
    return [n for n in alive if resource_of(n) not in (None, wanted)]
