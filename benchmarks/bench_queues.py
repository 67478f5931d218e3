"""Queue pipeline throughput: a 3-task chain of trivial functions, against a loop and futures.

Measured in one run, on the same items:

* ``plain_loop``: ``[f3(f2(f1(x))) for x in items]`` -- the floor nothing can beat;
* ``futures_map``: ``ThreadPoolExecutor(4).map`` of the composed function, what
  people write by hand to run a function over items with a pool;
* incgraph with the cache off, tasks inline (``max_workers=1``) and on 4-thread pools;
* incgraph with the cache on: a cold store (everything computed and saved) and a
  warm rerun in the same process (everything a hit; best of 3 reruns, each a new
  pipeline, as the repeatable cases are best of 3);
* ``store_floor_cold`` / ``store_floor_warm``: the store calls those two runs
  cannot avoid (keys, ``lookup_many``, ``save_many``, ``load``), made in one thread
  with no pipeline at all -- the floor the store sets for cached throughput;
* the store operations per item (look-up of hits -- ``lookup_versions`` when the
  store has it, else ``lookup_many`` --, ``save_many``, ``load``).

Each measurement prints one JSON line (``items_per_s`` and ratios against the
plain loop and the futures map; the cached cases also against their store
floor); a markdown table follows.

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

FLOOR_ITEMS = 30_000
FLOOR_OF = {"incgraph_cache_cold": "store_floor_cold", "incgraph_cache_warm": "store_floor_warm"}


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


def lookup(store: Any, keys: list[str]) -> dict[str, str]:
    """Key -> data version of the hits, as the pipeline asks the store for them."""
    versions = getattr(store, "lookup_versions", None)
    if versions is not None:
        return dict(versions(keys))
    return {k: r.data_version for k, r in store.lookup_many(keys).items()}


def store_floor(store_folder: Path) -> Callable[[list[int]], list[int]]:
    """The same store calls a cached 3-task chain needs, in one thread with no pipeline.

    Per chunk of 512 items and per task: keys, one ``lookup_many``, compute and
    ``save_many`` the misses; then load the last results that were hits. This is
    the floor the store sets; the pipeline's cached cases are compared with it.
    """
    cvs = [hashing.code_version(f) for f in (f1, f2, f3)]
    iv = hashing.data_version({})

    def run(items: list[int]) -> list[int]:
        store = open_store(store_folder)
        out: list[int] = []
        for j in range(0, len(items), 512):
            values: list[Any] = items[j : j + 512]
            dvs = [hashing.data_version(x) for x in values]
            hit_last = False
            for fn, cv in zip((f1, f2, f3), cvs, strict=True):
                keys = [hashing.node_key(cv, iv, {"item": dv}) for dv in dvs]
                found = lookup(store, keys)
                if len(found) == len(keys):
                    dvs, hit_last = [found[k] for k in keys], True
                    values = [None] * len(keys)  # loaded only at the end, as the pipeline does
                    continue
                values = [fn(v) for v in values] if not hit_last else values
                new_dvs = [hashing.data_version(v) for v in values]
                store.save_many(
                    (Record(k, dv, "floor", fn.__name__, cv, iv, {"item": idv}, time.time()), v)
                    for k, dv, idv, v in zip(keys, new_dvs, dvs, values, strict=True)
                )
                dvs, hit_last = new_dvs, False
            out.extend(store.load(dv) for dv in dvs) if hit_last else out.extend(values)
        store.close()
        return out

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
        lookup(store, [r.key for r, _ in entries[j : j + 512]])
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
            # every rerun is all hits: best of 3, as for the other repeatable cases
            "incgraph_cache_warm": timed(pipeline(store, cache=True, workers=1), items, 3),
        }
        floor_items = items[:FLOOR_ITEMS]  # the floors' rates, on fewer items to stay quick
        for case, repeat in (("store_floor_cold", 1), ("store_floor_warm", 3)):
            s = timed(store_floor(Path(tmp) / "floor"), floor_items, repeat)
            seconds[case] = s * len(items) / len(floor_items)
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
        floor = FLOOR_OF.get(case)
        if floor is not None:
            row["ratio_vs_store_floor"] = round(seconds[floor] / s, 3)
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
    print(
        f"| case ({n} items, 3 trivial tasks) | items/s | vs plain loop | vs futures map "
        "| vs store floor |"
    )
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        floor = row.get("ratio_vs_store_floor")
        print(
            f"| {row['case']} | {row['items_per_s']:,} | {row['ratio_vs_plain_loop']:.3f} | "
            f"{row['ratio_vs_futures_map']:.2f} | {'' if floor is None else f'{floor:.2f}'} |"
        )
    print()
    print(
        f"Store, per item and task: lookup {costs['lookup_us']:.1f} us/key, "
        f"save_many {costs['save_us']:.1f} us/record, load {costs['load_us']:.1f} us/value."
    )


if __name__ == "__main__":
    main()
