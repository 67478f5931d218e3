"""Warm reruns against their floors, graph memory per node and the fixed cost of a run.

Each warm phase runs in a fresh Python process (nothing memoized in memory), after a cold
run in another process filled the store. For every graph shape it prints, in one run:

* incgraph: the fully cached rerun (``run_upto`` of the last node) and the graph build;
* floor "keys": a plain-Python loop computing each node's key from its inputs' keys
  (xxhash over strings, no store) -- what any keyed rerun must at least do;
* floor "sqlite": the same loop plus one SQLite primary-key look-up per node in a table
  holding every key -- what a per-node cache costs;
* the ratios incgraph / keys and sqlite / incgraph.

Shapes: a chain of ``--chain`` nodes (1k and 10k by default) and the 10k-node graph of
``bench_engine.py`` (each node adds two earlier nodes' results). Also measured: a no-op
rerun of a ``--big``-node graph (build + run), the bytes a built graph costs per node
(tracemalloc over building ``--big`` nodes), ``add_node`` time per node, opening an existing
store, and the fixed cost of ``run_upto`` of one cached node.

    python benchmarks/bench_rerun.py [--chain 1000 10000] [--graph 10000] [--big 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# Both shapes: node i reads node i-1 and (graph shape only) node i // 2.
SHAPE = textwrap.dedent(
    """
    def inputs_of(i, shape):
        return (i - 1,) if shape == "chain" else (i - 1, i // 2)
    """
)

GRAPH = SHAPE + textwrap.dedent(
    """
    import sys, time, json
    from incgraph import ProcessGraph, Processor

    class One(Processor):
        def process(self, a: int) -> int:
            return (a + 1) % 1000003

    class Add(Processor):
        def process(self, a: int, b: int) -> int:
            return (a + b) % 1000003

    n, store, shape = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    t0 = time.perf_counter()
    g = ProcessGraph(store=store)
    nodes = [g.add_constant_node(0, "seed", value=1)]
    for i in range(1, n + 1):
        ins = inputs_of(i, shape)
        if shape == "chain":
            nodes.append(g.add_node(i, One, {"a": nodes[ins[0]]}))
        else:
            nodes.append(g.add_node(i, Add, {"a": nodes[ins[0]], "b": nodes[ins[1]]}))
    t1 = time.perf_counter()
    g.run_upto(nodes[-1])
    t2 = time.perf_counter()
    r = g.last_run
    print(json.dumps({"build": t1 - t0, "run": t2 - t1,
                      "computed": len(r.computed), "hits": len(r.hits)}))
    """
)

FLOOR = SHAPE + textwrap.dedent(
    """
    import sys, time, json, sqlite3
    import xxhash

    n, db, shape, lookup = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "sqlite"

    def keys():
        code = "code-version-of-the-processor"
        out = [xxhash.xxh3_128_hexdigest(b"seed")]
        for i in range(1, n + 1):
            out.append(xxhash.xxh3_128_hexdigest(
                (code + "|" + "|".join(out[j] for j in inputs_of(i, shape))).encode()))
        return out

    if sys.argv[5] == "fill":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE IF NOT EXISTS r (key TEXT PRIMARY KEY, dv TEXT) WITHOUT ROWID")
        con.executemany("INSERT OR REPLACE INTO r VALUES (?, ?)", [(k, k[:16]) for k in keys()])
        con.commit()
        print(json.dumps({"run": 0.0}))
        raise SystemExit
    con = sqlite3.connect(db)
    t0 = time.perf_counter()
    code = "code-version-of-the-processor"
    out = [xxhash.xxh3_128_hexdigest(b"seed")]
    get = con.execute
    for i in range(1, n + 1):
        key = xxhash.xxh3_128_hexdigest(
        (code + "|" + "|".join(out[j] for j in inputs_of(i, shape))).encode())
        if lookup and get("SELECT dv FROM r WHERE key = ?", (key,)).fetchone() is None:
            raise SystemExit("missing key")
        out.append(key)
    print(json.dumps({"run": time.perf_counter() - t0}))
    """
)

MEMORY = textwrap.dedent(
    """
    import sys, time, json, tracemalloc
    from incgraph import ProcessGraph, Processor

    class Add(Processor):
        def process(self, a: int, b: int) -> int:
            return (a + b) % 1000003

    n = int(sys.argv[1])
    g = ProcessGraph(store=":memory:")
    nodes = [g.add_constant_node(0, "seed", value=1)]
    nodes.append(g.add_node(1, Add, {"a": nodes[0], "b": nodes[0]}))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    for i in range(2, n + 1):
        nodes.append(g.add_node(i, Add, {"a": nodes[i - 1], "b": nodes[i // 2]}))
    t1 = time.perf_counter()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # add_node time without tracemalloc's overhead, on a second graph
    g2 = ProcessGraph(store=":memory:")
    m = [g2.add_constant_node(0, "seed", value=1)]
    t2 = time.perf_counter()
    for i in range(1, n + 1):
        m.append(g2.add_node(i, Add, {"a": m[i - 1], "b": m[i // 2]}))
    t3 = time.perf_counter()
    print(json.dumps({"bytes_per_node": (after - before) / (n - 1),
                      "add_node_us": (t3 - t2) / n * 1e6, "run": t3 - t2}))
    """
)

FIXED = textwrap.dedent(
    """
    import sys, time, json
    t0 = time.perf_counter()
    from incgraph import ProcessGraph, Processor, open_store
    t1 = time.perf_counter()

    class One(Processor):
        def process(self, a: int) -> int:
            return a + 1

    where = sys.argv[1]
    t2 = time.perf_counter()
    store = open_store(where)
    t3 = time.perf_counter()
    opens = []
    for _ in range(20):
        s0 = time.perf_counter()
        open_store(where).close()
        opens.append(time.perf_counter() - s0)
    g = ProcessGraph(store=store)
    node = g.add_node(1, One, {"a": 1})
    g.run_upto(node)
    runs = []
    for _ in range(200):
        s0 = time.perf_counter()
        g.run_upto(node)
        runs.append(time.perf_counter() - s0)
    assert not g.last_run.computed
    print(json.dumps({"import": t1 - t0, "first_open": t3 - t2, "open": min(opens),
                      "run_one_cached": sorted(runs)[len(runs) // 2], "run": 0.0}))
    """
)


def fresh(script: str, *args: object) -> dict[str, float]:
    """Run ``script`` in a new Python process and return the JSON it prints.

    ``-P``: the package comes from ``PYTHONPATH`` (or the installed one), not from the
    current folder, so ``PYTHONPATH=<checkout>`` picks the code being measured.
    """
    command = [sys.executable, "-P", "-c", script, *map(str, args)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(script: str, *args: object, repeat: int = 3, by: str = "run") -> dict[str, float]:
    """The fastest of ``repeat`` fresh-process runs (the machine is shared and noisy)."""
    runs = [fresh(script, *args) for _ in range(repeat)]
    return min(runs, key=lambda r: r[by])


def emit(name: str, **fields: object) -> dict[str, object]:
    """Print one measurement as a JSON line and return it."""
    row = {"benchmark": name, **fields}
    print(json.dumps(row), flush=True)
    return row


def rerun_vs_floors(base: Path, shape: str, n: int, repeat: int) -> dict[str, object]:
    """One shape's warm rerun against the key floor and the SQLite floor."""
    where = base / f"{shape}-{n}"
    fresh(GRAPH, n, where, shape)
    warm = best(GRAPH, n, where, shape, repeat=repeat)
    assert warm["computed"] == 0, warm
    db = base / f"{shape}-{n}.sqlite"
    fresh(FLOOR, n, db, shape, "sqlite", "fill")
    keys = best(FLOOR, n, db, shape, "keys", "time", repeat=repeat)["run"]
    sql = best(FLOOR, n, db, shape, "sqlite", "time", repeat=repeat)["run"]
    run = warm["run"]
    return emit(
        f"{shape} warm rerun",
        nodes=n,
        run_ms=round(run * 1e3, 1),
        build_ms=round(warm["build"] * 1e3, 1),
        keys_floor_ms=round(keys * 1e3, 1),
        sqlite_floor_ms=round(sql * 1e3, 1),
        run_over_keys=round(run / keys, 2),
        sqlite_over_run=round(sql / run, 2),
    )


def main() -> None:
    """Run every measurement and print a markdown table of the ratios."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--chain", type=int, nargs="*", default=[1_000, 10_000])
    ap.add_argument("--graph", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for n in args.chain:
            rows.append(rerun_vs_floors(base, "chain", n, args.repeat))
        rows.append(rerun_vs_floors(base, "graph", args.graph, args.repeat))
        big = base / "big"
        fresh(GRAPH, args.big, big, "graph")
        bw = best(GRAPH, args.big, big, "graph", repeat=args.repeat)
        assert bw["computed"] == 0, bw
        emit(
            "no-op rerun",
            nodes=args.big,
            build_s=round(bw["build"], 3),
            run_s=round(bw["run"], 3),
            total_s=round(bw["build"] + bw["run"], 3),
        )
        mem = best(MEMORY, args.big, repeat=args.repeat, by="bytes_per_node")
        emit(
            "built graph",
            nodes=args.big,
            bytes_per_node=round(mem["bytes_per_node"]),
            add_node_us=round(mem["add_node_us"], 2),
        )
        fixed = best(FIXED, big, repeat=args.repeat, by="run_one_cached")
        emit(
            "fixed cost",
            import_ms=round(fixed["import"] * 1e3, 1),
            first_open_ms=round(fixed["first_open"] * 1e3, 3),
            open_ms=round(fixed["open"] * 1e3, 3),
            run_one_cached_ms=round(fixed["run_one_cached"] * 1e3, 3),
        )
    print()
    print(
        "| shape | nodes | rerun | build | keys floor | sqlite floor | rerun/keys | sqlite/rerun |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['benchmark']} | {r['nodes']} | {r['run_ms']} ms | {r['build_ms']} ms | "
            f"{r['keys_floor_ms']} ms | {r['sqlite_floor_ms']} ms | {r['run_over_keys']}x | "
            f"{r['sqlite_over_run']}x |"
        )


if __name__ == "__main__":
    main()
