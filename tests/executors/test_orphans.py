"""Worker processes never outlive the process that started them (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.executors.processors import lines

ROOT = Path(__file__).resolve().parents[2]

BATCH = """
import sys
from incgraph import ProcessGraph
from incgraph.executors.processes import ProcessExecutor
from tests.executors.processors import Hang

graph = ProcessGraph(store=sys.argv[1], executor=ProcessExecutor(max_workers=2))
x = graph.add_constant_node(0, "x")
hang = graph.add_node(1, Hang, {"x": x}, node_init_kwargs={"log": sys.argv[2]})
graph.process_batch(range(4), [hang], progress=False)
"""

MPC = """
import sys
from functools import partial
from incgraph.parallel.processes import run_in_processes
from tests.executors.processors import hang

run_in_processes(partial(hang, sys.argv[2]), [((i,), {}) for i in range(4)], 2)
"""

PIPELINE = """
import sys
from functools import partial
import incgraph.queues as iq
from tests.executors.processors import hang

task = iq.task(max_workers=2, backend="processes", name="hang", cache=False)(
    partial(hang, sys.argv[2])
)
pipeline = iq.Pipeline(store=sys.argv[1])
pipeline.map(task, iq.Queue(list(range(4))))
pipeline.run()
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def poll(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Check ``condition()`` every 50 ms until it holds or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "script", [BATCH, MPC, PIPELINE], ids=["processes-batch", "mpc", "queue-pipeline"]
)
def test_workers_exit_when_their_parent_is_killed(script: str, tmp_path: Path) -> None:
    """SIGKILL the process running a batch: its busy worker processes exit soon after."""
    log = tmp_path / "log"
    workers: set[int] = set()
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "store"), str(log)], cwd=ROOT
    )
    try:
        assert poll(lambda: len(lines(log, "busy")) >= 2, 120), "the workers never started"
        workers = {int(line.split()[1]) for line in lines(log, "busy")}
        assert len(workers) == 2 and parent.pid not in workers
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(60) == -signal.SIGKILL
        assert poll(lambda: not any(alive(pid) for pid in workers), 30), (
            f"workers {sorted(pid for pid in workers if alive(pid))} outlived their parent"
        )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:  # leave nothing behind, whatever the outcome
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


CHILD = """
import os, threading
if os.environ.get("NO_PIDFD"):
    del os.pidfd_open  # the fallback: poll the parent id
from incgraph.executors.watchdog import watch_parent
watch_parent()
print(os.getpid(), flush=True)
threading.Event().wait(120)
"""

MIDDLE = """
import os, subprocess, sys, threading
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
threading.Event().wait(120)
"""


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_the_watchdog_ends_a_process_whose_parent_died(pidfd: bool) -> None:
    """watch_parent(): SIGKILL the parent and the child exits, with or without pidfds."""
    env = dict(os.environ)
    if not pidfd:
        env["NO_PIDFD"] = "1"
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, CHILD], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    child = 0
    try:
        assert middle.stdout is not None
        child = int(middle.stdout.readline())
        assert alive(child)
        middle.send_signal(signal.SIGKILL)
        middle.wait(60)
        assert poll(lambda: not alive(child), 30), "the child outlived its parent"
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait()
        if middle.stdout is not None:
            middle.stdout.close()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)
