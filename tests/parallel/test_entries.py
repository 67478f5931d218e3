"""Entry shapes: how each kind of init entry becomes a call's arguments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from incgraph.parallel import Batch, inbatch_parallel
from incgraph.parallel.entries import calls_from_entries


class Echo(Batch):
    """Returns exactly the arguments each call received."""

    def _entries(self, *args: Any, **kwargs: Any) -> Any:
        return self.data

    @inbatch_parallel(init="_entries", target="threads", n_workers=3)
    def echo(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs


def _echo(entries: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
    return Echo(entries).echo(*args, **kwargs)


def test_dict_entry_gives_keywords() -> None:
    """A dict entry becomes keyword arguments."""
    assert _echo([{"a": 1, "b": 2}]) == [((), {"a": 1, "b": 2})]


def test_two_tuple_gives_args_and_kwargs() -> None:
    """A 2-tuple (args, kwargs) gives both positional and keyword arguments."""
    assert _echo([([1, 2], {"c": 3}), ((4,), {})]) == [((1, 2), {"c": 3}), ((4,), {})]


def test_other_sequences_give_positionals() -> None:
    """Lists, 1-tuples, 3-tuples, ranges and 1-D arrays are unpacked as positionals."""
    results = _echo([[1, 2], (3,), (4, 5, 6), range(2), np.array([7, 8])])
    assert [args for args, _ in results] == [(1, 2), (3,), (4, 5, 6), (0, 1), (7, 8)]


def test_scalars_give_one_argument() -> None:
    """Scalars, strings, bytes, None, sets, 0-d arrays and pandas objects are one argument."""
    series = pd.Series([1, 2])
    entries = [5, "ab", b"cd", None, {1}, np.float64(2.5), np.array(3), series]
    results = _echo(entries)
    for (args, kwargs), entry in zip(results, entries, strict=True):
        assert len(args) == 1 and kwargs == {}
        assert args[0] is entry


def test_numpy_indices_are_scalars() -> None:
    """An init returning a numpy array of indices calls once per index with that index."""
    assert _echo(np.arange(3)) == [((0,), {}), ((1,), {}), ((2,), {})]


def test_call_time_arguments_are_appended() -> None:
    """Call-time positionals come after the entry's, call-time keywords are added."""
    results = _echo([7, [1, 2], {"a": 3}, ([4], {"b": 5})], "x", k=9)
    assert results == [
        ((7, "x"), {"k": 9}),
        ((1, 2, "x"), {"k": 9}),
        (("x",), {"a": 3, "k": 9}),
        ((4, "x"), {"b": 5, "k": 9}),
    ]


def test_bad_two_tuple_says_use_a_list() -> None:
    """A 2-tuple that is not (sequence, dict) raises before any call, saying to return a list."""
    with pytest.raises(TypeError, match=r"entry 1 = \(1, 2\), a 2-tuple.*return a list \[a, b\]"):
        _echo([[0], (1, 2)])


def test_keyword_given_twice_is_rejected() -> None:
    """A keyword set both by the entry and by the call raises, naming the keyword."""
    with pytest.raises(TypeError, match=r"keyword\(s\) a that the call also passes"):
        _echo([{"a": 1}], a=2)


@pytest.mark.parametrize("returned", [{"a": 1}, "abc", 42])
def test_init_must_return_entries(returned: Any) -> None:
    """An init returning a dict, a string or a non-iterable raises TypeError naming the init."""
    with pytest.raises(TypeError, match="init 'x' of demo returned"):
        calls_from_entries(returned, (), {}, "init 'x' of demo")


def test_generator_init_is_accepted() -> None:
    """Any iterable of entries works, including a generator."""
    assert calls_from_entries((i for i in range(2)), (), {}, "demo") == [((0,), {}), ((1,), {})]


def test_no_entries_no_calls() -> None:
    """An empty init makes no calls and returns an empty result list."""
    assert _echo([]) == []
