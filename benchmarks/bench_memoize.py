"""``@incgraph.memoize`` against ``joblib.Memory(...).cache``: per hit and per miss, same run.

Run::

    python benchmarks/bench_memoize.py [--calls 300]

Prints one JSON line per measurement (``{"bench": ..., "unit": "us/call", "incgraph": ...,
"peer": ..., "peer_name": "joblib.Memory", "ratio": ...}``; ratio = peer / incgraph, so
higher means incgraph is faster), then a markdown table.

Measurements (microseconds per call, both stores on the same local disk, in one process):

* ``hit_small``: a function of two small arguments (an int and a short string) called
  again with the same arguments;
* ``miss_small``: the same function, each call with a new int (computes and stores);
* ``hit_1mib``: a function of a 1 MiB float64 array (and an int), called again with an
  equal array;
* ``miss_1mib``: the same, each call with a new array (its first element changed).

The function bodies cost next to nothing, so a miss measures the key, the look-up,
storing the (small) result and its metadata. Every figure is the fastest of three
passes, incgraph's and joblib's passes interleaved, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import incgraph


def _per_call(fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> float:
    start = time.perf_counter()
    for args in calls:
        fn(*args)
    return (time.perf_counter() - start) / len(calls) * 1e6


def _functions(folder: Path) -> dict[str, tuple[Callable[..., Any], Callable[..., Any]]]:
    from joblib import Memory

    memory = Memory(str(folder / "joblib"), verbose=0)
    store = str(folder / "incgraph")

    def small(n: int, tag: str) -> int:
        return n + len(tag)

    def big(a: np.ndarray, k: int) -> float:
        return float(a[0]) + k

    return {
        "small": (incgraph.memoize(small, store=store), memory.cache(small)),
        "1mib": (incgraph.memoize(big, store=store), memory.cache(big)),
    }


def _arguments(kind: str, count: int, start: int) -> list[tuple[Any, ...]]:
    if kind == "small":
        return [(start + i, "tag") for i in range(count)]
    base = np.random.default_rng(0).random(131_072)  # 1 MiB of float64
    calls = []
    for i in range(count):
        a = base.copy()
        a[0] = start + i
        calls.append((a, 1))
    return calls


def measure(calls: int, passes: int = 3) -> list[dict[str, Any]]:
    """Fastest-of-``passes`` microseconds per call for each measurement."""
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        funcs = _functions(Path(tmp))
        for kind, (ours, theirs) in funcs.items():
            best = {"hit": [float("inf")] * 2, "miss": [float("inf")] * 2}
            n = calls if kind == "small" else max(calls // 3, 30)
            hit_args = _arguments(kind, 1, -1) * n
            ours(*hit_args[0])
            theirs(*hit_args[0])
            for p in range(passes):
                for i, fn in enumerate((ours, theirs)):
                    best["hit"][i] = min(best["hit"][i], _per_call(fn, hit_args))
                    fresh = _arguments(kind, n, (p * 2 + i + 1) * 100_000)
                    best["miss"][i] = min(best["miss"][i], _per_call(fn, fresh))
            for what, (mine, peer) in best.items():
                rows.append(
                    {
                        "bench": f"{what}_{kind}",
                        "unit": "us/call",
                        "incgraph": round(mine, 1),
                        "peer": round(peer, 1),
                        "peer_name": "joblib.Memory",
                        "ratio": round(peer / mine, 1),
                    }
                )
            ours.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| measurement | incgraph.memoize | joblib.Memory | joblib / incgraph |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['bench']} | {row['incgraph']} µs | {row['peer']} µs | {row['ratio']}x |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the measurements; print JSON lines and a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per pass (small args)")
    args = parser.parse_args()
    rows = measure(args.calls)
    for row in rows:
        print(json.dumps({**row, "python": platform.python_version()}))
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
