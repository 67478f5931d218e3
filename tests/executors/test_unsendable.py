"""A job the processes executor cannot pickle fails with an error naming what could not be."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, threading
from incgraph import ProcessGraph, Processor
from incgraph.errors import NodeError
from incgraph.executors.processes import ProcessExecutor
from incgraph.executors.dask import DaskExecutor

LOG = open(sys.argv[2], "a")
GUARD = threading.Lock()


class Logs(Processor):
    def process(self, x: int) -> int:
        LOG.write(f"{x}\\n")
        return x + 1


class Guarded(Processor):
    def process(self, x: int) -> int:
        with GUARD:
            return x + 1


if sys.argv[3] == "dask":
    executor = DaskExecutor(n_workers=1, threads_per_worker=1, dashboard_address=None)
else:
    executor = ProcessExecutor(max_workers=1)
out = {}
for processor in (Logs, Guarded):
    graph = ProcessGraph(store=sys.argv[1], executor=executor)
    x = graph.add_constant_node(0, "x", value=1)
    node = graph.add_node(1, processor, {"x": x})
    try:
        graph.run_upto(node)
    except NodeError as exc:
        out[processor.__name__] = [str(exc), exc.node]
    stats = graph.process_batch([1, 2], [node], progress=False)
    out[processor.__name__ + " batch"] = [str(f) for f in stats.failures]
executor.shutdown()
print(json.dumps(out))
"""


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_a_processor_reading_an_open_file_global_names_it(executor: str, tmp_path: Path) -> None:
    """A __main__ processor using a module-level file or lock: the error names that global."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "store"), str(tmp_path / "log"), executor],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    message, node = out["Logs"]
    assert node == "1"
    assert message.startswith("node 1 (Logs) cannot be sent to a worker process")
    assert "Logs.process -> global LOG: _io.TextIOWrapper" in message
    assert "in-process executor" in message
    assert "Guarded.process -> global GUARD: _thread.lock" in out["Guarded"][0]
    failures = out["Guarded batch"]
    assert len(failures) == 2
    assert all("Guarded.process -> global GUARD: _thread.lock" in f for f in failures)


def test_an_mpc_argument_that_cannot_be_pickled_is_named() -> None:
    """The mpc target names the call and argument that could not reach a worker process."""
    import pickle
    import threading

    from incgraph.parallel.processes import run_in_processes

    (error,) = run_in_processes(abs, [(([1, threading.Lock()],), {})], 1)
    assert isinstance(error, pickle.PicklingError)
    assert str(error).startswith(
        "argument 0 of call 0 cannot be sent to a worker process: cannot pickle "
        "args[0][1]: _thread.lock"
    )
