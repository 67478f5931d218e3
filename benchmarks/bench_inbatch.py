"""Per-item overhead of an in-batch parallel action, threads target.

A trivial action (return the item's index) over 10,000 items, timed three ways
in the same process:

* ``incgraph``      ``@inbatch_parallel(target="threads")``: chunked, caller helps,
                    pooled threads;
* ``naive_futures`` the original library's approach, as a stand-in: a new
                    ``ThreadPoolExecutor`` per call and one future per item;
* ``plain_loop``    a for loop calling the method with a try/except per item, the
                    floor any parallel version pays on top of.

Each figure is the median of several runs, in microseconds per item. Prints one
JSON line per measurement (with ratios to incgraph), then a markdown table.

Run: ``python benchmarks/bench_inbatch.py [--items 10000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from incgraph.parallel import Batch, inbatch_parallel
from incgraph.parallel.threads import default_thread_workers

N_WORKERS = default_thread_workers()


def naive_inbatch_parallel(init: str, n_workers: int) -> Callable[[Any], Any]:
    """One future per item in a fresh pool per call, as the original library did."""

    def decorate(method: Any) -> Any:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
            entries = getattr(self, init)(*args, **kwargs)
            with cf.ThreadPoolExecutor(max_workers=n_workers) as executor:
                futures = [
                    executor.submit(method, self, entry, *args, **kwargs) for entry in entries
                ]
                cf.wait(futures)
            return [f.exception() if f.exception() is not None else f.result() for f in futures]

        return run

    return decorate


class Trivial(Batch):
    def _init(self, *args: Any, **kwargs: Any) -> Any:
        return self.indices

    @inbatch_parallel(init="_init", target="threads", n_workers=N_WORKERS)
    def incgraph(self, index: int) -> int:
        return index

    @naive_inbatch_parallel(init="_init", n_workers=N_WORKERS)
    def naive_futures(self, index: int) -> int:
        return index

    def plain_loop(self) -> list[Any]:
        results: list[Any] = []
        for index in self._init():
            try:
                results.append(self.incgraph.__wrapped__(self, index))
            except Exception as exc:
                results.append(exc)
        return results


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm up: pools, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()

    batch = Trivial(list(range(options.items)))
    expected = list(range(options.items))
    for name in ("incgraph", "naive_futures", "plain_loop"):
        assert getattr(batch, name)() == expected, name

    us_per_item = {
        name: median_seconds(getattr(batch, name), options.repeat) / options.items * 1e6
        for name in ("incgraph", "naive_futures", "plain_loop")
    }
    env = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "n_workers": N_WORKERS,
        "items": options.items,
        "repeat": options.repeat,
    }
    for name, value in us_per_item.items():
        line = {
            "benchmark": "inbatch_threads_trivial",
            "impl": name,
            "us_per_item": round(value, 3),
            "ratio_to_incgraph": round(value / us_per_item["incgraph"], 2),
            **env,
        }
        print(json.dumps(line))

    print()
    print(f"Trivial action, {options.items} items, threads target, n_workers={N_WORKERS}, ")
    print(f"Python {env['python']}, {env['cpus']} CPUs, median of {options.repeat} runs.")
    print()
    print("| implementation | µs per item | relative to incgraph |")
    print("|---|---:|---:|")
    labels = {
        "incgraph": "incgraph `inbatch_parallel` (chunked, pooled)",
        "naive_futures": "one future per item, pool per call (original approach)",
        "plain_loop": "plain for loop, no threads",
    }
    for name, value in us_per_item.items():
        ratio = value / us_per_item["incgraph"]
        print(f"| {labels[name]} | {value:.2f} | {ratio:.2f}x |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
