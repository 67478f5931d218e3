"""Seed 002 ("Within batch parallelism"): every example, with incgraph imports.

The seed's invalid literals are written as valid Python:
``tuple(list(self._data, item), dict(...))`` -> ``([self._data, item], dict(...))``,
``tuple(some_arg, some_other_arg)`` -> ``(some_arg, some_other_arg)`` and
``list(some_arg, some_other_arg)`` -> ``[some_arg, some_other_arg]``. Elided bodies
(``...``) are filled with the smallest code that shows the documented behaviour.
"""

from __future__ import annotations

import asyncio
from functools import partial

import numpy as np
import pytest

from incgraph.parallel import Batch, action, any_action_failed, inbatch_parallel

numba = pytest.importorskip("numba")
njit = numba.njit

another_arg, one_more_arg = 100, 1000


# --- Basic usage -----------------------------------------------------------------


class BasicBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    def _post_default(self, list_of_res, *args, **kwargs):
        self.results = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="threads")
    def some_action(self, item, arg1, arg2):
        # process just one item
        some_value = self._data[item] * arg1 + arg2
        return some_value


def test_basic_usage() -> None:
    """The basic example processes each item with the call's arguments and chains."""
    batch = BasicBatch([1, 2, 3]).some_action(10, 5)
    assert isinstance(batch, BasicBatch)
    assert batch.results == [15, 25, 35]


# --- Parallelized methods: actions and ordinary methods ----------------------------


class OrdinaryBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    @inbatch_parallel(init="_init_default")
    def ordinary_method(self, item):
        return self._data[item] + 1


def test_ordinary_methods_can_be_parallelized() -> None:
    """A parallel method that is not an action returns its results."""
    assert OrdinaryBatch([1, 2]).ordinary_method() == [2, 3]


# --- Additional decorator arguments -------------------------------------------------


class ClearingBatch(Batch):
    @inbatch_parallel(
        init="_init_default", post="_post_default", target="threads", clear_data=False
    )
    def some_method(self, item):
        # process just one item
        some_value = self._data[item] * 2
        return some_value

    def _init_default(self, clear_data):
        self.init_clear_data = clear_data
        return self.indices

    def _post_default(self, list_of_res, clear_data):
        self.post_clear_data = clear_data
        self.results = list_of_res
        return self


def test_additional_decorator_arguments() -> None:
    """clear_data=False reaches init and post, and not the method."""
    batch = ClearingBatch([1, 2]).some_method()
    assert batch.init_clear_data is False and batch.post_clear_data is False
    assert batch.results == [2, 4]


class NamedActionsBatch(Batch):
    def _init_default(self, *args, method, **kwargs):
        self.init_methods = [*getattr(self, "init_methods", []), method]
        return self.indices

    def _post_default(self, list_of_res, *args, method, **kwargs):
        self.results = {**getattr(self, "results", {}), method: list_of_res}
        return self

    @inbatch_parallel(
        init="_init_default", post="_post_default", target="threads", method="one_method"
    )
    def one_method(self, item):
        # process just one item
        some_value = ("one", item)
        return some_value

    @inbatch_parallel(
        init="_init_default", post="_post_default", target="threads", method="some_other_method"
    )
    def some_other_method(self, item):
        # process just one item
        some_value = ("other", item)
        return some_value


def test_action_name_passed_to_init() -> None:
    """A method= decorator keyword tells a shared init and post which action runs."""
    batch = NamedActionsBatch([0, 0]).one_method().some_other_method()
    assert batch.init_methods == ["one_method", "some_other_method"]
    assert batch.results == {
        "one_method": [("one", 0), ("one", 1)],
        "some_other_method": [("other", 0), ("other", 1)],
    }


# --- Init function --------------------------------------------------------------------


class IndicesBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    def _post_default(self, list_of_res, *args, **kwargs):
        self.results = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default")
    def some_action(self, item_id):
        # process an item and return a value for that item
        proc_value = ("processed", item_id)
        return proc_value


def test_init_returning_indices() -> None:
    """For a batch of 10 items the action is called once per index."""
    batch = IndicesBatch(list(range(10))).some_action()
    assert batch.results == [("processed", index) for index in range(10)]


class ManyArgsBatch(Batch):
    def _init_default(self, *args, **kwargs):
        all = []
        for item in self.indices:
            item_args = [self._data, item, another_arg, one_more_arg]
            all.append(item_args)
        return all

    @inbatch_parallel(init="_init_default")
    def some_action(self, data, item, arg1, arg2):
        return data[item] + arg1 + arg2


def test_init_list_of_positional_arguments() -> None:
    """Each list entry is unpacked: some_action(self._data, index, another_arg, one_more_arg)."""
    assert ManyArgsBatch([1, 2]).some_action() == [1101, 1102]


class ArrayArgsBatch(ManyArgsBatch):
    def _init_default(self, *args, **kwargs):
        return [np.array([1, item, another_arg, one_more_arg]) for item in self.indices]

    @inbatch_parallel(init="_init_default")
    def some_action(self, one, item, arg1, arg2):
        return int(one + item + arg1 + arg2)


def test_init_entries_as_numpy_arrays() -> None:
    """An entry can be any unpackable sequence, e.g. a numpy array."""
    assert ArrayArgsBatch([0, 0]).some_action() == [1101, 1102]


class NamedArgsBatch(Batch):
    def _init_default(self, *args, **kwargs):
        all = []
        for item in self.indices:
            item_args = dict(data=self._data, item=item, arg1=another_arg, arg2=one_more_arg)
            all.append(item_args)
        return all

    @inbatch_parallel(init="_init_default")
    def some_action(self, data, item, arg1, arg2):
        return data[item] * 10_000 + arg1 + arg2


def test_init_dicts_of_named_arguments() -> None:
    """Each dict entry becomes named arguments."""
    assert NamedArgsBatch([1, 2]).some_action() == [11100, 21100]


class MixedArgsBatch(Batch):
    def _init_default(self, *args, **kwargs):
        all = []
        for item in self.indices:
            item_args = ([self._data, item], dict(arg1=another_arg, arg2=one_more_arg))
            all.append(item_args)
        return all

    @inbatch_parallel(init="_init_default")
    def some_action(self, data, item, *, arg1, arg2):
        return (data[item], arg1, arg2)


def test_init_two_tuples_combine_positional_and_named() -> None:
    """A 2-tuple ([args], {kwargs}) gives some_action(self._data, index, arg1=..., arg2=...)."""
    assert MixedArgsBatch(["a", "b"]).some_action() == [("a", 100, 1000), ("b", 100, 1000)]


class TwoArgsBatch(Batch):
    def _tuple_entries(self, *args, **kwargs):
        some_arg, some_other_arg = 1, 2
        return [(some_arg, some_other_arg) for _ in self.indices]

    def _list_entries(self, *args, **kwargs):
        some_arg, some_other_arg = 1, 2
        return [[some_arg, some_other_arg] for _ in self.indices]

    @inbatch_parallel(init="_tuple_entries")
    def with_tuple(self, a, b):
        return a + b

    @inbatch_parallel(init="_list_entries")
    def with_list(self, a, b):
        return a + b


def test_two_positional_arguments_must_be_a_list() -> None:
    """A tuple of 2 arguments is refused with a hint; a list of 2 works."""
    with pytest.raises(TypeError, match="return a list"):
        TwoArgsBatch([0]).with_tuple()
    assert TwoArgsBatch([0]).with_list() == [3]


class InitArgsBatch(Batch):
    def _init_default(self, *args, **kwargs):
        self.init_call = (args, kwargs)
        return self.indices

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", arg_from_parallel_decorator=True)
    def some_parallel_action(self, item, a, b, my_arg):
        return item + a + b + my_arg

    def _post_default(self, list_of_res, *args, **kwargs):
        self.results = list_of_res
        return self


def test_init_receives_action_arguments() -> None:
    """some_parallel_action(10, 12, my_arg=12) calls init(10, 12, my_arg=12, decorator kw)."""
    some_pipeline = InitArgsBatch([0, 0])
    some_pipeline.some_parallel_action(10, 12, my_arg=12)
    assert some_pipeline.init_call == (
        (10, 12),
        {"my_arg": 12, "arg_from_parallel_decorator": True},
    )
    assert some_pipeline.results == [34, 35]


# --- Post function ----------------------------------------------------------------------


class PostBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    def _post_default(self, list_of_res, *args, **kwargs):
        if any_action_failed(list_of_res):
            # something went wrong
            self.failed = [res for res in list_of_res if isinstance(res, Exception)]
        else:
            # process the results
            self.failed = []
            self._data = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default")
    def some_action(self, item_id):
        # process an item and return a value for that item
        proc_value = 100 // self._data[item_id]
        return proc_value


def test_post_with_any_action_failed() -> None:
    """post gets every result in order; a failure appears as its exception instance."""
    ok = PostBatch([1, 2, 4]).some_action()
    assert ok.failed == [] and ok.data == [100, 50, 25]
    failed = PostBatch([1, 0, 4]).some_action()
    assert len(failed.failed) == 1 and isinstance(failed.failed[0], ZeroDivisionError)
    assert failed.data == [1, 0, 4]


# --- Targets ------------------------------------------------------------------------------


@njit(nogil=True)
def numba_fn(data, index, arg):
    # do something
    new_data = data[index] * arg
    return new_data


class NogilBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return [[self._data, index] for index in self.indices]

    def _post_default(self, list_of_res, *args, **kwargs):
        self._data = np.array(list_of_res)
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="nogil")
    def some_action(self, arg):
        # do not process anything, just return nogil-function
        return numba_fn


def test_nogil_target() -> None:
    """The nogil method returns a numba function called as numba_fn(data, index, arg)."""
    batch = NogilBatch(np.array([1.0, 2.0, 3.0])).some_action(2.0)
    assert batch.data.tolist() == [2.0, 4.0, 6.0]


async def other_async_function(some_arg):
    await asyncio.sleep(0)
    return some_arg * 2


class AsyncBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    def _post_default(self, list_of_res, *args, **kwargs):
        self.results = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="async")
    async def some_action(self, item, some_arg):
        # do something asynchrounously
        proc_value = await other_async_function(some_arg)
        return (item, proc_value)


def test_async_target() -> None:
    """The async method is awaited once per item with the call's argument."""
    assert AsyncBatch([0, 0]).some_action(21).results == [(0, 42), (1, 42)]


def mpc_fn(data, index, arg):
    # do something
    new_data = data[index] + arg
    return new_data


class MpcBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return [[self._data, index] for index in self.indices]

    def _post_default(self, list_of_res, *args, **kwargs):
        self._data = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="mpc")
    def some_action(self, arg):
        # do not process anything, just return a function which will be run as a separate process
        return mpc_fn


def test_mpc_target() -> None:
    """The mpc method returns a function run in worker processes as mpc_fn(data, index, arg)."""
    assert MpcBatch([1, 2, 3]).some_action(10).data == [11, 12, 13]


# --- Arguments with default values -----------------------------------------------------------


def mpc_fn_with_default(item, arg1, arg2, arg3=10):
    return (item, arg1, arg2, arg3)


class DefaultsBatch(Batch):
    def _init_default(self, *args, **kwargs):
        return self.indices

    def _post_default(self, list_of_res, *args, **kwargs):
        self.results = list_of_res
        return self

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="mpc")
    def some_action(self, arg1, arg2, arg3=10):
        return mpc_fn_with_default

    @action
    @inbatch_parallel(init="_init_default", post="_post_default", target="mpc")
    def some_action_partial(self, arg1, arg2, arg3=10):
        return partial(mpc_fn_with_default, arg3=arg3)


def test_defaults_copied_into_parallelized_function() -> None:
    """Called as some_action(1, 2), the function's own default arg3=10 applies."""
    batch = DefaultsBatch([0, 0])
    assert batch.some_action(1, 2).results == [(0, 1, 2, 10), (1, 1, 2, 10)]


def test_defaults_passed_with_partial() -> None:
    """Returning partial(mpc_fn, arg3=arg3) forwards the method's default (or given) arg3."""
    batch = DefaultsBatch([0])
    assert batch.some_action_partial(1, 2).results == [(0, 1, 2, 10)]
    assert batch.some_action_partial(1, 2, arg3=7).results == [(0, 1, 2, 7)]
