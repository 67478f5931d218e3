"""The threads target: real pools, order, failures, nesting, and no leaked threads."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import traceback
from typing import Any

import pytest

from incgraph.errors import ParallelError
from incgraph.parallel import Batch, inbatch_parallel
from incgraph.parallel.threads import chunk_bounds, run_in_threads

WAIT = 30  # seconds; a generous bound that only matters if a test is broken


class Gated(Batch):
    """Item 0 cannot finish before the last item has finished."""

    def _init(self, *args: Any, **kwargs: Any) -> Any:
        self.finished: list[int] = []
        self.last_done = threading.Event()
        return self.indices

    @inbatch_parallel(init="_init", n_workers=2)
    def work(self, index: int) -> int:
        if index == 0:
            assert self.last_done.wait(WAIT), "the last item never ran"
        self.finished.append(index)
        if index == len(self) - 1:
            self.last_done.set()
        return index * 10


class Counting(Batch):
    def _init(self, *args: Any, **kwargs: Any) -> Any:
        return self.indices

    @inbatch_parallel(init="_init", n_workers=4)
    def thread_name(self, index: int) -> str:
        return threading.current_thread().name

    @inbatch_parallel(init="_init", n_workers=4)
    def fail_odd(self, index: int) -> int:
        if index % 2:
            raise ValueError(f"odd {index}")
        return index


def test_results_in_init_order_when_later_finish_first() -> None:
    """Results follow init order even though the last call finished before the first."""
    batch = Gated([0, 0])
    assert batch.work() == [0, 10]
    assert batch.finished == [1, 0]


def test_calls_really_run_in_several_threads() -> None:
    """Calls of one action run in more than one thread when they block each other."""
    names = set()

    class Meeting(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            self.barrier = threading.Barrier(3, timeout=WAIT)
            return self.indices

        @inbatch_parallel(init="_init", n_workers=3)
        def meet(self, index: int) -> int:
            names.add(threading.current_thread().name)
            return self.barrier.wait()

    assert sorted(Meeting([0, 0, 0]).meet()) == [0, 1, 2]
    assert len(names) == 3


def test_exceptions_in_place_with_traceback() -> None:
    """A failing call leaves its exception, with the raising frame, at its position."""
    results = run_in_threads(_fail_on_two, [((i,), {}) for i in range(40)], 4)
    assert results[:2] == [0, 1] and results[3:] == list(range(3, 40))
    assert isinstance(results[2], KeyError)
    assert traceback.extract_tb(results[2].__traceback__)[-1].name == "_fail_on_two"


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise KeyError(x)
    return x


def test_many_items_chunked_results_complete() -> None:
    """Ten thousand calls all run once and come back in order."""
    calls = [((i,), {}) for i in range(10_000)]
    assert run_in_threads(lambda x: x + 1, calls, 4) == list(range(1, 10_001))


def test_chunk_bounds_cover_range_exactly() -> None:
    """Chunk bounds are contiguous, cover every call once and differ in size by at most one."""
    for n_calls in (1, 7, 16, 1000):
        for n_chunks in (1, 3, 16, 2000):
            bounds = chunk_bounds(n_calls, n_chunks)
            assert bounds[0][0] == 0 and bounds[-1][1] == n_calls
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = {stop - start for start, stop in bounds}
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_failures_in_many_chunks_all_kept() -> None:
    """Every failing call keeps its own exception across chunks and threads."""
    with pytest.raises(ParallelError) as info:
        Counting(list(range(50))).fail_odd()
    assert [str(exc) for exc in info.value.exceptions] == [f"odd {i}" for i in range(1, 50, 2)]


def test_single_call_runs_inline() -> None:
    """One call runs in the calling thread, with no thread hand-off."""
    assert Counting([0]).thread_name() == [threading.current_thread().name]


def test_nested_actions_do_not_deadlock() -> None:
    """An action called from inside another action's calls completes (the caller helps)."""

    class Inner(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices

        @inbatch_parallel(init="_init", n_workers=2)
        def inner(self, index: int) -> int:
            return index

    class Outer(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices

        @inbatch_parallel(init="_init", n_workers=2)
        def outer(self, index: int) -> int:
            return sum(Inner(list(range(20))).inner())

    assert Outer(list(range(8))).outer() == [sum(range(20))] * 8


def test_kwargs_and_call_args_reach_method() -> None:
    """Call-time arguments are appended after each entry's in the threads target."""

    class Adder(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return [([self.data, i], {"bias": 1}) for i in self.indices]

        @inbatch_parallel(init="_init", n_workers=2)
        def add(self, data: list[int], index: int, step: int, *, bias: int, scale: int) -> int:
            return (data[index] + step + bias) * scale

    assert Adder([1, 2, 3]).add(10, scale=2) == [24, 26, 28]


def test_no_threads_leak_over_many_calls() -> None:
    """Hundreds of actions reuse pooled threads: the thread count stays bounded."""
    batch = Counting(list(range(16)))
    batch.thread_name()
    baseline = threading.active_count()
    for _ in range(300):
        batch.thread_name()
    assert threading.active_count() <= baseline


def test_base_exception_stops_and_propagates() -> None:
    """A KeyboardInterrupt raised in a call is re-raised in the caller, not stored."""

    class Interrupted(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices

        @inbatch_parallel(init="_init", n_workers=3)
        def work(self, index: int) -> int:
            if index == 5:
                raise KeyboardInterrupt
            return index

    with pytest.raises(KeyboardInterrupt):
        Interrupted(list(range(30))).work()
    assert Counting([0, 1]).thread_name()  # the pools still work afterwards


def _run_action_in_child() -> None:
    results = Counting(list(range(64))).thread_name()
    if len(results) != 64:
        raise SystemExit(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_child_gets_fresh_pools() -> None:
    """After fork, a child process runs thread actions with new pools instead of hanging."""
    Counting(list(range(64))).thread_name()  # the parent's pool exists and has threads
    child = multiprocessing.get_context("fork").Process(target=_run_action_in_child)
    child.start()
    child.join(WAIT)
    assert child.exitcode == 0
