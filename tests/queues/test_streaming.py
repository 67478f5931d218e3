"""Streaming: bounded memory, reading outputs while the pipeline runs, and how reading ends."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

import incgraph.queues as iq
from incgraph.errors import PipelineError


def inc(x: int) -> int:
    return x + 1


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_million_items_stream_with_bounded_in_flight_items() -> None:
    """Over 1M items from a generator, items produced but not yet consumed stay bounded."""
    n = 1_000_000
    produced = 0

    def numbers() -> Iterator[int]:
        nonlocal produced
        for i in range(n):
            produced += 1
            yield i

    p = iq.Pipeline(store=":memory:")
    t = iq.task(cache=False)(inc)
    out = p.chain([t, t], iq.Queue(numbers()))
    handle = p.run(block=False)
    consumed = total = peak = 0
    for x in out:
        consumed += 1
        total += x
        if consumed % 4096 == 0:
            peak = max(peak, produced - consumed)
    report = handle.wait()
    assert consumed == n and total == sum(range(n)) + 2 * n
    # three queues of 2048 items (+ one 512-item chunk each), chunks in hand, one read buffer
    assert peak < 20_000, f"{peak} items were in flight at once"
    assert report.nodes["inc#2"].items_out == n


@pytest.mark.timeout(20)
def test_results_can_be_read_before_the_input_ends() -> None:
    """With run(block=False), a result arrives while the input generator is still waiting."""
    first_result_seen = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        assert first_result_seen.wait(10), "the first result never reached the reader"
        yield 2

    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue(items()))
    handle = p.run(block=False)
    assert out.get(timeout=10) == 2
    first_result_seen.set()
    assert list(out) == [3]
    assert handle.wait().ok and handle.done()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", [1, 2, 8, 32])
def test_empty_input_finishes_at_once(max_workers: int) -> None:
    """A pipeline over an empty input ends, leaving empty outputs, for any max_workers."""
    p = iq.Pipeline(store=":memory:")
    t = iq.task(max_workers=max_workers)(inc)
    yes, no = p.split(bool, p.chain([t, t], iq.Queue([])))
    merged = p.merge([p.unbatch(p.batch(yes, 3)), p.filter(bool, no)])
    report = p.run()
    assert list(merged) == [] and report.computed == 0 and report.ok


def test_get_after_the_end_raises_empty_or_returns_default() -> None:
    """Once drained, get() raises queue.Empty (exhausted is True) or returns the default."""
    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue([1]))
    p.run()
    assert out.qsize() == 1 and not out.exhausted
    assert out.get() == 2
    assert out.exhausted
    with pytest.raises(queue.Empty, match="exhausted"):
        out.get()
    with pytest.raises(queue.Empty):
        out.get_nowait()
    assert out.get(default=None) is None
    assert list(out) == []


def test_breaking_out_of_iteration_loses_nothing() -> None:
    """Items not yet taken when a for loop breaks stay in the queue."""
    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue(range(100)))
    p.run()
    taken = []
    for x in out:
        taken.append(x)
        if len(taken) == 10:
            break
    assert taken + list(out) == list(range(1, 101))


def test_reading_before_run_or_an_inner_queue_is_an_error() -> None:
    """get() before run() says to run; reading a queue a stage consumes says to read outputs."""
    p = iq.Pipeline(store=":memory:")
    q_in = iq.Queue([1])
    out = p.map(inc, q_in)
    with pytest.raises(PipelineError, match=r"call run\(\)"):
        out.get()
    p.run()
    with pytest.raises(PipelineError, match="read the pipeline's output queues"):
        q_in.get()


@pytest.mark.timeout(20)
def test_an_unread_output_does_not_block_another() -> None:
    """Reading one output while a second, unread one fills up does not deadlock."""
    p = iq.Pipeline(store=":memory:")
    big, small = p.split(lambda x: x % 100 != 0, iq.Queue(range(20_000)))
    handle = p.run(block=False, capacity=64, chunk_size=16)
    assert list(small) == list(range(0, 20_000, 100))
    handle.wait()
    assert len(list(big)) == 19_800


@pytest.mark.timeout(20)
def test_wait_without_reading_does_not_deadlock() -> None:
    """run(block=False) then wait() with unread outputs finishes; the results stay readable."""
    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue(range(10_000)))
    handle = p.run(block=False, capacity=16, chunk_size=4)
    report = handle.wait()
    assert report.nodes["inc"].items_out == 10_000 and len(list(out)) == 10_000


@pytest.mark.timeout(20)
def test_cancel_stops_the_run() -> None:
    """cancel() stops an endless pipeline; wait() then raises PipelineError saying so."""

    def forever() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    p = iq.Pipeline(store=":memory:")
    out = p.map(iq.task(cache=False)(inc), iq.Queue(forever()))
    handle = p.run(block=False)
    assert out.get(timeout=10) == 1
    handle.cancel()
    with pytest.raises(PipelineError, match="cancelled"):
        handle.wait()
    assert not [t for t in threading.enumerate() if t.name.startswith("incgraph-queues")]


def test_a_failing_input_generator_is_recorded() -> None:
    """An input generator that raises ends that input; the failure is in the report."""

    def broken() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue(broken(), name="files"))
    report = p.run()
    assert list(out) == [2]
    (failure,) = report.failures
    assert failure.node == "files" and isinstance(failure.exception, OSError)


@pytest.mark.timeout(20)
def test_run_handle_as_context_manager_and_wait_timeout() -> None:
    """Leaving a `with run(block=False)` block waits; wait(timeout) raises while still running."""
    p = iq.Pipeline(store=":memory:")
    out = p.map(inc, iq.Queue(range(100)))
    with p.run(block=False) as handle:
        assert len(list(out)) == 100
    assert handle.done() and p.last_report is not None

    release = threading.Event()

    def stuck(x: int) -> int:
        assert release.wait(10), "never released"
        return x

    p2 = iq.Pipeline(store=":memory:")
    p2.map(iq.task(cache=False)(stuck), iq.Queue([1]))
    handle2 = p2.run(block=False)
    with pytest.raises(PipelineError, match="did not finish within"):
        handle2.wait(timeout=0.2)
    release.set()
    assert handle2.wait().ok
