"""Errors about values that cannot be pickled say where in the value the culprit sits."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from incgraph.errors import StoreError, UnstorableResultError
from incgraph.store import codecs, memory_store
from incgraph.store.picklability import check_sendable, pickle_error, unpicklable_part


class Slotted:
    __slots__ = ("guard", "name")

    def __init__(self) -> None:
        self.name = "s"
        self.guard = threading.Lock()


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle must not send the walk round in circles
        self.children = [1, {"deep": (2, threading.RLock())}]


@pytest.mark.parametrize(
    ("value", "part"),
    [
        (threading.Lock(), "result: _thread.lock"),
        ({"a": 1, "b": [0, threading.Lock()]}, "result['b'][1]: _thread.lock"),
        (Slotted(), "result.guard: _thread.lock"),
        (Node(), "result.children[1]['deep'][1]: _thread.RLock"),
    ],
)
def test_the_part_that_cannot_be_pickled_is_named_by_path_and_type(value: Any, part: str) -> None:
    """unpicklable_part walks into dicts, sequences, attributes and slots to the culprit."""
    assert unpicklable_part(value) == part


def test_storing_an_unpicklable_value_raises_an_error_naming_the_part() -> None:
    """The store refuses the value with UnstorableResultError (a StoreError) naming the part."""
    with pytest.raises(UnstorableResultError, match=r"cannot store result\['k'\]: _thread\.lock"):
        codecs.dumps({"k": threading.Lock()})
    store = memory_store()
    from incgraph.store import Record

    with pytest.raises(StoreError) as caught:
        store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i"), [threading.Lock()])
    assert isinstance(caught.value, UnstorableResultError)
    assert caught.value.part == "result[0]: _thread.lock"


def test_the_error_survives_a_trip_between_processes() -> None:
    """UnstorableResultError pickles with its message and part (it comes back from workers)."""
    error = codecs.unstorable("result: _thread.lock", TypeError("no"))
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is UnstorableResultError
    assert (str(back), back.part) == (str(error), error.part)


def test_sendable_leaves_classes_and_functions_to_the_store() -> None:
    """check_sendable passes lambdas and local classes (cloudpickle ships them) but not locks."""

    class Local:
        pass

    assert pickle_error([lambda: 1]) is not None
    assert check_sendable({"f": lambda: 1, "cls": Local}) is None
    assert check_sendable({"lock": threading.Lock()})[0] == "result['lock']: _thread.lock"  # type: ignore[index]


def test_large_buffers_are_checked_without_a_copy() -> None:
    """A big numpy array checks as picklable (its buffer goes out of band, not into a copy)."""
    np = pytest.importorskip("numpy")
    assert pickle_error({"a": np.zeros(10_000_000)}) is None
