"""The async target: gather in a fresh loop, also when a loop is already running."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import traceback
from typing import Any

import pytest

from incgraph.errors import ParallelError
from incgraph.parallel import Batch, action, any_action_failed, inbatch_parallel

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="none")
WAIT = 30  # seconds; only matters if a test is broken


class Fetcher(Batch):
    def _init(self, *args: Any, **kwargs: Any) -> Any:
        self.finished: list[int] = []
        self.last_done = asyncio.Event()
        return self.indices

    def _collect(self, results: list[Any], *args: Any, **kwargs: Any) -> Fetcher:
        self.results = results
        return self

    @action
    @inbatch_parallel(init="_init", post="_collect", target="async")
    async def fetch(self, index: int, suffix: str) -> str:
        if index == 0:
            await asyncio.wait_for(self.last_done.wait(), WAIT)
        await asyncio.sleep(0)
        self.finished.append(index)
        if index == len(self) - 1:
            self.last_done.set()
        if self.data[index] is None:
            raise LookupError(f"item {index} is missing")
        return f"{self.data[index]}{suffix}"

    @inbatch_parallel(init="_init", target="async")
    async def where(self, index: int) -> tuple[str, str]:
        return threading.current_thread().name, REQUEST_ID.get()


def test_runs_concurrently_and_keeps_init_order() -> None:
    """Coroutines run in one loop concurrently; results stay in init order."""
    batch = Fetcher(["a", "b", "c"]).fetch("!")
    assert batch.results == ["a!", "b!", "c!"]
    assert batch.finished[-1] == 0


def test_failure_is_in_place_with_traceback() -> None:
    """A failing coroutine leaves its exception, with the raising frame, at its position."""
    results = Fetcher(["a", None, "c"]).fetch("?").results
    assert results[0] == "a?" and results[2] == "c?"
    assert isinstance(results[1], LookupError)
    assert any_action_failed(results)
    assert traceback.extract_tb(results[1].__traceback__)[-1].name == "fetch"


def test_no_running_loop_runs_in_caller_thread() -> None:
    """Without a running loop, the coroutines run in the calling thread."""
    names = {name for name, _ in Fetcher([1, 2]).where()}
    assert names == {threading.current_thread().name}


def test_inside_running_loop() -> None:
    """Called synchronously from a coroutine (as in Jupyter) it runs in a helper loop."""

    async def notebook_cell() -> tuple[list[Any], list[tuple[str, str]]]:
        REQUEST_ID.set("cell-7")
        fetched = Fetcher(["x", "y", "z"]).fetch("#").results
        return fetched, Fetcher([1, 2]).where()

    fetched, where = asyncio.run(notebook_cell())
    assert fetched == ["x#", "y#", "z#"]
    assert {name for name, _ in where} == {"incgraph-inbatch-async"}
    assert {request for _, request in where} == {"cell-7"}  # contextvars are carried over


def test_inside_running_loop_failure_raises_parallel_error() -> None:
    """Inside a running loop, a failure without post still raises ParallelError."""

    class Strict(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices

        @inbatch_parallel(init="_init", target="async")
        async def work(self, index: int) -> int:
            if index == 1:
                raise ValueError("bad item")
            return index

    async def cell() -> list[Any]:
        return Strict([0, 0, 0]).work()

    with pytest.raises(ParallelError, match="1 of 3") as info:
        asyncio.run(cell())
    assert isinstance(info.value.exceptions[0], ValueError)


def test_n_workers_caps_calls_in_flight() -> None:
    """With n_workers=2 at most two coroutines are in flight at once."""

    class Capped(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            self.in_flight = 0
            self.peak = 0
            return self.indices

        @inbatch_parallel(init="_init", target="async", n_workers=2)
        async def work(self, index: int) -> int:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            for _ in range(3):
                await asyncio.sleep(0)
            self.in_flight -= 1
            return index

    batch = Capped(list(range(6)))
    assert batch.work() == list(range(6))
    assert batch.peak == 2


def test_sync_call_errors_are_captured() -> None:
    """A call that fails before creating its coroutine (bad arguments) is an entry's exception."""

    class WrongArity(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return [[1], [1, 2]]

        @inbatch_parallel(init="_init", target="async")
        async def work(self, a: int) -> int:
            return a

    with pytest.raises(ParallelError) as info:
        WrongArity([0, 0]).work()
    assert len(info.value.exceptions) == 1 and isinstance(info.value.exceptions[0], TypeError)


def test_from_worker_thread() -> None:
    """An async action called from a plain worker thread (no loop there) works."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(Fetcher(["q", "r"]).fetch("").results))
    worker.start()
    worker.join(WAIT)
    assert out == [["q", "r"]]
