"""What each operation does to the stream: order, routing, grouping, failures as data."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import incgraph.queues as iq
from incgraph.errors import PipelineError

WORKERS = [1, 2, 8, 32]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", WORKERS[1:])
def test_map_keeps_input_order_when_workers_finish_out_of_order(max_workers: int) -> None:
    """With several workers, item 0 finishing after item 5 still comes out first."""
    fifth_done = threading.Event()

    @iq.task(max_workers=max_workers, cache=False)
    def work(x: int) -> int:
        if x == 0:
            assert fifth_done.wait(10), "item 5 never ran while item 0 was in flight"
        if x == 5:
            fifth_done.set()
        return x * 10

    p = iq.Pipeline(store=":memory:")
    out = p.map(work, iq.Queue(range(200)))
    report = p.run()
    assert report.ok
    assert list(out) == [x * 10 for x in range(200)]


@settings(max_examples=25, deadline=None)
@given(
    items=st.lists(st.integers(-1000, 1000), max_size=300),
    workers=st.sampled_from([1, 3]),
    cache=st.booleans(),
)
def test_chain_equals_a_plain_loop(items: list[int], workers: int, cache: bool) -> None:
    """For any input, a chain's output is exactly the plain loop's, in order."""
    p = iq.Pipeline(store=":memory:")
    f = iq.task(max_workers=workers, cache=cache)(lambda x: x * 3)
    g = iq.task(cache=cache)(lambda x: x - 1)
    out = p.chain([f, g], iq.Queue(items))
    p.run()
    assert list(out) == [x * 3 - 1 for x in items]


@pytest.mark.parametrize("max_workers", WORKERS)
def test_a_failing_item_is_recorded_and_the_others_go_on(max_workers: int) -> None:
    """A task raising for an item leaves it out, records item, exception and node; others go on."""
    t = iq.task(max_workers=max_workers, name="inverse")(lambda x: 1 / x)
    p = iq.Pipeline(store=":memory:")
    out = p.map(t, iq.Queue([1, 0, 2, 0, 4]))
    report = p.run()
    assert list(out) == [1.0, 0.5, 0.25]
    assert [(f.node, f.index, f.item) for f in report.failures] == [
        ("inverse", 1, 0),
        ("inverse", 3, 0),
    ]
    assert all(isinstance(f.exception, ZeroDivisionError) for f in report.failures)
    assert "ZeroDivisionError" in report.failures[0].traceback
    counts = report.nodes["inverse"]
    assert (counts.items_in, counts.items_out, counts.failed) == (5, 3, 2)
    assert not report.ok


def test_split_routes_by_truth_by_default() -> None:
    """split(pred, q) returns (q_true, q_false), truthy values going to the first."""
    p = iq.Pipeline(store=":memory:")
    evens, odds = p.split(lambda x: x % 2 == 0, iq.Queue(range(7)))
    truthy, falsy = p.split(lambda s: s, iq.Queue(["a", "", "b"]))
    p.run()
    assert (list(evens), list(odds)) == ([0, 2, 4, 6], [1, 3, 5])
    assert (list(truthy), list(falsy)) == (["a", "b"], [""])


def test_split_with_values_fails_items_whose_value_has_no_output() -> None:
    """With predicate_values, an unlisted value is a recorded failure naming the values."""
    p = iq.Pipeline(store=":memory:")
    a, b = p.split(lambda s: s[0], iq.Queue(["apple", "banana", "cherry"]), ("a", "b"))
    report = p.run()
    assert (list(a), list(b)) == (["apple"], ["banana"])
    (failure,) = report.failures
    assert failure.item == "cherry" and failure.node == "split[<lambda>]"
    assert isinstance(failure.exception, PipelineError)
    assert "'c'" in str(failure.exception) and "predicate_values" in str(failure.exception)


def test_a_predicate_that_raises_fails_only_that_item() -> None:
    """split and filter predicates that raise record the item and keep going."""
    p = iq.Pipeline(store=":memory:")
    kept = p.filter(lambda x: 10 // x > 2, iq.Queue([1, 0, 5, 2]))
    report = p.run()
    assert list(kept) == [1, 2]
    assert [(f.node, f.item) for f in report.failures] == [("filter[<lambda>]", 0)]


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [
        (0, 3, []),
        (6, 3, [[0, 1, 2], [3, 4, 5]]),
        (7, 3, [[0, 1, 2], [3, 4, 5], [6]]),
        (2, 10, [[0, 1]]),
    ],
)
def test_batch_groups_without_a_trailing_empty_batch(
    n: int, size: int, expected: list[list[int]]
) -> None:
    """batch groups consecutive items; the last batch may be short and is never empty."""
    p = iq.Pipeline(store=":memory:")
    out = p.batch(iq.Queue(range(n)), batch_size=size)
    p.run()
    assert list(out) == expected


def test_batch_then_unbatch_is_the_identity_across_chunks() -> None:
    """unbatch(batch(q)) gives back every item in order, also across many chunks."""
    p = iq.Pipeline(store=":memory:")
    out = p.unbatch(p.batch(iq.Queue(range(5000)), batch_size=7))
    p.run(chunk_size=64)
    assert list(out) == list(range(5000))


def test_unbatch_fails_items_that_are_not_batches() -> None:
    """An item that is not a list-like batch is a recorded failure; strings are not batches."""
    p = iq.Pipeline(store=":memory:")
    out = p.unbatch(iq.Queue([[1, 2], 3, "ab", (4,)]))
    report = p.run()
    assert list(out) == [1, 2, 4]
    assert [f.item for f in report.failures] == [3, "ab"]


def test_task_returning_lists_can_be_unbatched() -> None:
    """The seed's shape: a task over batches returns lists, unbatch flattens them in order."""
    p = iq.Pipeline(store=":memory:")
    out = p.unbatch(p.map(lambda b: [x * 2 for x in b], p.batch(iq.Queue(range(25)), 10)))
    p.run()
    assert list(out) == [x * 2 for x in range(25)]


@pytest.mark.timeout(20)
def test_merge_interleaves_as_items_arrive() -> None:
    """merge passes on items of a fast queue while a slow one is still blocked."""
    release = threading.Event()

    def slow(x: int) -> int:
        assert release.wait(10), "the slow branch was never released"
        return x

    p = iq.Pipeline(store=":memory:")
    q_slow = p.map(iq.task(cache=False)(slow), iq.Queue(["s1", "s2"]))
    q_fast = p.map(iq.task(cache=False)(str.upper), iq.Queue(["f1", "f2"]))
    out = p.merge([q_slow, q_fast])
    handle = p.run(block=False)
    first_two = [out.get(timeout=10), out.get(timeout=10)]
    release.set()
    rest = list(out)
    report = handle.wait()
    assert first_two == ["F1", "F2"] and rest == ["s1", "s2"]
    assert (report.nodes["merge"].items_in, report.nodes["merge"].items_out) == (4, 4)


def test_merge_of_merges_and_sources() -> None:
    """merge takes input queues directly, and merges can be nested."""
    p = iq.Pipeline(store=":memory:")
    inner = p.merge((iq.Queue([1, 2]), iq.Queue([3])))
    out = p.merge([inner, iq.Queue([4])])
    report = p.run()
    assert sorted(out) == [1, 2, 3, 4]
    assert report.nodes["merge"].items_out == 3 and report.nodes["merge#2"].items_out == 4


def test_report_counts_items_per_node() -> None:
    """The report has items in/out for every input queue, task and op."""
    p = iq.Pipeline(store=":memory:")
    q = p.map(lambda x: x + 1, iq.Queue(range(10), name="numbers"))
    p.filter(lambda x: x % 2, q)
    report = p.run()
    summary = {name: (c.items_in, c.items_out) for name, c in report.nodes.items()}
    assert summary == {"numbers": (0, 10), "<lambda>": (10, 10), "filter[<lambda>]": (10, 5)}
    assert "<lambda>: 10 in, 10 out, 10 computed, 0 cached" in report.summary()
