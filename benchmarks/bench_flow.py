"""Benchmark: a Flow ForEach over N trivial tasks vs a plain Python loop doing the same work.

The flow: ``Data`` shards ``range(n)``; ``Work`` (a ForEach over the shard) sets
``self.y = x * 2`` per element; ``Total`` joins the tasks and sums ``y``. The
peer is the same work as a plain loop: ``sum(work(x) for x in range(n))``.

Measured for N = 100, 1,000 and 10,000, each the best of ``--repeat`` runs:

* ``first``  - a fresh store: every layer and task computes and is stored;
* ``cached`` - a rerun of the same flow on the same store (new flow object):
  everything is a hit;
* ``one_changed`` - a rerun after one shard element changed (``Data``'s code
  reads the module constant ``CHANGED``): ``Data`` and one task recompute,
  the other tasks are hits, ``Total`` recomputes.

``per_task_us`` is ``(flow seconds - loop seconds) / N``: the overhead incgraph
adds per task. Each measurement prints one JSON line; a markdown table follows.

Run: ``python benchmarks/bench_flow.py`` (about a minute; ``--quick`` for N <= 1,000).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import time
from pathlib import Path

from incgraph.flow import Flow, ForEach, Layer, Parameter

CHANGED = -1  # the element set to -1; a module constant, so part of Data's code version


class Bench(Flow): ...


@Bench.register
class Data(Layer):
    def __call__(self) -> None:
        n = self.params["n"]
        self.shard(x=[-1 if i == CHANGED else i for i in range(n)])


@Bench.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="x")]))
class Work(Layer):
    # Code versions do not follow names used only in annotations, so Work's does
    # not include Data's code (nor CHANGED): only the changed task recomputes.
    def __call__(self, data: Data) -> None:
        self.y = work(data.x)


@Bench.register
class Total(Layer):
    def __call__(self, work: Work) -> None:
        self.total = sum(work.y)


def work(x: int) -> int:
    return x * 2


def plain_loop(n: int, changed: int) -> int:
    return sum(work(-1 if i == changed else i) for i in range(n))


def timed(fn, *args):  # type: ignore[no-untyped-def]
    gc.collect()
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def run_flow(store: Path, n: int, changed: int = -1) -> int:
    global CHANGED
    CHANGED = changed
    with Bench(store=store) as flow:
        execution = flow(n=n)
        total: int = execution[Total].total
    return total


def best(n: int, repeat: int, scratch: Path) -> dict[str, float]:
    """Best-of-``repeat`` seconds for each phase, plus the plain loop."""
    times: dict[str, list[float]] = {"loop": [], "first": [], "cached": [], "one_changed": []}
    for r in range(repeat):
        store = scratch / f"n{n}-r{r}"
        t, expected = timed(plain_loop, n, -1)
        times["loop"].append(t)
        t, total = timed(run_flow, store, n)
        assert total == expected, (total, expected)
        times["first"].append(t)
        t, total = timed(run_flow, store, n)
        assert total == expected
        times["cached"].append(t)
        t, total = timed(run_flow, store, n, n // 2)
        assert total == plain_loop(n, n // 2)
        times["one_changed"].append(t)
        shutil.rmtree(store)
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000 only")
    args = parser.parse_args()
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t = best(n, args.repeat, Path(tmp))
            for phase in ("first", "cached", "one_changed"):
                line = {
                    "bench": "flow_foreach",
                    "n": n,
                    "phase": phase,
                    "seconds": round(t[phase], 6),
                    "loop_seconds": round(t["loop"], 6),
                    "per_task_us": round((t[phase] - t["loop"]) / n * 1e6, 2),
                    "ratio_vs_loop": round(t[phase] / t["loop"], 1),
                }
                print(json.dumps(line), flush=True)
                rows.append(line)
    print()
    print("| N | phase | flow (s) | plain loop (s) | overhead per task (us) |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['phase']} | {r['seconds']:.4f} | {r['loop_seconds']:.6f} "
            f"| {r['per_task_us']:.1f} |"
        )


if __name__ == "__main__":
    main()
