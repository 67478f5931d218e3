"""A batch of 200 documents through three processors, two of which share an "LLM".

What it shows:

* ``Summarize`` and ``Classify`` declare ``resource = "llm"``: the breadth-first
  batch loads the (stand-in) model once for the first pass, keeps it for the
  second, and releases it before ``Embed`` (``resource = "embedder"``) loads.
* One document is empty; summarizing it fails. The failure is a record in
  ``stats.failures`` (index, item, node, exception, traceback); that document's
  downstream nodes are skipped and the other 199 go on.
* The second run is served from the store: nothing is loaded, nothing computes
  (only the failing document is tried again).

Run it::

    python examples/batch.py                 # store in a temporary folder
    python examples/batch.py ./my-store      # keep the store between runs
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from typing import ClassVar

from incgraph import ProcessGraph, Processor

TOPICS = {
    "sport": ["match", "goal", "team", "season", "coach"],
    "finance": ["market", "shares", "bank", "rates", "profit"],
    "science": ["study", "cells", "telescope", "data", "theory"],
}


def make_documents(n: int, seed: int = 7) -> list[str]:
    """``n`` small synthetic documents; number 42 is empty (it will fail)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        topic = rng.choice(sorted(TOPICS))
        words = [rng.choice(TOPICS[topic]) for _ in range(rng.randint(12, 40))]
        docs.append(f"Document {i}. " + " ".join(words) + ".")
    docs[42] = ""
    return docs


class FakeLLM:
    """Stands in for a large model: 'loading' it is the expensive part."""

    def __init__(self) -> None:
        time.sleep(0.2)  # pretend to load weights
        self.vocabulary = {w: t for t, words in TOPICS.items() for w in words}

    def complete(self, text: str, task: str) -> str:
        words = text.split()
        if task == "summary":
            return " ".join(words[:8]) + " ..."
        votes = Counter(self.vocabulary.get(w.strip(".").lower(), "other") for w in words)
        return votes.most_common(1)[0][0]


class LLMProcessor(Processor):
    """Base of the processors that hold the LLM; prints when it is loaded and released."""

    resource: ClassVar[str | None] = "llm"

    def setup(self) -> None:
        print(f"    [{type(self).__name__}] loading the LLM")
        self.llm = FakeLLM()

    def release(self) -> None:
        print(f"    [{type(self).__name__}] releasing the LLM")
        del self.llm


class Summarize(LLMProcessor):
    def process(self, document: str) -> str:
        if not document.strip():
            raise ValueError("empty document: nothing to summarize")
        return self.llm.complete(document, "summary")


class Classify(LLMProcessor):
    def process(self, document: str, summary: str) -> str:
        return self.llm.complete(document, "topic")


class Embed(Processor):
    """A bag-of-words 'embedding' of the summary; holds its own (stand-in) model."""

    resource: ClassVar[str | None] = "embedder"

    def setup(self) -> None:
        print("    [Embed] loading the embedder")
        self.vocabulary = sorted({w for words in TOPICS.values() for w in words})

    def release(self) -> None:
        print("    [Embed] releasing the embedder")

    def process(self, summary: str, topic: str) -> list[int]:
        words = [w.strip(".").lower() for w in summary.split()]
        return [words.count(v) for v in self.vocabulary]


def build(store: str) -> tuple[ProcessGraph, object, object]:
    graph = ProcessGraph(store=store, name="docs")
    document = graph.add_constant_node(0, "document")
    summary = graph.add_node(1, Summarize, {"document": document})
    topic = graph.add_node(2, Classify, {"document": document, "summary": summary})
    embedding = graph.add_node(3, Embed, {"summary": summary, "topic": topic})
    return graph, document, embedding


def main() -> None:
    store = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="incgraph-batch-")
    documents = make_documents(200)
    for run in (1, 2):
        graph, document, embedding = build(store)

        def prep_fn(index: int, item: str) -> None:
            document.set_value(item)  # noqa: B023 - the node of this run's graph

        print(f"run {run}:")
        start = time.perf_counter()
        stats = graph.process_batch(documents, [embedding], prep_fn)
        took = time.perf_counter() - start
        print(f"  {took:.2f} s")
        print("  " + str(stats).replace("\n", "\n  "))
        for failure in stats.failures:  # the original traceback, where process() raised
            original = failure.traceback.split("The above exception was the direct cause")[0]
            print(f"  item {failure.index} traceback (end):")
            print("    " + "\n    ".join(original.strip().splitlines()[-3:]))
        graph.close()
    print(f"store: {store}")


if __name__ == "__main__":
    main()
