"""Batch throughput: item-nodes per second, cold and fully cached, against joblib.Memory.

The graph is ``item -> Inc -> Double`` (two trivial processors, so the figures
measure the engine: keys, look-ups, hashing, storing). incgraph runs it with
``graph.process_batch`` on an on-disk store; the peer is a plain loop over two
``joblib.Memory``-cached functions of the same shape. Each prints one JSON line
per measurement with the ratio (incgraph rate / peer rate), then a markdown
table.

    python benchmarks/bench_batch.py            # about a minute and a half
    python benchmarks/bench_batch.py --quick    # a few seconds, smaller batches
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from incgraph import ProcessGraph, Processor


class Inc(Processor):
    def process(self, x: int) -> int:
        return x + 1


class Double(Processor):
    def process(self, y: int) -> int:
        return 2 * y


def inc(x: int) -> int:
    return x + 1


def double(y: int) -> int:
    return 2 * y


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def incgraph_batch(folder: Path, n: int) -> tuple[float, float]:
    """Seconds for a cold batch and the best of two fully cached reruns."""
    graph = ProcessGraph(store=folder / "incgraph")
    x = graph.add_constant_node(0, "x")
    last = graph.add_node(2, Double, {"y": graph.add_node(1, Inc, {"x": x})})
    items = list(range(n))

    def run() -> None:
        stats = graph.process_batch(items, [last], progress=False)
        assert len(stats.completed) == n

    cold = timed(run)
    cached = min(timed(run) for _ in range(2))
    graph.close()
    return cold, cached


def joblib_loop(folder: Path, n: int) -> tuple[float, float]:
    """The same with a loop over joblib.Memory-cached functions."""
    import joblib

    memory = joblib.Memory(folder / "joblib", verbose=0)
    cached_inc, cached_double = memory.cache(inc), memory.cache(double)

    def run() -> None:
        for item in range(n):
            cached_double(cached_inc(item))

    cold = timed(run)
    cached = min(timed(run) for _ in range(2))
    return cold, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best one counts")
    args = parser.parse_args()
    n_incgraph, n_joblib = (4_000, 400) if args.quick else (20_000, 2_000)
    runs: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for _ in range(args.repeat):  # interleaved, fresh stores each time; the best run counts
        folder = Path(tempfile.mkdtemp(prefix="bench-batch-"))
        try:
            runs.append((incgraph_batch(folder, n_incgraph), joblib_loop(folder, n_joblib)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    ours = (min(r[0][0] for r in runs), min(r[0][1] for r in runs))
    peer = (min(r[1][0] for r in runs), min(r[1][1] for r in runs))
    rows = []
    for case, mine, theirs in [("cold", ours[0], peer[0]), ("cached", ours[1], peer[1])]:
        rate, peer_rate = 2 * n_incgraph / mine, 2 * n_joblib / theirs
        line = {
            "bench": "batch",
            "case": case,
            "graph": "item -> Inc -> Double",
            "incgraph_item_nodes": 2 * n_incgraph,
            "incgraph_seconds": round(mine, 4),
            "incgraph_item_nodes_per_s": round(rate),
            "peer": "joblib.Memory loop",
            "peer_item_nodes": 2 * n_joblib,
            "peer_seconds": round(theirs, 4),
            "peer_item_nodes_per_s": round(peer_rate),
            "ratio": round(rate / peer_rate, 2),
            "best_of": args.repeat,
        }
        print(json.dumps(line))
        rows.append(line)
    print()
    print("| case | incgraph item-nodes/s | joblib.Memory item-nodes/s | ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['incgraph_item_nodes_per_s']:,} | "
            f"{r['peer_item_nodes_per_s']:,} | {r['ratio']}x |"
        )


if __name__ == "__main__":
    main()
