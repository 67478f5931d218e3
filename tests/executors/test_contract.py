"""Every executor keeps the same small contract: submit, failures through the future, release."""

from __future__ import annotations

from typing import Any

import pytest

from incgraph.executors import Executor, resolve_executor
from incgraph.executors.registry import EXECUTORS, make
from tests.executors.conftest import EXECUTOR_NAMES


@pytest.fixture(params=EXECUTOR_NAMES)
def executor(request: pytest.FixtureRequest, make_executor: Any) -> Any:
    return make_executor(request.param)


def test_submit_returns_a_future_of_the_result(executor: Any) -> None:
    """submit(fn, *args) gives a concurrent.futures.Future holding fn(*args)."""
    assert executor.submit(pow, 2, 10).result(timeout=60) == 1024


def test_an_exception_comes_back_through_the_future(executor: Any) -> None:
    """A job that raises delivers the exception through its future, and the executor goes on."""
    with pytest.raises(ZeroDivisionError):
        executor.submit(divmod, 1, 0).result(timeout=60)
    assert executor.submit(divmod, 7, 2).result(timeout=60) == (3, 1)


def test_releasing_unknown_instances_is_harmless(executor: Any) -> None:
    """release() of keys never sent, or of everything, leaves the executor usable."""
    executor.release(frozenset({"never-sent"}))
    executor.release(None)
    assert executor.submit(abs, -3).result(timeout=60) == 3


def test_follows_the_protocol(executor: Any) -> None:
    """Each executor is an Executor with a registered name and says where its jobs run."""
    assert isinstance(executor, Executor)
    assert executor.name in EXECUTORS
    assert executor.in_process is (executor.name in {"serial", "threads", "asyncio"})


@pytest.mark.parametrize("name", ["threads", "processes", "asyncio"])
def test_registry_names_make_fresh_executors(name: str) -> None:
    """The registry builds each executor by name (with options) and shutdown is idempotent."""
    executor = make(name, **({"max_concurrency": 4} if name == "asyncio" else {"max_workers": 1}))
    assert executor.name == name and resolve_executor(executor) is executor
    executor.shutdown()
    executor.shutdown()


def test_dask_without_distributed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without distributed, DaskExecutor raises ExtraNotInstalledError with the pip line."""
    from incgraph.errors import ExtraNotInstalledError
    from incgraph.executors.dask import DaskExecutor

    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'incgraph\[dask\]'"):
        DaskExecutor()
