"""The nogil target: the method returns a function, called per entry in threads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from incgraph.errors import ParallelError
from incgraph.parallel import Batch, action, inbatch_parallel

numba = pytest.importorskip("numba")


@numba.njit(nogil=True)
def scaled_row_sum(data: np.ndarray, index: int, factor: float) -> float:
    total = 0.0
    for value in data[index]:
        total += value * factor
    return total


@numba.njit(nogil=True)
def checked_sqrt(value: float) -> float:
    if value < 0:
        raise ValueError("negative input")
    return value**0.5


class Matrix(Batch):
    def _rows(self, *args: Any, **kwargs: Any) -> Any:
        return [[self._data, index] for index in self.indices]

    def _values(self, *args: Any, **kwargs: Any) -> Any:
        return [float(self._data[index, 0]) for index in self.indices]

    def _collect(self, results: list[Any], *args: Any, **kwargs: Any) -> Matrix:
        self.sums = results
        return self

    @action
    @inbatch_parallel(init="_rows", post="_collect", target="nogil", n_workers=2)
    def row_sums(self, factor: float) -> Any:
        self.method_calls = getattr(self, "method_calls", 0) + 1
        return scaled_row_sum

    @inbatch_parallel(init="_values", target="nogil", n_workers=2)
    def roots(self) -> Any:
        return checked_sqrt


def test_numba_function_gets_entry_then_call_args() -> None:
    """The returned numba function is called as fn(data, index, factor), once per row."""
    data = np.arange(12, dtype=np.float64).reshape(4, 3)
    batch = Matrix(data).row_sums(2.0)
    assert batch.sums == [2.0 * row.sum() for row in data]
    assert batch.method_calls == 1


def test_numba_errors_are_in_place() -> None:
    """An exception raised inside a nogil numba function is that entry's failure."""
    data = np.array([[4.0], [-1.0], [9.0]])
    with pytest.raises(ParallelError) as info:
        Matrix(data).roots()
    (error,) = info.value.exceptions
    assert isinstance(error, ValueError) and "negative input" in str(error)
    assert error.__traceback__ is not None


def test_plain_python_function_works_without_numba() -> None:
    """nogil calls whatever function it is given; numba is not required."""

    class Words(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return [{"word": word} for word in self.data]

        @inbatch_parallel(init="_init", target="nogil", n_workers=3)
        def shout(self, suffix: str) -> Any:
            return lambda word, suffix: word.upper() + suffix

    assert Words(["a", "b", "c", "d"]).shout(suffix="!") == ["A!", "B!", "C!", "D!"]


def test_method_not_returning_function_is_explained() -> None:
    """A nogil method that returns a value instead of a function raises TypeError saying so."""

    class Confused(Batch):
        def _init(self, *args: Any, **kwargs: Any) -> Any:
            return self.indices

        @inbatch_parallel(init="_init", target="nogil")
        def work(self) -> Any:
            return 42

    with pytest.raises(TypeError, match="target='nogil', so it must return the function"):
        Confused([1]).work()
