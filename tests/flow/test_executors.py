"""Flows on the core's executors: tasks and independent layers run in parallel, keys are shared."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest

from incgraph.flow import Flow, ForEach, Layer, Parameter

needs_threads = pytest.mark.skipif(
    importlib.util.find_spec("incgraph.executors.threads") is None,
    reason="the threads executor is not available",
)


def barrier_flow(barrier: threading.Barrier) -> tuple[type[Flow], type[Layer]]:
    """Two ForEach tasks that can only finish if they run at the same time."""

    class Together(Flow): ...

    @Together.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    @Together.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Meet(Layer):
        def __call__(self, src: Src) -> None:
            barrier.wait()
            self.y = src.x * 10

    return Together, Meet


@needs_threads
def test_foreach_tasks_run_in_parallel_on_threads(tmp_path: Path) -> None:
    """On threads two tasks wait on one barrier, which only passes if both run at once."""
    barrier = threading.Barrier(2, timeout=30)
    Together, Meet = barrier_flow(barrier)
    execution = Together(store=tmp_path)(executor="threads")
    assert list(execution[Meet].y) == [10, 20]


@needs_threads
def test_independent_layers_run_in_parallel_on_threads(tmp_path: Path) -> None:
    """Two layers that do not read each other run at the same time on the threads executor."""
    barrier = threading.Barrier(2, timeout=30)

    class Pair(Flow): ...

    @Pair.register
    class Left(Layer):
        def __call__(self) -> None:
            barrier.wait()
            self.v = "left"

    @Pair.register
    class Right(Layer):
        def __call__(self) -> None:
            barrier.wait()
            self.v = "right"

    execution = Pair(store=tmp_path, executor="threads")()
    assert (execution[Left].v, execution[Right].v) == ("left", "right")


@needs_threads
def test_same_keys_on_every_executor(tmp_path: Path) -> None:
    """A flow computed on threads is a full hit when rerun serially (and the other way round)."""
    Together, Meet = barrier_flow(threading.Barrier(2, timeout=30))
    Together(store=tmp_path)(executor="threads")
    again = Together(store=tmp_path)(executor="serial")
    assert again.computed == []
    assert list(again[Meet].y) == [10, 20]


@needs_threads
def test_a_callers_executor_is_not_shut_down(tmp_path: Path) -> None:
    """An executor object passed in stays usable after the run; named ones are the flow's own."""
    from incgraph.executors.threads import ThreadExecutor

    executor = ThreadExecutor(max_workers=2)
    try:
        Together, _ = barrier_flow(threading.Barrier(2, timeout=30))
        Together(store=tmp_path, executor=executor)()
        assert executor.submit(pow, 2, 5).result() == 32
    finally:
        executor.shutdown()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("incgraph.executors.processes") is None,
    reason="the processes executor is not available",
)
def test_tasks_run_in_worker_processes(tmp_path: Path) -> None:
    """With executor='processes' tasks run in other processes and write to the same store."""

    class Procs(Flow): ...

    @Procs.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2, 3])

    @Procs.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Where(Layer):
        def __call__(self, src: Src) -> None:
            import os

            self.pid = os.getpid()
            self.big = [src.x] * 10_000  # a blob of its own, written by the worker

    execution = Procs(store=tmp_path)(executor="processes")
    assert os.getpid() not in set(execution[Where].pid)
    assert [b[0] for b in execution[Where].big] == [1, 2, 3]
    assert Procs(store=tmp_path)().computed == []
