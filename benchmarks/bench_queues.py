"""Queue pipeline throughput: a 3-task chain of trivial functions, against a loop and futures.

Measured in one run, on the same items:

* ``plain_loop``: ``[f3(f2(f1(x))) for x in items]`` -- the floor nothing can beat;
* ``futures_map``: ``ThreadPoolExecutor(4).map`` of the composed function, what
  people write by hand to run a function over items with a pool;
* incgraph with the cache off, tasks inline (``max_workers=1``) and on 4-thread pools;
* incgraph with the cache on: a cold store (everything computed and saved) and a
  warm rerun in the same process (everything a hit);
* the store operations a cached item costs (``lookup_many``, ``save_many``,
  ``load``), to show where cached time goes.

Each measurement prints one JSON line (``items_per_s`` and ratios against the
plain loop and the futures map); a markdown table follows.

    python benchmarks/bench_queues.py [--items 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import incgraph.queues as iq
from incgraph import hashing
from incgraph.store import open_store
from incgraph.store.protocols import Record


def f1(x: int) -> int:
    return x + 1


def f2(x: int) -> int:
    return x * 2


def f3(x: int) -> int:
    return x - 3


def composed(x: int) -> int:
    return f3(f2(f1(x)))


def plain_loop(items: list[int]) -> list[int]:
    return [f3(f2(f1(x))) for x in items]


def futures_map(items: list[int]) -> list[int]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(composed, items))


def pipeline(store: Any, *, cache: bool, workers: int) -> Callable[[list[int]], list[int]]:
    tasks = [iq.Task(f, max_workers=workers, cache=cache) for f in (f1, f2, f3)]

    def run(items: list[int]) -> list[int]:
        p = iq.Pipeline(store=store)
        out = p.chain(tasks, iq.Queue(items))
        report = p.run()
        assert isinstance(report, iq.PipelineReport) and report.ok
        return list(out)

    return run


def timed(fn: Callable[[list[int]], list[int]], items: list[int], repeat: int) -> float:
    best = float("inf")
    expected = [f3(f2(f1(x))) for x in items]
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(items)
        best = min(best, time.perf_counter() - start)
        assert result == expected
    return best


def store_costs(folder: Path, n: int = 20_000) -> dict[str, float]:
    """Microseconds per key looked up, per record saved and per value loaded (batches of 512)."""
    store = open_store(folder)
    cv, iv = hashing.code_version(f1), hashing.data_version({})
    entries = []
    for i in range(n):
        dv = hashing.data_version(-i - 1)
        key = hashing.node_key(cv, iv, {"item": dv})
        entries.append((Record(key, dv, "bench", "f1", cv, iv, {"item": dv}, time.time()), i))
    start = time.perf_counter()
    for j in range(0, n, 512):
        store.save_many(entries[j : j + 512])
    saved = time.perf_counter() - start
    start = time.perf_counter()
    for j in range(0, n, 512):
        store.lookup_many([r.key for r, _ in entries[j : j + 512]])
    looked = time.perf_counter() - start
    start = time.perf_counter()
    for record, _ in entries[: n // 4]:
        store.load(record)
    loaded = time.perf_counter() - start
    store.close()
    return {
        "save_us": 1e6 * saved / n,
        "lookup_us": 1e6 * looked / n,
        "load_us": 1e6 * loaded / (n // 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    n = args.items
    items = list(range(n))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        seconds = {
            "plain_loop": timed(plain_loop, items, 3),
            "futures_map": timed(futures_map, items, 1),
            "incgraph_no_cache": timed(pipeline(":memory:", cache=False, workers=1), items, 3),
            "incgraph_no_cache_4_threads": timed(
                pipeline(":memory:", cache=False, workers=4), items, 3
            ),
            "incgraph_cache_cold": timed(pipeline(store, cache=True, workers=1), items, 1),
            "incgraph_cache_warm": timed(pipeline(store, cache=True, workers=1), items, 1),
        }
        costs = store_costs(Path(tmp) / "costs")
    loop_rate = n / seconds["plain_loop"]
    futures_rate = n / seconds["futures_map"]
    for case, s in seconds.items():
        rate = n / s
        row = {
            "bench": "queues",
            "case": case,
            "items": n,
            "seconds": round(s, 4),
            "items_per_s": round(rate),
            "ratio_vs_plain_loop": round(rate / loop_rate, 4),
            "ratio_vs_futures_map": round(rate / futures_rate, 3),
        }
        rows.append(row)
        print(json.dumps(row))
    print(
        json.dumps(
            {
                "bench": "queues",
                "case": "store_costs_per_item",
                **{k: round(v, 2) for k, v in costs.items()},
            }
        )
    )
    print()
    print(f"| case ({n} items, 3 trivial tasks) | items/s | vs plain loop | vs futures map |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['items_per_s']:,} | {row['ratio_vs_plain_loop']:.3f} | "
            f"{row['ratio_vs_futures_map']:.2f} |"
        )
    print()
    print(
        f"Store, per item and task: lookup_many {costs['lookup_us']:.1f} us/key, "
        f"save_many {costs['save_us']:.1f} us/record, load {costs['load_us']:.1f} us/value."
    )


if __name__ == "__main__":
    main()
