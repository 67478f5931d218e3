"""Shutdown: errors outside items and KeyboardInterrupt stop every pool, and nothing hangs."""

from __future__ import annotations

import _thread
import itertools
import os
import threading
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph.errors import PipelineError, StoreError
from incgraph.store import Store, memory_store

WORKERS = [1, 2, 8, 32]


def _queue_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("incgraph-queues")]


class BrokenStore(Store):
    """A store whose writes fail: a machinery error, not an item's."""

    def __init__(self) -> None:
        inner = memory_store()
        super().__init__(inner.index, inner.blobs)

    def save_many(self, items: Any) -> Any:
        raise StoreError("disk on fire")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", WORKERS)
def test_keyboard_interrupt_in_a_task_stops_everything(max_workers: int) -> None:
    """KeyboardInterrupt raised by a task reaches run()'s caller after every pool is shut down."""

    @iq.task(max_workers=max_workers, cache=False)
    def work(x: int) -> int:
        if x == 50:
            raise KeyboardInterrupt
        return x

    p = iq.Pipeline(store=":memory:")
    out = p.chain(
        [work, iq.task(max_workers=max_workers, cache=False)(str)], iq.Queue(range(10_000))
    )
    with pytest.raises(KeyboardInterrupt):
        p.run()
    assert _queue_threads() == []
    assert "50" not in list(out)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", WORKERS)
def test_a_store_error_stops_the_run_with_a_pipeline_error(max_workers: int) -> None:
    """A failing store is no item's failure: run() raises PipelineError naming it; pools stop."""
    p = iq.Pipeline(store=BrokenStore())
    p.chain([iq.task(max_workers=max_workers)(abs), abs], iq.Queue(itertools.count()))
    with pytest.raises(PipelineError, match="disk on fire") as info:
        p.run()
    assert isinstance(info.value.__cause__, StoreError)
    assert "abs" in str(info.value)  # the node whose results could not be written
    assert _queue_threads() == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", [1, 8])
def test_keyboard_interrupt_while_waiting_stops_everything(max_workers: int) -> None:
    """Ctrl-C in the thread waiting in run() stops an endless pipeline and is re-raised."""
    interrupted = threading.Event()

    @iq.task(max_workers=max_workers, cache=False)
    def work(x: int) -> int:
        if x == 100 and not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()
        return x

    p = iq.Pipeline(store=":memory:")
    p.map(work, iq.Queue(itertools.count()))
    with pytest.raises(KeyboardInterrupt):
        p.run()
    assert interrupted.is_set()
    assert _queue_threads() == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", WORKERS)
def test_an_exception_in_the_machinery_stops_every_pool(
    max_workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a stage (here: the split op's loop) aborts the run; no thread is left behind."""
    from incgraph.queues import runners

    def broken(self: Any) -> None:
        raise RuntimeError("bug in the split loop")

    monkeypatch.setattr(runners.SplitRunner, "run", broken)
    p = iq.Pipeline(store=":memory:")
    t = iq.task(max_workers=max_workers, cache=False)(abs)
    yes, _no = p.split(bool, p.map(t, iq.Queue(itertools.count())))
    p.map(t, yes)
    with pytest.raises(PipelineError, match="bug in the split loop"):
        p.run()
    assert _queue_threads() == []


def _pid_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@pytest.mark.timeout(60)
def test_processes_backend_runs_in_worker_processes(tmp_path: Any) -> None:
    """backend='processes' computes in other processes, keeps order, caches and records failures."""
    t = iq.task(max_workers=2, backend="processes", name="sq")(lambda x: _pid_square(10 // x))
    p = iq.Pipeline(store=tmp_path)
    out = p.map(t, iq.Queue([1, 2, 0, 5]))
    report = p.run()
    results = list(out)
    assert [r[1] for r in results] == [100, 25, 4]
    assert all(pid != os.getpid() for pid, _ in results)
    (failure,) = report.failures
    assert failure.item == 0 and isinstance(failure.exception, ZeroDivisionError)
    assert "ZeroDivisionError" in failure.traceback
    p2 = iq.Pipeline(store=tmp_path)
    p2.map(t, iq.Queue([1, 2, 5]))
    assert p2.run().cached == 3
