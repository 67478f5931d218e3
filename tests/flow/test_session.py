"""A flow run is one store session: one run-log row, its writes through the session's writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph import memoize
from incgraph.errors import NodeError
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.store import Store, memory_store, open_store
from incgraph.store.invalidation import FOREACH_MEMO


def grid(n: int, fail_flag: Path | None = None) -> tuple[type[Flow], type[Layer]]:
    """Make -> Square (ForEach over n elements) -> Total; Square fails at 7 while the
    ``fail_flag`` file exists."""

    class Grid(Flow): ...

    @Grid.register
    class Make(Layer):
        def __call__(self) -> None:
            self.shard(x=list(range(n)))
            self.note = {"made": n}

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Make, attribute="x")]))
    class Square(Layer):
        def __call__(self, make: Make) -> None:
            if make.x == 7 and fail_flag is not None and fail_flag.exists():
                raise ValueError(f"no square for {make.x}")
            self.y = make.x * make.x
            self.seen = dict(make.note)

    @Grid.register
    class Total(Layer):
        def __call__(self, square: Square) -> None:
            self.total = sum(square.y)

    return Grid, Total


@pytest.fixture(params=["memory", "folder"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return memory_store() if request.param == "memory" else open_store(tmp_path / "store")


def test_a_flow_run_is_one_run_in_the_run_log(store: Store) -> None:
    """A flow of 80 ForEach tasks over three waves is one 'flow' row, on any store."""
    Grid, Total = grid(80)
    execution = Grid(store=store)()
    assert execution[Total].total == sum(i * i for i in range(80))
    (run,) = store.runs()
    assert (run.kind, run.label, run.status) == ("flow", "Grid", "ok")
    assert run.computed >= 83  # Make, 80 tasks, the join, Total (and the ForEach memo row)


def test_a_cached_rerun_is_one_more_run_with_only_hits(store: Store) -> None:
    """The rerun of an unchanged flow is one run that hits and writes nothing."""
    Grid, _ = grid(80)
    Grid(store=store)()
    again = Grid(store=store)()
    assert again.computed == []
    first, second = store.runs()
    assert second.computed == 0 and second.hits > 0 and first.computed > 0


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_failed_flow_is_one_failed_run_and_keeps_what_finished(
    store: Store, executor: str, tmp_path: Path
) -> None:
    """A task that raises fails the run (one 'failed' row); the other tasks are hits after."""
    flag = tmp_path / "fail"
    flag.touch()
    Grid, _ = grid(20, flag)
    with pytest.raises(NodeError, match="no square for 7"):
        Grid(store=store)(executor=executor)
    (run,) = store.runs()
    assert run.status == "failed" and run.computed >= 8  # Make and the tasks before 7
    flag.unlink()
    rerun = Grid(store=store)(executor=executor)
    assert "Square[7]" in rerun.computed
    assert not {"Make", *(f"Square[{i}]" for i in range(7))} & set(rerun.computed)


def test_artifacts_set_by_a_layer_are_committed_with_it(tmp_path: Path) -> None:
    """Every artifact blob a run's layers set is in the store when the run returns."""
    Grid, _ = grid(30)
    store = open_store(tmp_path / "store")
    Grid(store=store)()
    assert store.verify().ok
    reopened = open_store(tmp_path / "store")
    again = Grid(store=reopened)()
    assert again.computed == []
    assert reopened.runs()[-1].hits > 0


def test_a_layer_reads_what_its_upstream_layer_just_set_from_the_writer(tmp_path: Path) -> None:
    """A downstream layer reads the artifact its upstream layer just set without a store read."""
    store = open_store(tmp_path / "store")
    written: list[str] = []
    read: list[str] = []

    class Fresh(Flow): ...

    @Fresh.register
    class Big(Layer):
        def __call__(self) -> None:
            self.rows = [{"row": i, "pad": "." * 40} for i in range(200)]

    @Fresh.register
    class Reader(Layer):
        def __call__(self, big: Big) -> None:
            self.n = len(big.rows)

    put_many, get = store.blobs.put_many, store.blobs.get

    def putting(items: Any, **kwargs: Any) -> Any:
        items = list(items)
        written.extend(dv for dv, _ in items)
        return put_many(items, **kwargs)

    def getting(data_version: str) -> Any:
        read.append(data_version)
        return get(data_version)

    store.blobs.put_many = putting  # type: ignore[method-assign]
    store.blobs.get = getting  # type: ignore[method-assign]
    execution = Fresh(store=store)()
    assert execution[Reader].n == 200
    assert written and not set(written) & set(read)


def memo_key(store: Store) -> str:
    """The ForEach memo key of ``store``'s only flow run."""
    (memo,) = [r for r in store.index.records() if r.processor == FOREACH_MEMO]
    return memo.key


def test_a_foreach_memo_held_by_another_process_is_not_waited_for(tmp_path: Path) -> None:
    """A memo key another live claimant holds: the tasks run (a fresh store), nothing blocks."""
    Grid, Total = grid(10)
    Grid(store=open_store(tmp_path / "first"))()
    key = memo_key(open_store(tmp_path / "first"))
    store = open_store(tmp_path / "second")
    other = store.lessee()
    assert other.claim_many([key]).mine == [key]
    execution = Grid(store=store)()
    assert execution[Total].total == sum(i * i for i in range(10))
    assert "Square[3]" in execution.computed
    other.close()
    assert memo_key(store) == key


def test_a_foreach_memo_hit_is_decided_and_logged_as_a_hit(tmp_path: Path) -> None:
    """The rerun finds the memo by the decide step: no task node, the memo key logged as a hit."""
    Grid, _ = grid(10)
    store = open_store(tmp_path / "store")
    Grid(store=store)()
    key = memo_key(store)
    again = Grid(store=store)()
    assert again.computed == [] and "Square[9]" in again.cached
    last = store.runs()[-1]
    hits, written = store.ledger.run_keys([last.id])[last.id]
    assert key in hits and written == []
    assert store.ledger.lease_states([key]) == {}


def test_a_memoized_function_called_in_a_layer_keeps_its_own_session(tmp_path: Path) -> None:
    """A memoized function first called inside a flow run logs in its own session, after it too."""
    store = open_store(tmp_path / "store")

    @memoize(store=store)
    def double(x: int) -> int:
        return 2 * x

    class Memo(Flow): ...

    @Memo.register
    class Uses(Layer):
        def __call__(self) -> None:
            self.y = double(21)

    assert Memo(store=store)()[Uses].y == 42
    assert double(21) == 42 and double(5) == 10  # after the flow's session closed
    double.close()
    runs = store.runs()
    assert [r.kind for r in runs].count("flow") == 1
    memoized = [r for r in runs if r.kind == "memoize"]
    assert sum(r.computed for r in memoized) == 2
