"""Batches construct each processor once per pass and release what holds something between passes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest

from incgraph.core.graph import Node
from incgraph.core.processor import Processor
from incgraph.executors.processes import ProcessExecutor
from incgraph.graph import ProcessGraph


def note(log: str, line: str) -> None:
    """Append ``line`` to the file ``log`` (shared by every worker process)."""
    with open(log, "a") as f:
        f.write(f"{line}\n")


class Model(Processor):
    """Holds something (``setup``/``release``): logs construction, setup and release."""

    def __init__(self, log: str) -> None:
        self.log = log
        note(log, f"init {type(self).__name__}")

    def setup(self) -> None:
        note(self.log, f"setup {type(self).__name__}")

    def release(self) -> None:
        note(self.log, f"release {type(self).__name__}")


class Transcribe(Model):
    resource: ClassVar[str | None] = "whisper"

    def process(self, doc: str) -> str:
        return doc.lower()


class Summarize(Model):
    resource: ClassVar[str | None] = "llm"

    def process(self, text: str) -> str:
        return text[:3]


class Curate(Model):
    resource: ClassVar[str | None] = "llm"

    def process(self, summary: str) -> str:
        return f"{summary}!"


class Tokens(Processor):
    """Holds nothing (no setup, release or resource): logs its construction only."""

    def __init__(self, log: str) -> None:
        note(log, "init Tokens")

    def process(self, text: str) -> int:
        return len(text)


class Illustrate(Model):
    """A model declared by its hooks alone: no ``resource``."""

    def process(self, prompt: str, tokens: int) -> str:
        return f"<img {prompt} {tokens}>"


def pipeline(log: Path) -> tuple[ProcessGraph, Node]:
    """Transcribe -> Summarize -> Curate -> Tokens -> Illustrate: whisper, llm, llm, -, hooks."""
    g = ProcessGraph(store=":memory:")
    kw = {"log": str(log)}
    doc = g.add_constant_node(0, "doc")
    text = g.add_node(1, Transcribe, {"doc": doc}, node_init_kwargs=kw)
    summary = g.add_node(2, Summarize, {"text": text}, node_init_kwargs=kw)
    curated = g.add_node(3, Curate, {"summary": summary}, node_init_kwargs=kw)
    tokens = g.add_node(4, Tokens, {"text": curated}, node_init_kwargs=kw)
    return g, g.add_node(5, Illustrate, {"prompt": curated, "tokens": tokens}, node_init_kwargs=kw)


def events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


DOCS = [f"Document {i}" for i in range(50)]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "lifecycle.log"


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_each_processor_is_constructed_once_per_pass(executor: str, log: Path) -> None:
    """Fifty items: every processor is constructed and set up once, and released once."""
    g, last = pipeline(log)
    stats = g.process_batch(DOCS, [last], executor=executor, progress=False)
    assert stats.computed + stats.cached == 5 * 50 and stats.completed == list(range(50))
    got = events(log)
    for name in ["Transcribe", "Summarize", "Curate", "Illustrate"]:
        assert [got.count(f"{e} {name}") for e in ("init", "setup", "release")] == [1, 1, 1]
    assert got.count("init Tokens") == 1


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_models_are_released_between_passes_unless_the_next_shares_the_resource(
    executor: str, log: Path
) -> None:
    """A model is released before the next pass's processor is set up; "llm" passes share."""
    g, last = pipeline(log)
    g.process_batch(DOCS, [last], executor=executor, progress=False)
    assert events(log) == [
        "init Transcribe",
        "setup Transcribe",
        "release Transcribe",  # holds something, and the next pass declares another resource
        "init Summarize",
        "setup Summarize",
        "init Curate",  # the same resource: Summarize stays alive through this pass
        "setup Curate",
        "release Summarize",  # the next pass shares nothing: both llm instances go
        "release Curate",
        "init Tokens",  # holds nothing: kept, and releasing it calls no hook
        "init Illustrate",
        "setup Illustrate",
        "release Illustrate",  # the end of the batch releases what is left
    ]


def test_worker_processes_release_each_model_before_the_next_is_set_up(log: Path) -> None:
    """With two worker processes, every worker's model is released before the next pass sets up."""
    g, last = pipeline(log)
    executor = ProcessExecutor(max_workers=2)
    try:
        stats = g.process_batch(DOCS, [last], executor=executor, progress=False)
    finally:
        executor.shutdown()
    assert stats.completed == list(range(50))
    got = events(log)

    def where(line: str) -> list[int]:
        return [i for i, e in enumerate(got) if e == line]

    for name in ["Transcribe", "Summarize", "Curate", "Illustrate"]:
        assert 1 <= len(where(f"setup {name}")) == len(where(f"release {name}")) <= 2
    assert max(where("release Transcribe")) < min(where("setup Summarize"))
    assert max(where("setup Curate")) < min(where("release Summarize"))  # shared "llm"
    assert max(where("release Curate")) < min(where("setup Illustrate"))
    assert max(where("release Summarize")) < min(where("setup Illustrate"))


def test_a_model_with_hooks_only_is_loaded_once_per_batch_not_once_per_item(log: Path) -> None:
    """A processor with setup()/release() and no resource is set up once for its whole pass."""
    g = ProcessGraph(store=":memory:")
    doc = g.add_constant_node(0, "doc")
    kw = {"log": str(log)}
    first = g.add_node(1, Illustrate, {"prompt": doc, "tokens": 1}, node_init_kwargs=kw)
    second = g.add_node(2, Illustrate, {"prompt": first, "tokens": 2}, node_init_kwargs=kw)
    g.process_batch(DOCS, [second], progress=False)
    assert events(log) == ["init Illustrate", "setup Illustrate", "release Illustrate"] * 2


def test_depth_first_keeps_every_instance_until_the_end(log: Path) -> None:
    """Depth-first constructs each processor once and releases nothing before the end."""
    g, last = pipeline(log)
    g.process_batch(DOCS, [last], strategy="depth_first", chunk_size=7, progress=False)
    got = events(log)
    assert len([e for e in got if e.startswith("init")]) == 5
    first_release = next(i for i, e in enumerate(got) if e.startswith("release"))
    assert all(e.startswith("release") for e in got[first_release:])


def test_cached_rerun_constructs_nothing(log: Path) -> None:
    """A fully cached batch constructs no processor (and so releases none)."""
    g, last = pipeline(log)
    g.process_batch(DOCS, [last], progress=False)
    os.remove(log)
    stats = g.process_batch(DOCS, [last], progress=False)
    assert stats.cached == 5 * 50 and events(log) == []


def test_a_partly_cached_batch_constructs_only_what_computes(log: Path) -> None:
    """New items compute every node; cached passes construct nothing."""
    g, last = pipeline(log)
    g.process_batch(DOCS[:10], [last], progress=False)
    os.remove(log)
    g.process_batch([*DOCS[:10], "a new one"], [last], progress=False)
    assert [e for e in events(log) if e.startswith("init")] == [
        "init Transcribe",
        "init Summarize",
        "init Curate",
        "init Tokens",
        "init Illustrate",
    ]


def test_instances_alive_before_the_batch_are_released_by_it(log: Path) -> None:
    """An instance made by an earlier run_upto is reused by its pass, then released."""
    g, last = pipeline(log)
    g.nodes[0].set_value("warm-up")
    g.run_upto(g.nodes[1])
    assert g.nodes[1].initialized
    g.process_batch(DOCS[:3], [last], progress=False)
    assert not any(n.initialized for n in g)
    got = events(log)
    assert got.count("init Transcribe") == 1  # reused by the batch, not constructed again
    assert got.index("release Transcribe") < got.index("setup Summarize")
