"""Batches construct each processor once per pass and release instances by resource."""

from __future__ import annotations

from typing import ClassVar

import pytest

from incgraph.core.graph import Node
from incgraph.core.processor import Processor
from incgraph.graph import ProcessGraph

LOG: list[str] = []


class Model(Processor):
    """Logs construction, setup and release; ``process`` calls are not logged."""

    def __init__(self) -> None:
        LOG.append(f"init {type(self).__name__}")

    def setup(self) -> None:
        LOG.append(f"setup {type(self).__name__}")

    def release(self) -> None:
        LOG.append(f"release {type(self).__name__}")


class Transcribe(Model):
    resource: ClassVar[str | None] = "whisper"

    def process(self, doc: str) -> str:
        return doc.lower()


class Summarize(Model):
    resource: ClassVar[str | None] = "llm"

    def process(self, text: str) -> str:
        return text[:3]


class Tokens(Model):  # light: resource None
    def process(self, text: str) -> int:
        return len(text)


class Curate(Model):
    resource: ClassVar[str | None] = "llm"

    def process(self, summary: str, tokens: int) -> str:
        return f"{summary}/{tokens}"


class Illustrate(Model):
    resource: ClassVar[str | None] = "stable-diffusion"

    def process(self, prompt: str) -> str:
        return f"<img {prompt}>"


@pytest.fixture(autouse=True)
def _clear() -> None:
    LOG.clear()


def pipeline() -> tuple[ProcessGraph, Node]:
    """Transcribe -> Summarize -> Tokens -> Curate -> Illustrate; whisper, llm, -, llm, sd"""
    g = ProcessGraph(store=":memory:")
    doc = g.add_constant_node(0, "doc")
    text = g.add_node(1, Transcribe, {"doc": doc})
    summary = g.add_node(2, Summarize, {"text": text})
    tokens = g.add_node(3, Tokens, {"text": summary})
    curated = g.add_node(4, Curate, {"summary": summary, "tokens": tokens})
    return g, g.add_node(5, Illustrate, {"prompt": curated})


DOCS = [f"Document {i}" for i in range(50)]


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_each_processor_is_constructed_once_per_pass(executor: str) -> None:
    """Fifty items: every processor is constructed and set up once, and released once."""
    g, last = pipeline()
    stats = g.process_batch(DOCS, [last], executor=executor)
    assert stats.computed + stats.cached == 5 * 50 and stats.completed == list(range(50))
    for name in ["Transcribe", "Summarize", "Tokens", "Curate", "Illustrate"]:
        assert LOG.count(f"init {name}") == 1
        assert LOG.count(f"setup {name}") == 1
        assert LOG.count(f"release {name}") == 1


def test_release_follows_resources_between_passes() -> None:
    """Whisper is released before the LLM loads; the LLM stays across the light pass; SD last."""
    g, last = pipeline()
    g.process_batch(DOCS, [last])
    assert LOG == [
        "init Transcribe",
        "setup Transcribe",
        "release Transcribe",  # the next pass needs "llm"
        "init Summarize",
        "setup Summarize",
        "init Tokens",  # light: no release before or after it
        "setup Tokens",
        "init Curate",  # same resource: Summarize stays alive
        "setup Curate",
        "release Summarize",  # "stable-diffusion" is next: every llm instance goes
        "release Curate",
        "init Illustrate",
        "setup Illustrate",
        "release Tokens",  # the end of the batch releases what is left
        "release Illustrate",
    ]


def test_depth_first_keeps_every_instance_until_the_end() -> None:
    """Depth-first constructs each processor once and releases nothing before the end."""
    g, last = pipeline()
    g.process_batch(DOCS, [last], strategy="depth_first", chunk_size=7)
    inits = [e for e in LOG if e.startswith("init")]
    assert len(inits) == 5
    first_release = next(i for i, e in enumerate(LOG) if e.startswith("release"))
    assert all(e.startswith("release") for e in LOG[first_release:])


def test_cached_rerun_constructs_nothing() -> None:
    """A fully cached batch constructs no processor (and so releases none)."""
    g, last = pipeline()
    g.process_batch(DOCS, [last])
    LOG.clear()
    stats = g.process_batch(DOCS, [last])
    assert stats.cached == 5 * 50 and LOG == []


def test_a_partly_cached_batch_constructs_only_what_computes() -> None:
    """New items compute every node; cached passes construct nothing."""
    g, last = pipeline()
    g.process_batch(DOCS[:10], [last])
    LOG.clear()
    g.process_batch([*DOCS[:10], "a new one"], [last])
    assert [e for e in LOG if e.startswith("init")] == [
        "init Transcribe",
        "init Summarize",
        "init Tokens",
        "init Curate",
        "init Illustrate",
    ]


def test_instances_alive_before_the_batch_are_released_by_it() -> None:
    """An instance made by an earlier run_upto is released when its resource is switched away."""
    g, last = pipeline()
    g.nodes[0].set_value("warm-up")
    g.run_upto(g.nodes[1])
    assert g.nodes[1].initialized
    g.process_batch(DOCS[:3], [last])
    assert not any(n.initialized for n in g)
    assert LOG.count("init Transcribe") == 1  # reused by the batch, not constructed again
