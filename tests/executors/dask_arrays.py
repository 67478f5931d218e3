"""Processors and a driver script for the dask-through-the-store tests (importable by workers).

``python -m tests.executors.dask_arrays SCHEDULER STORE MEGABYTES`` runs a diamond of
eight numpy arrays of MEGABYTES each on the cluster at SCHEDULER against the store at
STORE, and prints one JSON line: what was computed and hit, the target's value, and how
much this (driver) process's peak resident memory grew during the run.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

import numpy as np

from incgraph.core.graph import Node
from incgraph.core.processor import Processor
from incgraph.executors.dask import DaskExecutor
from incgraph.graph import ProcessGraph


class Noise(Processor):
    """A ``megabytes``-sized array of float64 drawn from ``seed``."""

    def process(self, seed: int, megabytes: int) -> np.ndarray:
        count = megabytes * 2**20 // 8
        return np.random.default_rng(seed).standard_normal(count)


class Mix(Processor):
    """``a + b / 2``: a new array as large as its inputs."""

    def process(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b / 2


class Total(Processor):
    """The sum of its input's elements (a float: the only value the driver loads)."""

    def process(self, x: np.ndarray) -> float:
        return float(x.sum())


def diamond(store: str, megabytes: int) -> tuple[ProcessGraph, Node]:
    """Eight arrays (three drawn, five mixed pairwise) feeding one total."""
    g = ProcessGraph(store=store)
    size = g.add_constant_node("megabytes")
    size.set_value(megabytes)
    n1 = g.add_node("n1", Noise, {"seed": 1, "megabytes": size})
    n2 = g.add_node("n2", Noise, {"seed": 2, "megabytes": size})
    n3 = g.add_node("n3", Noise, {"seed": 3, "megabytes": size})
    m1 = g.add_node("m1", Mix, {"a": n1, "b": n2})
    m2 = g.add_node("m2", Mix, {"a": n2, "b": n3})
    m3 = g.add_node("m3", Mix, {"a": m1, "b": m2})
    m4 = g.add_node("m4", Mix, {"a": m3, "b": n1})
    m5 = g.add_node("m5", Mix, {"a": m4, "b": m2})
    return g, g.add_node("total", Total, {"x": m5})


def expected_total(megabytes: int) -> float:
    """The target's value computed here, in plain numpy."""
    count = megabytes * 2**20 // 8
    n1, n2, n3 = (np.random.default_rng(s).standard_normal(count) for s in (1, 2, 3))
    m1 = n1 + n2 / 2
    m2 = n2 + n3 / 2
    m3 = m1 + m2 / 2
    m4 = m3 + n1 / 2
    return float((m4 + m2 / 2).sum())


def main(scheduler: str, store: str, megabytes: int, via_store: bool = True) -> dict[str, Any]:
    """Run the diamond on the cluster; what the run did and the driver's peak RSS growth."""
    g, total = diamond(store, megabytes)
    executor = DaskExecutor(address=scheduler, via_store=via_store)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        value = g.run_upto(total, executor=executor)
    finally:
        executor.shutdown()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    report = g.last_run
    return {
        "value": value,
        "computed": sorted(n.label for n in report.computed),
        "hits": sorted(n.label for n in report.hits),
        "grown_mb": grown_kib / 1024,
    }


if __name__ == "__main__":
    via = len(sys.argv) < 5 or sys.argv[4] != "ship"
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), via)))
