"""Executors on CPU-bound work: a ~20 ms pure-Python processor over 64 items.

incgraph runs the batch with the serial, threads and processes executors (each
on a fresh store, so everything computes); the peer is ``joblib.Parallel`` (loky,
the same worker processes) over the same function. The processor is defined in
this script's ``__main__``, which the processes executor sends to its workers
with cloudpickle. One JSON line per measurement, with the speed-up over serial
(and, for processes, the ratio to joblib), then a markdown table.

    python benchmarks/bench_executors.py              # about 20 s on 2 cores
    python benchmarks/bench_executors.py --workers 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from incgraph import ProcessGraph, Processor
from incgraph.executors import resolve_executor
from incgraph.executors.processes import ProcessExecutor
from incgraph.executors.threads import ThreadExecutor

ITEMS = 64
RUNNERS = ("serial", "threads", "processes", "joblib.Parallel")


def burn(x: int, rounds: int) -> int:
    """Pure-Python CPU work: ``rounds`` steps of a little arithmetic."""
    acc = x
    for i in range(rounds):
        acc = (acc * 31 + i) % 1_000_003
    return acc


class Burn(Processor):
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    def process(self, x: int) -> int:
        return burn(x, self.rounds)


def calibrate(target_seconds: float = 0.02) -> int:
    """Rounds of ``burn`` that take about ``target_seconds`` here."""
    rounds = 10_000
    while True:
        start = time.perf_counter()
        burn(1, rounds)
        took = time.perf_counter() - start
        if took > 0.005:
            return max(1, int(rounds * target_seconds / took))
        rounds *= 2


def _warm_up() -> int:
    import incgraph.run.jobs  # noqa: F401 - what a worker imports for its first job

    return os.getpid()


def run_batch(folder: Path, executor: object, rounds: int) -> float:
    graph = ProcessGraph(store=folder)
    x = graph.add_constant_node(0, "x")
    node = graph.add_node(1, Burn, {"x": x}, node_init_kwargs={"rounds": rounds})
    start = time.perf_counter()
    stats = graph.process_batch(range(ITEMS), [node], executor=executor, progress=False)
    took = time.perf_counter() - start
    assert stats.computed == ITEMS, stats
    graph.close()
    return took


def run_joblib(rounds: int, workers: int) -> float:
    import joblib

    start = time.perf_counter()
    joblib.Parallel(n_jobs=workers)(joblib.delayed(burn)(x, rounds) for x in range(ITEMS))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeat", type=int, default=3, help="runs per executor (median)")
    args = parser.parse_args()
    rounds = calibrate()
    folder = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    processes = ProcessExecutor(max_workers=args.workers)
    threads = ThreadExecutor(max_workers=args.workers)
    try:
        # Start the workers (and import incgraph in them) outside the timing, as for joblib.
        for fut in [processes.submit(_warm_up) for _ in range(4 * args.workers)]:
            fut.result()
        run_joblib(1, args.workers)
        samples: dict[str, list[float]] = {k: [] for k in RUNNERS}
        for rep in range(args.repeat):  # interleaved, so background load hits all alike
            for name in RUNNERS:
                if name == "joblib.Parallel":
                    samples[name].append(run_joblib(rounds, args.workers))
                else:
                    ex = {"serial": resolve_executor("serial"), "threads": threads}.get(
                        name, processes
                    )
                    samples[name].append(run_batch(folder / f"{name}-{rep}", ex, rounds))
        times = {name: statistics.median(values) for name, values in samples.items()}
    finally:
        processes.shutdown()
        threads.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    per_item_ms = times["serial"] / ITEMS * 1000
    rows = []
    for name, took in times.items():
        line = {
            "bench": "executors",
            "executor": name,
            "items": ITEMS,
            "item_ms_serial": round(per_item_ms, 1),
            "workers": 1 if name == "serial" else args.workers,
            "cpus": os.cpu_count(),
            "seconds_median": round(took, 3),
            "repeat": args.repeat,
            "speedup_vs_serial": round(times["serial"] / took, 2),
        }
        if name == "processes":
            line["peer"] = "joblib.Parallel"
            line["ratio_to_peer"] = round(times["joblib.Parallel"] / took, 2)
        print(json.dumps(line))
        rows.append(line)
    print()
    print("| executor | workers | seconds | speed-up vs serial |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['executor']} | {r['workers']} | {r['seconds_median']} | "
            f"{r['speedup_vs_serial']}x |"
        )


if __name__ == "__main__":
    main()
