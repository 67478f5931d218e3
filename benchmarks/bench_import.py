"""Start-up: `import incgraph` against `import joblib`, and `incgraph ls` on a small store.

Run::

    python benchmarks/bench_import.py            # best of 15 fresh processes each

Prints one JSON line per measurement (``ratio`` = incgraph / peer), then a markdown
table. Each import is timed by ``python -X importtime`` in a fresh interpreter (the
cumulative microseconds of the top-level import, so interpreter start-up is not
counted): ``import`` is ``import incgraph`` alone (names load on first use),
``import_engine`` is ``import incgraph.graph`` (what ``from incgraph import
ProcessGraph`` loads: the engine, the store and hashing). The processes of
incgraph and of the peer are interleaved, and the best of ``--repeat`` is kept,
because the machine may be shared. ``ls`` is the wall time of
``python -m incgraph.cli --store S ls`` on a store of two results, against
``python -c pass`` (the interpreter's own start-up) in the same run.

Bytecode must be cached for the figures to mean anything: the script imports
everything once before timing (``PYTHONDONTWRITEBYTECODE`` is unset for the children).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rows import emit

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

GRAPH = """
from incgraph import ProcessGraph, Processor
class Add(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b
graph = ProcessGraph(store={store!r})
graph.run_upto(graph.add_node(2, Add, {{"a": graph.add_node(1, Add, {{"a": 1, "b": 2}}), "b": 3}}))
"""


def import_us(module: str) -> float:
    """Cumulative microseconds of ``import module`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    last = [line for line in done.stderr.splitlines() if line.rstrip().endswith(f"| {module}")]
    return float(last[-1].split("|")[1])


def wall_s(*args: str) -> float:
    """Wall seconds of a fresh ``python *args`` process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        subprocess.run([sys.executable, "-c", GRAPH.format(store=store)], check=True, env=ENV)
        ls = ("-m", "incgraph.cli", "--store", store, "ls")
        wall_s(*ls)  # compiles and caches the bytecode of what `ls` imports
        best = dict.fromkeys(("incgraph", "engine", "joblib", "ls", "pass"), float("inf"))
        for _ in range(repeat):
            best["incgraph"] = min(best["incgraph"], import_us("incgraph"))
            best["engine"] = min(best["engine"], import_us("incgraph.graph"))
            best["joblib"] = min(best["joblib"], import_us("joblib"))
            best["ls"] = min(best["ls"], wall_s(*ls))
            best["pass"] = min(best["pass"], wall_s("-c", "pass"))
    emit(rows, "import", "ms", best["incgraph"] / 1e3, best["joblib"] / 1e3, "import joblib")
    emit(rows, "import_engine", "ms", best["engine"] / 1e3, best["joblib"] / 1e3, "import joblib")
    emit(rows, "ls_small_store", "s", best["ls"], best["pass"], "python -c pass")
    print()
    print("| measurement | unit | incgraph | peer | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['bench']} | {row['unit']} | {row['incgraph']} | "
            f"{row['peer']} ({row['peer_name']}) | {row['ratio']} |"
        )


if __name__ == "__main__":
    main()
