"""When a batch releases processor instances: the resource policy, as pure functions.

Design note
-----------
A processor *holds something* when it defines ``setup()`` or ``release()``
(a model, a decoder, a connection) or declares a ``resource`` (``"llm"``,
``"gpu"``, ``"stable-diffusion"``). Breadth-first batches run one *pass* per
node; between two passes every alive instance that holds something is
released, unless the next pass's processor declares the same named resource.
So, with no declaration at all:

* a processor with ``setup()``/``release()`` is set up once for its pass and
  released before the next pass's processor is set up: two models are never in
  memory together, and none is loaded twice;
* a processor that holds nothing (no ``setup``, ``release`` or ``resource``: a
  tokenizer, a regex, a parser) is kept until the batch ends;

and ``resource`` only adds sharing: consecutive passes over processors that
declare the same resource (LLMSummary then LLMCuration, both ``"llm"``) keep
their instances alive together; the first pass over anything else releases
them. Every instance a batch touched is released when the batch ends.
Depth-first batches never release between nodes (each item goes through every
node, so every instance is needed all the time). This replaces the hand-written
``release_resources()`` calls of the original batch recipe.
"""

from __future__ import annotations

from collections.abc import Iterable

from incgraph.core.graph import Node
from incgraph.core.processor import Processor

__all__ = ["holds_something", "resource_of", "to_release"]


def resource_of(node: Node) -> str | None:
    """The resource ``node``'s processor declares (``None``: none declared)."""
    return getattr(node.processor, "resource", None)


def holds_something(node: Node) -> bool:
    """Whether ``node``'s processor defines ``setup``/``release`` or declares a ``resource``.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Model(Processor):
    ...     def setup(self): self.weights = [0.5]
    ...     def process(self, x: float) -> float: return x * self.weights[0]
    >>> class Words(Processor):
    ...     def process(self, text: str) -> int: return len(text.split())
    >>> g = ProcessGraph(store=":memory:")
    >>> x = g.add_constant_node(0, "x")
    >>> model, words = g.add_node(1, Model, {"x": x}), g.add_node(2, Words, {"text": x})
    >>> holds_something(model), holds_something(words)
    (True, False)
    """
    cls = node.processor
    return (
        resource_of(node) is not None
        or getattr(cls, "setup", Processor.setup) is not Processor.setup
        or getattr(cls, "release", Processor.release) is not Processor.release
    )


def to_release(alive: Iterable[Node], next_node: Node) -> list[Node]:
    """The alive nodes to release before a pass over ``next_node``.

    Every alive node that holds something, except ``next_node`` itself and those
    whose declared resource ``next_node`` shares.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Summary(Processor):
    ...     resource = "llm"
    ...     def process(self, text: str) -> str: return text
    >>> class Curation(Summary): pass
    >>> class Paint(Processor):
    ...     def setup(self): self.pipe = "a diffusion model"
    ...     def process(self, prompt: str) -> bytes: return b""
    >>> class Words(Processor):
    ...     def process(self, text: str) -> int: return len(text.split())
    >>> g = ProcessGraph(store=":memory:")
    >>> doc = g.add_constant_node(0, "doc")
    >>> s = g.add_node(1, Summary, {"text": doc})
    >>> c = g.add_node(2, Curation, {"text": s})
    >>> w = g.add_node(3, Words, {"text": c})
    >>> p = g.add_node(4, Paint, {"prompt": c})
    >>> to_release([s], c), to_release([s, c], w), to_release([w, p], s)
    ([], [<Node 1 Summary>, <Node 2 Curation>], [<Node 4 Paint>])
    """
    shared = resource_of(next_node)
    return [
        n
        for n in alive
        if n is not next_node
        and holds_something(n)
        and (shared is None or resource_of(n) != shared)
    ]
