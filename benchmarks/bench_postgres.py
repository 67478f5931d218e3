"""PostgreSQL store benchmark: what a shared index costs per node against the SQLite one.

Run::

    python benchmarks/bench_postgres.py [--url postgresql://...] [--nodes 10000] [--repeat 5]

Without ``--url`` it starts a throw-away server of its own (``initdb`` + ``pg_ctl`` on
localhost, as the tests do). Prints one JSON line per measurement (``{"bench": ...,
"incgraph": ..., "peer": ..., "ratio": ...}``, ratio = incgraph / peer) and a markdown
table. Best of ``--repeat`` rounds in which incgraph and its peer alternate, as the
machine may be shared.

Measurements
------------
* ``rerun_per_node_pg_vs_sqlite``: microseconds per node of a fully cached rerun of a
  ``--nodes`` graph (each node adds two upstream results), in a fresh process, with the
  PostgreSQL store against a folder store.
* ``lookup_hit_pg_vs_floor``: microseconds per ``Store.lookup_version`` hit over 2,000 keys
  against the bare psycopg primary-key query it runs, on one connection with the statement
  prepared: the floor any PostgreSQL index pays (one round trip per key).
* ``lookup_hit_pg_vs_sqlite``: the same ``Store.lookup_version`` against the folder store.
* ``lookup_many_per_key_pg_vs_sqlite``: per-key cost of one ``Store.lookup_versions`` of
  10,000 keys (one ``= ANY(array)`` query) against the folder store.
* ``save_many_small_x512_pg_vs_sqlite``: microseconds per small result of
  ``Store.save_many`` of 512 results at a time, 10 chunks, against the folder store.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rows import emit

from incgraph.store import Record, Store, open_store

RERUN = textwrap.dedent(
    """
    import sys, time, json
    from incgraph import ProcessGraph, Processor

    class Add(Processor):
        def process(self, a: int, b: int) -> int:
            return (a + b) % 1000003

    n, store = int(sys.argv[1]), sys.argv[2]
    g = ProcessGraph(store=store)
    nodes = [g.add_constant_node(0, "seed", value=1)]
    for i in range(1, n + 1):
        nodes.append(g.add_node(i, Add, {"a": nodes[i - 1], "b": nodes[i // 2]}))
    t0 = time.perf_counter()
    g.run_upto(nodes[-1])
    t1 = time.perf_counter()
    print(json.dumps({"run": t1 - t0, "hits": len(g.last_run.hits)}))
    """
)


def rerun_seconds(store: str, nodes: int) -> float:
    """Seconds of one cached rerun of the graph on ``store`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", RERUN, str(nodes), store], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    found = json.loads(done.stdout.splitlines()[-1])
    return float(found["run"])


def records(count: int, tag: str) -> list[Record]:
    return [
        Record(f"{tag}{i:028x}", uuid.uuid4().hex, f"n{i % 50}", "m.P", "c", "i", {"a": "x"})
        for i in range(count)
    ]


def bare_lookups(url: str, keys: list[str]) -> Callable[[], None]:
    """The bare primary-key SELECT per key through psycopg, on one connection (prepared)."""
    import psycopg

    from incgraph.store.postgres_database import split_blobs

    conn = psycopg.connect(split_blobs(url)[0], autocommit=True)
    sql = "SELECT data_version FROM results WHERE key = %s"

    def run() -> None:
        for key in keys:
            conn.execute(sql, (key,), prepare=True).fetchone()

    return run


def alternating(runs: dict[str, Callable[[], Any]], count: int, repeat: int) -> dict[str, float]:
    """Microseconds per key of each run, best of ``repeat`` rounds that alternate them."""
    best_of = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best_of[name] = min(best_of[name], (time.perf_counter() - start) / count * 1e6)
    return best_of


def lookups(pg: Store, lite: Store, url: str, repeat: int, rows: list[dict[str, Any]]) -> None:
    saved = records(10_000, "a")
    pg.save_many([(record, 1) for record in saved])
    lite.save_many([(record, 1) for record in saved])
    few = [record.key for record in saved[:2000]]
    keys = [record.key for record in saved]

    def hits(store: Store) -> Callable[[], None]:
        return lambda: [store.lookup_version(key) for key in few]

    one = alternating(
        {"pg": hits(pg), "floor": bare_lookups(url, few), "sqlite": hits(lite)}, 2000, repeat
    )
    emit(rows, "lookup_hit_pg_vs_floor", "us", one["pg"], one["floor"], "psycopg")
    emit(rows, "lookup_hit_pg_vs_sqlite", "us", one["pg"], one["sqlite"], "sqlite")
    many = alternating(
        {"pg": lambda: pg.lookup_versions(keys), "sqlite": lambda: lite.lookup_versions(keys)},
        len(keys),
        repeat,
    )
    emit(rows, "lookup_many_per_key_pg_vs_sqlite", "us", many["pg"], many["sqlite"], "sqlite")


def saves(pg: Store, lite: Store, repeat: int, rows: list[dict[str, Any]]) -> None:
    def save(store: Store) -> float:
        chunks = [records(512, uuid.uuid4().hex[:4]) for _ in range(10)]
        start = time.perf_counter()
        for chunk in chunks:
            store.save_many([(record, i) for i, record in enumerate(chunk)])
        return (time.perf_counter() - start) / 5120 * 1e6

    mine = peer = float("inf")
    for _ in range(repeat):  # alternating, as the machine's load changes
        mine, peer = min(mine, save(pg)), min(peer, save(lite))
    emit(rows, "save_many_small_x512_pg_vs_sqlite", "us", mine, peer, "sqlite")


def reruns(pg_url: str, folder: Path, nodes: int, repeat: int, rows: list[dict[str, Any]]) -> None:
    lite = str(folder / "rerun-store")
    for store in (pg_url, lite):
        rerun_seconds(store, nodes)  # the cold run fills the store
    pg = sqlite = float("inf")
    for _ in range(repeat):  # alternating, as the machine's load changes
        pg = min(pg, rerun_seconds(pg_url, nodes) / nodes * 1e6)
        sqlite = min(sqlite, rerun_seconds(lite, nodes) / nodes * 1e6)
    emit(rows, "rerun_per_node_pg_vs_sqlite", "us", pg, sqlite, "sqlite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start one)")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = None
    if args.url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.postgres_server import PostgresServer

        server = PostgresServer().start()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            base = args.url or server.new_schema_url()  # type: ignore[union-attr]
            pg_url = f"{base}{'&' if '?' in base else '?'}blobs={folder / 'pg-blobs'}"
            open_store(pg_url, create=True).close()
            with open_store(pg_url) as pg, open_store(folder / "lite") as lite:
                lookups(pg, lite, pg_url, args.repeat, rows)
                saves(pg, lite, args.repeat, rows)
            reruns(pg_url, folder, args.nodes, args.repeat, rows)
    finally:
        if server is not None:
            server.stop()
    print("\n| bench | unit | incgraph | peer | ratio |\n|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['bench']} | {row['unit']} | {row['incgraph']} | "
            f"{row['peer']} ({row['peer_name']}) | {row['ratio']} |"
        )


if __name__ == "__main__":
    main()
