"""Eight processes running one cold graph compute each key exactly once.

The test starts this file as a script eight times (the ``__main__`` block at
the bottom is the worker). Every compute appends one line to a marker file
opened with ``O_APPEND``, so counting its lines counts computes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from incgraph import ProcessGraph, Processor

WORKER = Path(__file__).resolve()
PROCESSES = 8
MEMBERS = 60  # a fan-out of 60 and one node reading each member: 120 nodes


class Slow(Processor):
    """Sleeps 20 ms and notes the compute: far more than a lease costs."""

    def __init__(self, log: str) -> None:
        self.log = log

    def process(self, x: int, i: int) -> int:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{i} {x}\n".encode())
        finally:
            os.close(fd)
        time.sleep(0.02)
        return x + i


def build(store: str, log: str) -> tuple[ProcessGraph, list]:
    """A fan-out of ``MEMBERS`` nodes, and a node reading each member: all ``Slow``."""
    graph = ProcessGraph(store=store)
    init = {"log": log}
    members = graph.add_nodes(Slow, {"i": 0}, ((f"m{i}", {"x": i}) for i in range(MEMBERS)), init)
    readers = [
        graph.add_node(f"r{i}", Slow, {"x": m, "i": 1000}, node_init_kwargs=init)
        for i, m in enumerate(members)
    ]
    return graph, [*members, *readers]


def worker(store: str, log: str, gate: str) -> None:
    graph, nodes = build(store, log)
    while not os.path.exists(gate):  # start together with the other workers
        time.sleep(0.005)
    graph.run_upto(nodes)
    graph.close()


def test_eight_processes_compute_each_key_of_a_cold_graph_once(tmp_path: Path) -> None:
    """120 nodes of a 20 ms processor, run by 8 processes on one store: one compute per key."""
    log, gate = tmp_path / "marks", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path / "store"), str(log), str(gate)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    gate.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    computes = Counter(log.read_text().splitlines())
    assert len(computes) == 2 * MEMBERS  # every key was computed ...
    assert set(computes.values()) == {1}  # ... exactly once


if __name__ == "__main__":
    worker(*sys.argv[1:4])
