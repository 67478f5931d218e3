"""Per-item caching: reruns compute nothing, keys match the engine's, unhashable items fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import incgraph.queues as iq
from incgraph import DEFAULT_SETTINGS, hashing
from incgraph.errors import HashingError
from incgraph.queues.caching import Stored, materialize
from incgraph.run.keys import item_key_maker
from incgraph.store import memory_store, open_store

CALLS: list[Any] = []
_calls_lock = threading.Lock()


def square(x: int) -> int:
    with _calls_lock:
        CALLS.append(x)
    return x * x


def plus_one(x: int) -> int:
    with _calls_lock:
        CALLS.append(("plus_one", x))
    return x + 1


def _run(
    store: Path, items: list[Any], *tasks: Any, **run_options: Any
) -> tuple[list[Any], iq.PipelineReport]:
    p = iq.Pipeline(store=store)
    out = p.chain(list(tasks), iq.Queue(items))
    report = p.run(**run_options)
    assert isinstance(report, iq.PipelineReport)
    return list(out), report


@pytest.mark.parametrize("max_workers", [1, 4])
def test_rerun_computes_nothing_and_one_new_item_computes_one(
    tmp_path: Path, max_workers: int
) -> None:
    """A rerun over the same items is all hits with equal results; one new item computes once."""
    CALLS.clear()
    t = iq.Task(square, max_workers=max_workers)
    first, r1 = _run(tmp_path, [1, 2, 3], t)
    assert (first, r1.computed, r1.cached) == ([1, 4, 9], 3, 0)
    CALLS.clear()
    again, r2 = _run(tmp_path, [1, 2, 3], t)
    assert (again, r2.computed, r2.cached, CALLS) == ([1, 4, 9], 0, 3, [])
    more, r3 = _run(tmp_path, [1, 2, 3, 4], t)
    assert (more, r3.computed, r3.cached, CALLS) == ([1, 4, 9, 16], 1, 3, [4])


def test_cached_chain_loads_values_only_where_needed(tmp_path: Path) -> None:
    """A fully cached chain, then ops and an uncached task downstream, still see the real values."""
    _run(tmp_path, list(range(50)), square, plus_one)
    CALLS.clear()
    p = iq.Pipeline(store=tmp_path)
    q = p.chain([square, plus_one], iq.Queue(range(50)))
    evens, odds = p.split(lambda v: v % 2 == 0, q)
    doubled = p.map(iq.task(cache=False)(lambda v: v * 2), evens)
    batches = p.batch(odds, 4)
    report = p.run()
    assert report.computed == 25 and report.cached == 100
    assert list(doubled) == [2 * (x * x + 1) for x in range(50) if (x * x + 1) % 2 == 0]
    flat = [v for b in batches for v in b]
    assert flat == [x * x + 1 for x in range(50) if (x * x + 1) % 2 == 1]
    assert CALLS == []


def test_cache_false_always_computes(tmp_path: Path) -> None:
    """A task declared cache=False computes every item on every run and stores nothing."""
    CALLS.clear()
    t = iq.task(cache=False)(square)
    _run(tmp_path, [1, 2], t)
    _, report = _run(tmp_path, [1, 2], t)
    assert report.computed == 2 and report.cached == 0 and CALLS == [1, 2, 1, 2]
    assert list(open_store(tmp_path).index.records()) == []


def test_key_and_record_are_the_engines(tmp_path: Path) -> None:
    """An application is saved under node_key(code_version(fn), dv({}), {item: dv}) with lineage."""
    _run(tmp_path, [7], square)
    key = hashing.node_key(
        hashing.code_version(square), hashing.data_version({}), {"item": hashing.data_version(7)}
    )
    store = open_store(tmp_path)
    record = store.lookup(key)
    assert record.data_version == hashing.data_version(49)
    assert record.node == "square" and record.processor.endswith("test_caching.square")
    assert record.inputs == {"item": hashing.data_version(7)}
    assert store.load(record) == 49


def test_the_engine_and_the_pipeline_share_results(tmp_path: Path) -> None:
    """Running a task node through pipeline.graph's engine makes the pipeline's run a hit."""
    p = iq.Pipeline(store=tmp_path)
    out = p.map(square, iq.Queue([5], name="numbers"))
    p.graph.nodes["queue:numbers"].set_value(5)
    assert p.graph.run_upto(p.graph.nodes["square"]) == 25
    report = p.run()
    assert list(out) == [25] and (report.computed, report.cached) == (0, 1)


def test_changing_the_function_invalidates(tmp_path: Path) -> None:
    """A task whose code differs (same name) computes again."""

    def f(x):
        return x + 1

    first = f

    def f(x):
        return x + 2

    _run(tmp_path, [1], iq.Task(first, name="f"))
    out, report = _run(tmp_path, [1], iq.Task(f, name="f"))
    assert out == [3] and report.computed == 1


def test_unhashable_items_fail_with_a_message_naming_task_and_item(tmp_path: Path) -> None:
    """An item with no content hash fails for a cached task (a HashingError naming both)."""

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    out, report = _run(tmp_path, [1, Opaque(), 3], iq.Task(lambda x: x, name="ident"))
    assert out == [1, 3]
    (failure,) = report.failures
    assert failure.node == "ident" and failure.index == 1
    assert isinstance(failure.exception, HashingError)
    message = str(failure.exception)
    assert "'ident'" in message and "<opaque>" in message and "cache=False" in message
    uncached, report2 = _run(tmp_path, [Opaque()], iq.Task(lambda x: 1, name="n", cache=False))
    assert uncached == [1] and report2.ok


class Box:
    """A picklable value with no content hash."""

    def __init__(self, v: int) -> None:
        self.v = v


def boxed(x: int) -> Box:
    return Box(x)


def unbox(b: Box) -> int:
    return b.v


def test_unhashable_results_are_cached_by_key(tmp_path: Path) -> None:
    """A result with no content hash is still stored, under a version derived from its key."""
    with pytest.raises(HashingError):
        hashing.data_version(Box(1))
    out, _ = _run(tmp_path, [1, 2], boxed, unbox)
    out2, report = _run(tmp_path, [1, 2], boxed, unbox)
    assert out == out2 == [1, 2] and report.computed == 0 and report.cached == 4


def test_unpicklable_results_are_passed_on_and_listed_as_uncached(tmp_path: Path) -> None:
    """A result the store cannot pickle still flows on; the report lists it under uncached."""
    lock = threading.Lock()

    def make_lock(x: int) -> Any:
        return lock if x == 2 else x

    t = iq.Task(make_lock, name="make_lock")
    out, report = _run(tmp_path, [1, 2, 3], t)
    assert out == [1, lock, 3] and report.ok
    (entry,) = report.uncached
    assert (entry.node, entry.index, entry.item) == ("make_lock", 1, 2)
    assert "cannot be pickled" in str(entry.exception)
    _, again = _run(tmp_path, [1, 2, 3], t)
    assert (again.computed, again.cached) == (1, 2)


def test_duplicate_items_get_the_same_result(tmp_path: Path) -> None:
    """Repeated items all get their result; copies met in the same chunk are not computed again."""
    CALLS.clear()
    out, report = _run(tmp_path, [3] * 200 + [2], square)
    assert out == [9] * 200 + [4]
    assert report.computed + report.cached == 201 and report.cached > 150
    assert sorted(set(CALLS)) == [2, 3]


def test_duplicate_of_a_failing_item_fails_too(tmp_path: Path) -> None:
    """A copy of an item whose computation failed is recorded as failed, never dropped silently."""
    out, report = _run(tmp_path, [1] + [0] * 20, iq.Task(lambda x: 1 // x, name="inv"))
    assert out == [1] and [f.index for f in report.failures] == list(range(1, 21))


@pytest.mark.timeout(60)
def test_second_process_computes_nothing(tmp_path: Path) -> None:
    """A pipeline rerun in a new Python process is served entirely from the store."""
    script = textwrap.dedent(
        f"""
        import incgraph.queues as iq

        def shout(s):
            return s.upper() + "!"

        p = iq.Pipeline(store={str(tmp_path / "store")!r})
        out = p.chain([shout, len], iq.Queue(["a", "bb", "ccc"]))
        report = p.run()
        print(list(out), report.computed, report.cached)
        """
    )
    path = tmp_path / "script.py"
    path.write_text(script)
    runs = [
        subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs == ["[2, 3, 4] 6 0\n", "[2, 3, 4] 0 6\n"]


def test_a_hit_whose_blob_is_gone_is_computed_again() -> None:
    """A cached result whose blob vanished is recomputed from its input, not a crash."""
    store = memory_store()
    CALLS.clear()
    first = iq.Pipeline(store=store)
    out1 = first.chain([square, plus_one], iq.Queue([2, 3]))
    first.run()
    assert list(out1) == [5, 10]
    for record in list(store.index.records()):
        store.blobs.delete(record.data_version)
    CALLS.clear()
    second = iq.Pipeline(store=store)
    out2 = second.chain([square, plus_one], iq.Queue([2, 3]))
    report = second.run()
    assert list(out2) == [5, 10] and report.cached == 4
    assert sorted(map(str, CALLS)) == sorted(map(str, [2, ("plus_one", 4), 3, ("plus_one", 9)]))


def test_failures_after_a_hit_report_the_real_item(tmp_path: Path) -> None:
    """An item failing downstream of a cached hit is reported with its value, not a placeholder."""

    def picky(x: int) -> int:
        if x == 4:
            raise ValueError("no fours")
        return x

    _run(tmp_path, [1, 2], square)
    for cache in (False, True):
        _, report = _run(tmp_path, [1, 2], square, iq.Task(picky, cache=cache))
        (failure,) = report.failures
        assert failure.item == 4 and failure.node == "picky"


def test_fast_item_keys_are_node_keys() -> None:
    """A stage's fast item keys are exactly the engine's node_key of its node with input 'item'."""
    p = iq.Pipeline(store=":memory:")
    p.map(square, iq.Queue([7]))
    node = p.graph.nodes["square"]
    cv, dv = hashing.code_version(square), hashing.data_version(7)
    expected = hashing.node_key(cv, hashing.data_version({}), {"item": dv})
    assert item_key_maker(node, "item")(dv) == expected


def test_a_lost_blob_is_recomputed_outside_the_store_turn() -> None:
    """materialize loads inside the store-reads lock but recomputes a lost value after it."""
    store, turn = memory_store(), threading.Lock()
    held: list[bool] = []

    def double(x: int) -> int:
        held.append(turn.locked())
        return 2 * x

    lost = Stored(hashing.data_version("never saved"), double, 21)
    assert materialize([1, lost], store, turn) == [1, 42]
    assert held == [False] and not turn.locked()


def test_a_cached_rerun_looks_items_up_in_full_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of hits ask for full chunks even when look-ups are slow (waits are not work)."""
    store = open_store(tmp_path)
    items = list(range(1000))
    _run_on(store, items)
    asked: list[int] = []
    lookup_versions = store.lookup_versions

    def slow_lookup(keys: Any) -> dict[str, str]:
        keys = list(keys)
        asked.append(len(keys))
        time.sleep(0.003)  # a slow store: many times the chunk-time target
        return lookup_versions(keys)

    monkeypatch.setattr(store, "lookup_versions", slow_lookup)
    out, report = _run_on(store, items, chunk_size=250)
    assert out == [x * x + 1 for x in items] and report.cached == 2000
    assert max(asked) == 250 and len(asked) <= 2 * (1000 // 250 + 1)


def test_a_slow_task_still_takes_its_items_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk sizes follow the task's own time: misses of a slow task come one at a time."""
    store = open_store(tmp_path)
    asked: list[int] = []
    lookup_versions = store.lookup_versions

    def counted(keys: Any) -> dict[str, str]:
        keys = list(keys)
        asked.append(len(keys))
        return lookup_versions(keys)

    def slow(x: int) -> int:
        time.sleep(0.01)  # ten times the chunk-time target per item
        return x

    monkeypatch.setattr(store, "lookup_versions", counted)
    p = iq.Pipeline(store=store)
    out = p.map(iq.Task(slow), iq.Queue(list(range(6))))
    p.run()
    assert list(out) == list(range(6)) and asked == [1] * 6


def _run_on(store: Any, items: list[int], **run_options: Any) -> tuple[list[int], Any]:
    p = iq.Pipeline(store=store)
    out = p.chain([square, plus_one], iq.Queue(items))
    report = p.run(**run_options)
    return list(out), report


def test_chunk_sizes_follow_the_pipelines_settings(tmp_path: Path) -> None:
    """A pipeline's settings (queue_chunk_size) bound every look-up; run() arguments override."""
    store = open_store(tmp_path)
    _run_on(store, list(range(100)))
    asked: list[int] = []
    lookup_versions = store.lookup_versions

    def counted(keys: Any) -> dict[str, str]:
        keys = list(keys)
        asked.append(len(keys))
        return lookup_versions(keys)

    store.lookup_versions = counted  # type: ignore[method-assign]
    p = iq.Pipeline(store=store, settings=DEFAULT_SETTINGS.replace(queue_chunk_size=16))
    out = p.chain([square, plus_one], iq.Queue(list(range(100))))
    assert p.run().cached == 200 and list(out) == [x * x + 1 for x in range(100)]
    assert max(asked) == 16
    asked.clear()
    p = iq.Pipeline(store=store, settings=DEFAULT_SETTINGS.replace(queue_chunk_size=16))
    p.chain([square, plus_one], iq.Queue(list(range(100))))
    p.run(chunk_size=32)
    assert max(asked) == 32
