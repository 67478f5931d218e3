"""Task results are immutable once computed: a downstream task changing its item in place
changes neither the stored result nor what a rerun returns."""

from __future__ import annotations

from pathlib import Path

import pytest

import incgraph.queues as iq

CALLS: list[str] = []


def make_list(n: int) -> list[int]:
    CALLS.append("make")
    return list(range(n))


def append_in_place(xs: list[int]) -> int:
    xs.append(99)
    return len(xs)


@pytest.mark.parametrize("max_workers", [1, 3])
def test_downstream_task_mutating_its_item(tmp_path: Path, max_workers: int) -> None:
    """A rerun of the producing task alone returns its results as computed, as hits."""
    first = iq.Pipeline(store=tmp_path)
    out = first.chain(
        [iq.Task(make_list, max_workers=max_workers), iq.Task(append_in_place)], iq.Queue([1, 2])
    )
    first.run()
    assert list(out) == [2, 3]
    CALLS.clear()
    again = iq.Pipeline(store=tmp_path)
    made = again.chain([iq.Task(make_list, max_workers=max_workers)], iq.Queue([1, 2]))
    report = again.run()
    assert list(made) == [[0], [0, 1]]
    assert (report.cached, CALLS) == (2, [])


def test_duplicate_items_do_not_share_one_result(tmp_path: Path) -> None:
    """Two equal items computed once give two results: mutating one leaves the other."""
    p = iq.Pipeline(store=tmp_path)
    out = p.chain([iq.Task(make_list), iq.Task(append_in_place)], iq.Queue([2, 2]))
    p.run()
    assert list(out) == [3, 3]
