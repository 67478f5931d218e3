"""The mpc target: the method returns a function that runs in loky worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import ParallelError
from incgraph.parallel import Batch, action, inbatch_parallel

from . import mpc_functions


class Numbers(Batch):
    def _init(self, *args: Any, **kwargs: Any) -> Any:
        return [[value] for value in self.data]

    def _collect(self, results: list[Any], *args: Any, **kwargs: Any) -> Numbers:
        self.results = results
        return self

    @action
    @inbatch_parallel(init="_init", post="_collect", target="mpc", n_workers=2)
    def power(self, exponent: int, offset: int = 0) -> Any:
        return mpc_functions.power_plus

    @inbatch_parallel(init="_init", target="mpc", n_workers=2)
    def pids(self) -> Any:
        return mpc_functions.worker_pid

    @action
    @inbatch_parallel(init="_init", post="_collect", target="mpc", n_workers=2)
    def checked(self) -> Any:
        return mpc_functions.fail_on_three

    @action
    @inbatch_parallel(init="_init", post="_collect", target="mpc", n_workers=2)
    def run_stored(self) -> Any:
        return self.fn


def run_function(fn: Any, values: list[Any]) -> list[Any]:
    """Run ``fn`` over ``values`` with the mpc target and return the per-entry results."""
    batch = Numbers(values)
    batch.fn = fn
    return batch.run_stored().results


def test_function_from_module_runs_in_processes() -> None:
    """A module-level function gets entry args then call args, in worker processes."""
    assert Numbers([1, 2, 3]).power(2, offset=1).results == [2, 5, 10]
    assert os.getpid() not in set(Numbers(list(range(8))).pids())


def test_many_items_come_back_in_order() -> None:
    """Thousands of calls travel in chunks and come back in init order."""
    values = list(range(3000))
    assert Numbers(values).power(1).results == values


def test_failure_in_place_with_worker_traceback() -> None:
    """A worker's exception is that entry's result and carries the worker traceback text."""
    results = Numbers([1, 3, 5]).checked().results
    assert results[0] == 1 and results[2] == 5
    error = results[1]
    assert isinstance(error, ArithmeticError)
    notes = "\n".join(getattr(error, "__notes__", []))
    assert "raised in worker process" in notes and "fail_on_three" in notes


def test_unpicklable_exception_is_reported() -> None:
    """An exception that cannot travel back becomes a ParallelError naming it."""
    (error,) = run_function(mpc_functions.raise_unpicklable, [0])
    assert isinstance(error, ParallelError)
    assert "NeedsKeyword: custom failure" in str(error)


def test_unpicklable_result_fails_its_chunk_only() -> None:
    """A result that cannot be pickled back fails its entries, not the whole run."""
    results = run_function(mpc_functions.return_unpicklable, [0])
    assert len(results) == 1 and isinstance(results[0], Exception)


def test_closure_is_sent_with_cloudpickle() -> None:
    """A locally defined function (not importable by name) still runs in the workers."""
    offset = 100

    def add_offset(value: int) -> int:
        return value + offset

    assert run_function(add_offset, [1, 2]) == [101, 102]


def test_function_defined_in_main_script(tmp_path: Path) -> None:
    """A function defined in a script's __main__ runs in worker processes via cloudpickle."""
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from incgraph.parallel import Batch, inbatch_parallel

            def cube_and_pid(value, extra):
                return value ** 3 + extra, os.getpid()

            class Cubes(Batch):
                def _init(self, *args, **kwargs):
                    return self.data

                @inbatch_parallel(init="_init", target="mpc", n_workers=2)
                def cube(self, extra):
                    return cube_and_pid

            if __name__ == "__main__":
                results = Cubes([1, 2, 3]).cube(1)
                assert [value for value, _ in results] == [2, 9, 28], results
                assert os.getpid() not in {pid for _, pid in results}
                print("ok")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("returned", [None, 3])
def test_method_must_return_function(returned: Any) -> None:
    """An mpc method returning a non-function raises TypeError naming the action."""
    with pytest.raises(TypeError, match=r"Numbers\.run_stored has target='mpc'"):
        run_function(returned, [1])
