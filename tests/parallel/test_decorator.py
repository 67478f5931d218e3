"""inbatch_parallel: init/post wiring, decorator keywords, failures and validation."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from incgraph.errors import IncgraphError, ParallelError
from incgraph.parallel import TARGETS, Batch, action, any_action_failed, inbatch_parallel


def init_from_function(batch: Batch, *args: Any, **kwargs: Any) -> Any:
    batch.init_seen = (args, kwargs)
    return batch.indices


def post_from_function(batch: Batch, results: list[Any], *args: Any, **kwargs: Any) -> Batch:
    batch.post_seen = (results, args, kwargs)
    return batch


class Recorder(Batch):
    """Records what init, the method and post receive."""

    def _init(self, *args: Any, **kwargs: Any) -> Any:
        self.init_seen = (args, kwargs)
        return self.indices

    def _post(self, results: list[Any], *args: Any, **kwargs: Any) -> Recorder:
        self.post_seen = (results, args, kwargs)
        return self

    @action
    @inbatch_parallel(init="_init", post="_post", clear_data=False, method="scale")
    def scale(self, index: int, factor: int, *, shift: int = 0) -> int:
        return self.data[index] * factor + shift

    @action
    @inbatch_parallel(init=init_from_function, post=post_from_function, flag=True)
    def scale_with_functions(self, index: int, factor: int) -> int:
        return self.data[index] * factor

    @inbatch_parallel(init="_init")
    def inverse(self, index: int) -> float:
        return 1 / self.data[index]


def test_names_init_and_post_get_decorator_and_call_arguments() -> None:
    """Named init and post receive call args and decorator kwargs; the method gets neither kwarg."""
    batch = Recorder([1, 2, 3]).scale(10, shift=1)
    assert batch.init_seen == ((10,), {"clear_data": False, "method": "scale", "shift": 1})
    results, args, kwargs = batch.post_seen
    assert results == [11, 21, 31]
    assert args == (10,)
    assert kwargs == {"clear_data": False, "method": "scale", "shift": 1}


def test_function_hooks_are_called_with_self_first() -> None:
    """init and post given as functions are called as fn(self, ...)."""
    batch = Recorder([1, 2]).scale_with_functions(3)
    assert batch.init_seen == ((3,), {"flag": True})
    assert batch.post_seen == ([3, 6], (3,), {"flag": True})


def test_decorator_kwargs_do_not_reach_the_method() -> None:
    """A method without **kwargs still works when the decorator has extra keywords."""
    assert Recorder([2]).scale(5).post_seen[0] == [10]


def test_call_kwargs_override_decorator_defaults_for_hooks() -> None:
    """A call keyword with a decorator keyword's name wins in init and post."""

    class Flagged(Recorder):
        @inbatch_parallel(init="_init", post="_post", mode="default")
        def tag(self, index: int, mode: str) -> str:
            return f"{index}:{mode}"

    batch = Flagged([0, 0]).tag(mode="call")
    assert batch.init_seen[1] == {"mode": "call"}
    assert batch.post_seen[0] == ["0:call", "1:call"]


def test_hooks_looked_up_on_subclass() -> None:
    """A hook named by string resolves on the instance, so subclasses can override it."""

    class OnlyFirst(Recorder):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices[:1]

    assert OnlyFirst([4, 5]).scale(2).post_seen[0] == [8]


def test_post_receives_exceptions_in_place() -> None:
    """A failed call's result is its exception, at its position, with its traceback."""

    class Inverses(Recorder):
        @inbatch_parallel(init="_init", post="_post")
        def inverse(self, index: int) -> float:
            return 1 / self.data[index]

    batch = Inverses([1, 0, 4]).inverse()
    results = batch.post_seen[0]
    assert results[0] == 1.0 and results[2] == 0.25
    assert isinstance(results[1], ZeroDivisionError)
    assert traceback.extract_tb(results[1].__traceback__)[-1].name == "inverse"
    assert any_action_failed(results)


def test_post_none_returns_results() -> None:
    """Without post, the method returns the list of results in init order."""
    assert Recorder([1, 2, 4]).inverse() == [1.0, 0.5, 0.25]


def test_post_none_raises_parallel_error_with_every_exception() -> None:
    """Without post, any failure raises ParallelError carrying all exceptions in order."""
    with pytest.raises(ParallelError) as info:
        Recorder([0, 1, 0, "x"]).inverse()
    error = info.value
    assert [type(exc) for exc in error.exceptions] == [
        ZeroDivisionError,
        ZeroDivisionError,
        TypeError,
    ]
    assert "3 of 4 parallel calls of Recorder.inverse failed" in str(error)
    assert "call 0 raised ZeroDivisionError" in str(error)
    assert error.__cause__ is error.exceptions[0]
    assert isinstance(error, IncgraphError) and isinstance(error, RuntimeError)


def test_any_action_failed() -> None:
    """any_action_failed is true exactly when some result is an exception."""
    assert not any_action_failed([])
    assert not any_action_failed([0, None, "x"])
    assert any_action_failed([0, KeyError("k")])


def test_unknown_target_lists_valid_ones() -> None:
    """An unknown target raises ValueError at decoration, naming the method and valid targets."""
    with pytest.raises(ValueError) as info:

        class Bad(Batch):
            @inbatch_parallel(init="_init", target="gpu")
            def work(self, item: int) -> int:
                return item

    message = str(info.value)
    assert "unknown target 'gpu' for" in message and "Bad.work" in message
    assert "valid targets are threads, nogil, async, mpc" in message
    assert TARGETS == ("threads", "nogil", "async", "mpc")


@pytest.mark.parametrize("n_workers", [0, -1, 1.5, True])
def test_n_workers_must_be_positive_int(n_workers: Any) -> None:
    """n_workers other than a positive int is rejected when decorating."""
    with pytest.raises(ValueError, match="n_workers must be a positive int"):
        inbatch_parallel(init="_init", n_workers=n_workers)


def test_init_must_be_name_or_function() -> None:
    """A hook that is neither a name nor callable is rejected when decorating."""
    with pytest.raises(TypeError, match="init must be a method name"):
        inbatch_parallel(init=3)
    with pytest.raises(TypeError, match="post must be a method name"):
        inbatch_parallel(init="_init", post=[])


def test_hooks_are_keyword_only() -> None:
    """Positional decorator arguments are refused, as the seed recommends named ones."""
    with pytest.raises(TypeError):
        inbatch_parallel("_init", "_post", "threads")  # type: ignore[misc]


def test_missing_init_method_is_named() -> None:
    """A named init that the batch does not define raises AttributeError saying what to do."""

    class NoInit(Batch):
        @inbatch_parallel(init="_nowhere")
        def work(self, item: int) -> int:
            return item

    with pytest.raises(AttributeError, match="init method '_nowhere' not found on NoInit"):
        NoInit([1]).work()


def test_works_on_any_object() -> None:
    """The decorator needs only the hooks, so it also works on non-Batch objects."""

    class Plain:
        def __init__(self) -> None:
            self.items = [1, 2, 3]

        @inbatch_parallel(init=lambda self: self.items, n_workers=2)
        def square(self, item: int) -> int:
            return item * item

    assert Plain().square() == [1, 4, 9]


def test_wrapper_keeps_method_metadata() -> None:
    """The decorated method keeps its name and docstring."""

    class Doc(Batch):
        @inbatch_parallel(init="_init")
        def work(self, item: int) -> int:
            """Work on one item."""
            return item

    assert Doc.work.__name__ == "work"
    assert Doc.work.__doc__ == "Work on one item."


@pytest.mark.parametrize("target", ["threads", "nogil", "mpc"])
def test_async_method_needs_async_target(target: str) -> None:
    """An async def method with a non-async target is refused when decorating."""
    with pytest.raises(TypeError, match=f"is `async def` but has target='{target}'"):

        class Wrong(Batch):
            @inbatch_parallel(init="_init", target=target)
            async def work(self, item: int) -> int:
                return item
