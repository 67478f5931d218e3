"""Cache-hit overhead of a fully cached rerun, in a new process, against memoizing peers.

Measures, each warm phase in a fresh Python process (so nothing is memoized in memory):

* incgraph: a 10k-node graph (each node adds two earlier nodes' results), cold run,
  then a fully cached rerun in a new process: microseconds per node for ``run_upto``
  and for building the graph.
* joblib.Memory: the same 10k calls, each a cached hit of a ``Memory.cache``-wrapped function.
* diskcache: the same 10k calls through ``Cache.memoize``.
* incgraph: a no-op rerun of a 100k-node graph (build + run) in a new process.

Prints one JSON line per measurement and a markdown table.

    python benchmarks/bench_engine.py [--nodes 10000] [--big 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

GRAPH = textwrap.dedent(
    """
    import sys, time, json
    from incgraph import ProcessGraph, Processor

    class Add(Processor):
        def process(self, a: int, b: int) -> int:
            return (a + b) % 1000003

    n, store = int(sys.argv[1]), sys.argv[2]
    t0 = time.perf_counter()
    g = ProcessGraph(store=store)
    nodes = [g.add_constant_node(0, "seed", value=1)]
    for i in range(1, n + 1):
        nodes.append(g.add_node(i, Add, {"a": nodes[i - 1], "b": nodes[i // 2]}))
    t1 = time.perf_counter()
    g.run_upto(nodes[-1])
    t2 = time.perf_counter()
    r = g.last_run
    print(json.dumps({"build": t1 - t0, "run": t2 - t1,
                      "computed": len(r.computed), "hits": len(r.hits)}))
    """
)

JOBLIB = textwrap.dedent(
    """
    import sys, time, json, warnings
    warnings.simplefilter("ignore")
    from joblib import Memory

    def add(a, b):
        return (a + b) % 1000003

    n, where = int(sys.argv[1]), sys.argv[2]
    f = Memory(where, verbose=0).cache(add)
    vals = [1]
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        vals.append(f(vals[i - 1], vals[i // 2]))
    print(json.dumps({"run": time.perf_counter() - t0}))
    """
)

DISKCACHE = textwrap.dedent(
    """
    import sys, time, json
    import diskcache

    cache = diskcache.Cache(sys.argv[2], size_limit=2**40)

    @cache.memoize()
    def add(a, b):
        return (a + b) % 1000003

    n = int(sys.argv[1])
    vals = [1]
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        vals.append(add(vals[i - 1], vals[i // 2]))
    print(json.dumps({"run": time.perf_counter() - t0}))
    """
)


def fresh(script: str, *args: object) -> dict[str, float]:
    """Run ``script`` in a new Python process and return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(script: str, *args: object, repeat: int = 3) -> dict[str, float]:
    """The fastest of ``repeat`` fresh-process runs (the machine is shared and noisy)."""
    runs = [fresh(script, *args) for _ in range(repeat)]
    return min(runs, key=lambda r: r["run"])


def emit(name: str, **fields: object) -> dict[str, object]:
    row = {"benchmark": name, **fields}
    print(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.nodes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cold = fresh(GRAPH, n, base / "ig")
        warm = best(GRAPH, n, base / "ig", repeat=args.repeat)
        assert warm["computed"] == 0 and warm["hits"] == n, warm
        ig_us = warm["run"] / n * 1e6
        rows.append(emit("incgraph cold run", nodes=n, us_per_node=round(cold["run"] / n * 1e6, 2)))
        rows.append(
            emit("incgraph graph build", nodes=n, us_per_node=round(warm["build"] / n * 1e6, 2))
        )
        rows.append(emit("incgraph cached rerun", nodes=n, us_per_node=round(ig_us, 2), ratio=1.0))

        fresh(JOBLIB, n, base / "jl")
        jl_us = best(JOBLIB, n, base / "jl", repeat=args.repeat)["run"] / n * 1e6
        rows.append(
            emit(
                "joblib.Memory hit",
                nodes=n,
                us_per_node=round(jl_us, 2),
                ratio=round(jl_us / ig_us, 2),
            )
        )

        fresh(DISKCACHE, n, base / "dc")
        dc_us = best(DISKCACHE, n, base / "dc", repeat=args.repeat)["run"] / n * 1e6
        rows.append(
            emit(
                "diskcache memoize hit",
                nodes=n,
                us_per_node=round(dc_us, 2),
                ratio=round(dc_us / ig_us, 2),
            )
        )

        big = args.big
        fresh(GRAPH, big, base / "big")
        bw = best(GRAPH, big, base / "big", repeat=args.repeat)
        assert bw["computed"] == 0, bw
        rows.append(
            emit(
                "incgraph 100k no-op rerun",
                nodes=big,
                build_s=round(bw["build"], 3),
                run_s=round(bw["run"], 3),
                total_s=round(bw["build"] + bw["run"], 3),
            )
        )

    print()
    print("| measurement | nodes | figure | peer / incgraph |")
    print("|---|---:|---:|---:|")
    for r in rows:
        if "us_per_node" in r:
            ratio = f"{r['ratio']}x" if "ratio" in r else ""
            print(f"| {r['benchmark']} | {r['nodes']} | {r['us_per_node']} µs/node | {ratio} |")
        else:
            print(
                f"| {r['benchmark']} | {r['nodes']} | build {r['build_s']} s + "
                f"run {r['run_s']} s = {r['total_s']} s | |"
            )


if __name__ == "__main__":
    main()
