"""Every executor sees every computed job through ``submit``, fan-out members included."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from incgraph import ProcessGraph, Processor
from incgraph.executors.base import SerialExecutor
from incgraph.executors.threads import ThreadExecutor

T = TypeVar("T")
MEMBERS = 100


class Scale(Processor):
    def process(self, factor: int, x: int) -> int:
        return factor * x


class Total(Processor):
    def process(self, **parts: int) -> int:
        return sum(parts.values())


class DoneInSubmit:
    """A custom executor that completes each job inside ``submit`` and counts the calls."""

    in_process = True
    name = "done-in-submit"
    inline = True  # says its jobs finish inside submit: still every job is submitted

    def __init__(self) -> None:
        self.submits = 0

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        self.submits += 1
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Nothing to release."""

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop."""


class CountingSerial(SerialExecutor):
    """The serial executor, counting its submits."""

    def __init__(self) -> None:
        self.submits = 0

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        self.submits += 1
        return super().submit(fn, *args)


class CountingThreads(ThreadExecutor):
    """The thread pool executor, counting its submits."""

    submits = 0

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        self.submits += 1
        return super().submit(fn, *args)


def _fan_and_join(store: Path, executor: Any) -> tuple[ProcessGraph, Any]:
    graph = ProcessGraph(store=store, executor=executor)
    factor = graph.add_constant_node("factor", "factor", value=3)
    members = graph.add_nodes(
        Scale, {"factor": factor}, ((f"m{i}", {"x": i}) for i in range(MEMBERS))
    )
    assert members[0].fanout is not None  # a real fan-out, keyed and decided in bulk
    join = graph.add_node("join", Total, {f"p{i}": m for i, m in enumerate(members)})
    return graph, join


@pytest.mark.parametrize("make", [DoneInSubmit, CountingSerial, CountingThreads])
def test_each_computed_node_is_one_submit(tmp_path: Path, make: Callable[[], Any]) -> None:
    """A 100-member fan-out and its join are 101 submits; a cached rerun submits nothing."""
    executor = make()
    graph, join = _fan_and_join(tmp_path / "s", executor)
    assert graph.run_upto(join) == 3 * sum(range(MEMBERS))
    assert executor.submits == MEMBERS + 1 and len(graph.last_run.computed) == MEMBERS + 1
    executor.submits = 0
    graph, join = _fan_and_join(tmp_path / "s", executor)
    assert graph.run_upto(join) == 3 * sum(range(MEMBERS))
    assert executor.submits == 0 and len(graph.last_run.hits) == MEMBERS + 1
    if isinstance(executor, ThreadExecutor):
        executor.shutdown()


def test_a_done_future_works_with_the_futures_module() -> None:
    """The serial executor's finished futures work with wait(), as_completed() and callbacks."""
    from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, as_completed, wait

    from incgraph.executors.base import DoneFuture

    ok, failed = DoneFuture(1), DoneFuture(exception=ValueError("boom"))
    pool = ThreadExecutor(max_workers=1)
    running = pool.submit(pow, 2, 3)
    assert wait([ok, failed], return_when=FIRST_COMPLETED).done == {ok, failed}
    assert wait([ok, running], return_when=ALL_COMPLETED).done == {ok, running}
    assert {f.done() for f in as_completed([ok, failed, running])} == {True}
    seen: list[Any] = []
    ok.add_done_callback(seen.append)
    assert seen == [ok] and ok.result() == 1 and not ok.cancel()
    with pytest.raises(ValueError, match="boom"):
        failed.result()
    pool.shutdown()
