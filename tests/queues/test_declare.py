"""Declaring pipelines: queues, tasks, the compiled node graph, and the errors for misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

import incgraph.queues as iq
from incgraph import hashing
from incgraph.errors import ConfigurationError, InputTypeError, PipelineError
from incgraph.graph import ProcessGraph
from incgraph.queues.nodes import TaskProcessor


def double(x: int) -> int:
    return 2 * x


def test_queue_first_argument_is_its_contents() -> None:
    """Queue(items) holds items; Queue() is empty; a non-iterable or a lone string is refused."""
    p = iq.Pipeline(store=":memory:")
    out = p.map(double, iq.Queue([1, 2, 3]))
    empty_out = p.map(double, iq.Queue())
    p.run()
    assert list(out) == [2, 4, 6]
    assert list(empty_out) == []
    with pytest.raises(InputTypeError, match="must be iterable"):
        iq.Queue(5)
    with pytest.raises(InputTypeError, match="a string is one item"):
        iq.Queue("file1.zip")


def test_task_bare_and_with_options() -> None:
    """@task works bare (named after the function) and with max_workers, name, backend, cache."""

    @iq.task
    def unzip_file(fname):
        return fname

    @iq.task(max_workers=4, name="dl", backend="processes", cache=False)
    def download_file(fname):
        return fname

    assert isinstance(unzip_file, iq.Task) and unzip_file.name == "unzip_file"
    assert (download_file.name, download_file.max_workers) == ("dl", 4)
    assert (download_file.backend, download_file.cache) == ("processes", False)
    assert unzip_file("a.zip") == "a.zip"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_workers": 0}, "max_workers=0"),
        ({"max_workers": 2.5}, "max_workers=2.5"),
        ({"backend": "gpu"}, "unknown backend 'gpu'; use one of threads, processes"),
    ],
)
def test_task_rejects_bad_options(options: dict[str, object], message: str) -> None:
    """Bad task options raise ConfigurationError naming the task and the valid values."""
    with pytest.raises(ConfigurationError, match=message):
        iq.task(**options)(double)  # type: ignore[arg-type]


def test_plain_functions_are_wrapped_as_tasks() -> None:
    """map/chain accept plain functions and lambdas; they become cached one-worker tasks."""
    p = iq.Pipeline(store=":memory:")
    out = p.chain([double, lambda x: x + 1], iq.Queue([1, 2]))
    stage = p.stages[0]
    assert stage.task is not None and stage.task.max_workers == 1 and stage.task.cache
    p.run()
    assert list(out) == [3, 5]


def test_chain_of_one_and_chain_of_none() -> None:
    """chain([t]) is map(t); an empty chain is refused."""
    p = iq.Pipeline(store=":memory:")
    out = p.chain([double], iq.Queue([4]))
    p.run()
    assert list(out) == [8]
    with pytest.raises(PipelineError, match="at least one task"):
        iq.Pipeline(store=":memory:").chain([], iq.Queue([1]))


def test_queue_out_receives_results() -> None:
    """An empty Queue() passed as queue_out is where the results go."""
    p = iq.Pipeline(store=":memory:")
    q_out = iq.Queue(name="results")
    returned = p.map(double, iq.Queue([1]), q_out)
    p.run()
    assert returned is q_out and q_out.name == "results" and list(q_out) == [2]


def test_a_queue_has_one_reader() -> None:
    """Reading one queue from two stages is refused, pointing at split()."""
    p = iq.Pipeline(store=":memory:")
    q = iq.Queue([1])
    p.map(double, q)
    with pytest.raises(PipelineError, match=r"already read by 'double'.*split\(\)"):
        p.map(double, q)


def test_queues_of_another_pipeline_are_refused() -> None:
    """A queue belongs to one pipeline; using it in another is an error naming the queue."""
    p1, p2 = iq.Pipeline(store=":memory:"), iq.Pipeline(store=":memory:")
    out = p1.map(double, iq.Queue([1]))
    with pytest.raises(PipelineError, match="belongs to another pipeline"):
        p2.map(double, out)
    with pytest.raises(PipelineError, match="queue_out"):
        p2.map(double, iq.Queue([1]), iq.Queue([5]))


def test_non_queue_input_is_refused() -> None:
    """Passing a list where a Queue is expected says to wrap it in Queue(items)."""
    with pytest.raises(PipelineError, match=r"wrap items in Queue\(items\)"):
        iq.Pipeline(store=":memory:").map(double, [1, 2])  # type: ignore[arg-type]


def test_bad_batch_size_and_empty_merge_are_refused() -> None:
    """batch_size must be a whole number >= 1; merge needs at least one queue."""
    p = iq.Pipeline(store=":memory:")
    with pytest.raises(ConfigurationError, match="batch_size=0"):
        p.batch(iq.Queue([1]), batch_size=0)
    with pytest.raises(PipelineError, match="at least one queue"):
        p.merge([])


def test_a_pipeline_runs_once() -> None:
    """Declaring into or running a pipeline that already ran is an error saying what to do."""
    p = iq.Pipeline(store=":memory:")
    p.map(double, iq.Queue([1]))
    p.run()
    with pytest.raises(PipelineError, match="already run"):
        p.run()
    with pytest.raises(PipelineError, match="already run"):
        p.map(double, iq.Queue([1]))


def test_pipeline_compiles_to_a_node_graph() -> None:
    """Every input queue, task and op is a node of pipeline.graph, bound to its producer."""
    p = iq.Pipeline(store=":memory:")
    q = p.map(double, iq.Queue([1], name="numbers"))
    yes, no = p.split(bool, q)
    p.merge([p.batch(yes, 2), p.filter(bool, no)])
    g = p.graph
    assert isinstance(g, ProcessGraph)
    assert list(g.nodes) == [
        "queue:numbers",
        "double",
        "split[bool]",
        "batch[2]",
        "filter[bool]",
        "merge",
    ]
    task_node = g.nodes["double"]
    assert task_node.processor is not None and issubclass(task_node.processor, TaskProcessor)
    assert task_node.bindings["item"] is g.nodes["queue:numbers"]
    assert g.nodes["merge"].upstream() == [g.nodes["batch[2]"], g.nodes["filter[bool]"]]
    assert task_node.code_version() == hashing.code_version(double)
    assert task_node.init_version() == hashing.data_version({})


def test_task_version_changes_the_code_version() -> None:
    """@task(version=...) is mixed into the task's code version."""
    plain, versioned = iq.Task(double), iq.Task(double, version=2)
    assert plain.code_version == hashing.code_version(double)
    assert versioned.code_version == hashing.code_version(double, 2)
    assert plain.code_version != versioned.code_version


def test_repeated_tasks_get_unique_node_names() -> None:
    """Mapping the same task twice gives two nodes, the second suffixed #2."""
    p = iq.Pipeline(store=":memory:")
    p.chain([double, double], iq.Queue([1]))
    assert [s.name for s in p.stages] == ["double", "double#2"]


def test_module_functions_use_a_resettable_default_pipeline(tmp_path: Path) -> None:
    """Module-level declarations go to the default pipeline; run() consumes it, reset() discards."""
    iq.reset(store=tmp_path / "store")
    iq.map(double, iq.Queue([1]))
    first = iq.default_pipeline()
    assert len(first.stages) == 1
    iq.reset(store=tmp_path / "store")
    assert iq.default_pipeline() is not first and not iq.default_pipeline().stages
    out = iq.map(double, iq.Queue([3]))
    ran = iq.default_pipeline()
    report = iq.run()
    assert list(out) == [6] and report.computed == 1
    assert iq.default_pipeline() is not ran and not iq.default_pipeline().stages
    assert iq.default_pipeline().store_location == tmp_path / "store"


def test_default_pipeline_uses_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a store argument the default pipeline caches in $INCGRAPH_STORE."""
    monkeypatch.setenv("INCGRAPH_STORE", str(tmp_path / "default"))
    iq.reset()
    iq.map(double, iq.Queue([1]))
    iq.run()
    assert (tmp_path / "default" / "index.sqlite").is_file()


def test_two_pipelines_do_not_interfere() -> None:
    """Two explicit pipelines declared side by side run independently."""
    p1, p2 = iq.Pipeline(store=":memory:"), iq.Pipeline(store=":memory:")
    out1 = p1.map(double, iq.Queue([1, 2]))
    out2 = p2.map(str, iq.Queue([1, 2]))
    h1 = p1.run(block=False)
    r2 = p2.run()
    r1 = h1.wait()
    assert list(out1) == [2, 4] and list(out2) == ["1", "2"]
    assert list(r1.nodes) == ["input", "double"] and list(r2.nodes) == ["input", "str"]
