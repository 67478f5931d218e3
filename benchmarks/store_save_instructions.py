"""CPU instructions per small result saved by ``Store.save_many``: the store alone, timing-free.

A ForEach over trivial tasks saves one small result per task (a manifest dict of
about 100 pickled bytes, kept inline in SQLite), so the cost of
:meth:`incgraph.store.Store.save_many` per small result is a floor under the
cost of a task. This script measures it without the engine or the flow: a child
process opens a fresh store with :func:`incgraph.store.open_store` and saves N
records with distinct keys and data versions, in ``save_many`` calls of 1,024
(as the flow's write-back buffer does), each value a small dict like a flow
manifest and each record's ``inputs`` three 32-hex data versions.

It runs under valgrind's cachegrind (no cache simulation) for N = 200 and
N = 2,200; ``(I(2200) - I(200)) / 2000`` is what one more result costs (imports,
schema creation and warm-up cancel out). The child runs twice per N: ``build``
only makes the records and values, ``save`` also saves them; the figure
``save_many`` is the difference of the two slopes, the instructions the store
spends per saved result (``build_and_save`` is the ``save`` slope alone, which
also counts building each Record). Time spent waiting on I/O is not counted:
compare two checkouts (``--against``), not a count and a wall time.

The peer is the same measurement on another checkout (the baseline before a
change); the ratio is this checkout's count over the other's. The eight valgrind
runs go two at a time (instruction counts do not depend on what else runs).

Run (about 90 s; needs ``valgrind`` on the PATH)::

    python benchmarks/store_save_instructions.py                          # this checkout
    python benchmarks/store_save_instructions.py --against /tmp/store_base  # and the ratio

``/tmp/store_base`` can be made with ``git worktree add /tmp/store_base <commit>``.

``--wall`` measures wall-clock time instead (no valgrind; about 30 s): the same
N small results saved in ``save_many`` calls of 1,024, for N = 1,000 and
10,000, in a fresh child process per measurement (``PYTHONPATH`` = the
checkout, so an editable install does not win), the checkouts interleaved
round by round; it prints the minimum and the median over the rounds of the
time per result spent in ``save_many`` (commits included, store creation
not), and of the same plus the store's close (its WAL checkpoint copies the
pages written into the database file). Wall time drifts with the machine's load: compare the two
checkouts of one run, not runs::

    python benchmarks/store_save_instructions.py --wall --against /tmp/store_base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cachegrind

SMALL, LARGE = 200, 2200
CHUNK = 1024
MODES = ("build", "save")

# Runs in the measured process: N small results saved into a fresh store, 1,024 per
# save_many call. Keys, data versions and input versions are 32 hex digits, distinct
# per result and the same in every run (no randomness, no clock in the values).
_CHILD = """
import shutil, sys, tempfile
from pathlib import Path
from incgraph.store import open_store
from incgraph.store.protocols import Record

n, chunk, save = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "save"

def hex32(tag, i):
    return f"{tag:02x}{i:030x}"

folder = Path(tempfile.mkdtemp())
store = open_store(folder / "store")
items = []
for i in range(n):
    record = Record(
        hex32(1, i), hex32(2, i), f"Grid.Task[{i}]", "bench.Task", "c" * 32, "d" * 32,
        {"x": hex32(3, i), "y": hex32(4, i), "self": hex32(5, i)}, duration=0.001,
    )
    items.append((record, {"y": ("v", i), "index": i}))
if save:
    for start in range(0, n, chunk):
        store.save_many(items[start : start + chunk])
store.close()
shutil.rmtree(folder)
"""


# Runs in a plain child process (--wall): the same N results, timed around the save_many
# calls only; prints the seconds.
_WALL_CHILD = _CHILD.replace(
    "if save:", "import time\nstarted = time.perf_counter()\nif save:"
).replace(
    "store.close()",
    "took = time.perf_counter() - started\nstore.close()\n"
    "print(took, time.perf_counter() - started)",
)
WALL_SIZES = (1000, 10_000)
WALL_ROUNDS = 7


def instructions(checkout: Path, n: int, mode: str) -> int:
    """Instructions the child executes in ``checkout`` to build (``mode="build"``) or build and
    save (``mode="save"``) ``n`` small results."""
    return cachegrind.instructions(checkout, _CHILD, str(n), str(CHUNK), mode)


def measure(checkouts: list[Path]) -> list[dict[str, float]]:
    """Kilo-instructions per result in each checkout: saved (``save`` minus ``build``) and both.

    The valgrind runs are independent processes, so they run two at a time
    (instruction counts do not depend on what else runs).
    """
    runs = [(c, n, mode) for c in checkouts for mode in MODES for n in (SMALL, LARGE)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip(runs, pool.map(lambda run: instructions(*run), runs), strict=True))
    figures = []
    for checkout in checkouts:
        slope = {
            mode: (counts[checkout, LARGE, mode] - counts[checkout, SMALL, mode])
            / (LARGE - SMALL)
            / 1000
            for mode in MODES
        }
        figures.append(
            {
                "save_many": round(slope["save"] - slope["build"], 2),
                "build_and_save": round(slope["save"], 2),
            }
        )
    return figures


def wall_seconds(checkout: Path, n: int) -> tuple[float, float]:
    """Seconds the child spends in ``save_many`` saving ``n`` small results, run in ``checkout``,
    and the same with the store's close (its WAL checkpoint: the pages written) added."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _WALL_CHILD, str(n), str(CHUNK), "save"],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    took, with_close = out.split()[-2:]
    return float(took), float(with_close)


WallKey = tuple[Path, str, int]  # (checkout, "save_many" or "save_many + close", N)


def measure_wall(checkouts: list[Path]) -> dict[WallKey, list[float]]:
    """Microseconds per result, one per round; checkouts interleaved within each round."""
    times: dict[WallKey, list[float]] = {}
    for _ in range(WALL_ROUNDS):
        for n in WALL_SIZES:
            for checkout in checkouts:
                took, with_close = wall_seconds(checkout, n)
                times.setdefault((checkout, "save_many", n), []).append(took / n * 1e6)
                times.setdefault((checkout, "save_many + close", n), []).append(
                    with_close / n * 1e6
                )
    return times


def main_wall(checkouts: list[Path], against: Path | None) -> None:
    """Print one JSON line per measurement (min and median us per result, ratio of medians)
    and a markdown table."""
    times = measure_wall(checkouts)
    here = checkouts[0]
    other = checkouts[1] if len(checkouts) > 1 else None
    table = [
        "| us per small result | N | this checkout min / median "
        "| other checkout min / median | ratio of medians |",
        "|---|---|---|---|---|",
    ]
    for n in WALL_SIZES:
        for what in ("save_many", "save_many + close"):
            mine = times[here, what, n]
            row: dict[str, object] = {
                "bench": f"store_save_wall.{what.replace(' + ', '_and_')}.n{n}",
                "unit": "us per small result",
                "incgraph": round(statistics.median(mine), 2),
                "incgraph_min": round(min(mine), 2),
                "rounds": WALL_ROUNDS,
            }
            cells = f"{min(mine):.2f} / {statistics.median(mine):.2f}"
            if other is None:
                table.append(f"| {what} | {n:,} | {cells} | | |")
            else:
                theirs = times[other, what, n]
                ratio = round(statistics.median(mine) / statistics.median(theirs), 3)
                row.update(
                    peer=round(statistics.median(theirs), 2),
                    peer_min=round(min(theirs), 2),
                    peer_name=f"checkout {against}",
                    ratio=ratio,
                )
                peer = f"{min(theirs):.2f} / {statistics.median(theirs):.2f}"
                table.append(f"| {what} | {n:,} | {cells} | {peer} | {ratio} |")
            print(json.dumps(row), flush=True)
    print("\n".join(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not instructions")
    args = parser.parse_args()
    if args.wall:
        checkouts = [Path(__file__).resolve().parent.parent]
        if args.against is not None:
            checkouts.append(args.against.resolve())
        main_wall(checkouts, args.against)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind (or your system's package)")
    checkouts = [Path(__file__).resolve().parent.parent]
    if args.against is not None:
        checkouts.append(args.against.resolve())
    here, *others = measure(checkouts)
    other = others[0] if others else None
    table = [
        "| k instructions per result | this checkout | other checkout | ratio |",
        "|---|---|---|---|",
    ]
    for what, figure in here.items():
        row: dict[str, object] = {
            "bench": f"store_save_instructions.{what}",
            "unit": "kilo-instructions per small result",
            "incgraph": figure,
        }
        if other is not None:
            ratio = round(figure / other[what], 3)
            row.update(peer=other[what], peer_name=f"checkout {args.against}", ratio=ratio)
            table.append(f"| {what} | {figure} | {other[what]} | {ratio} |")
        else:
            table.append(f"| {what} | {figure} | | |")
        print(json.dumps(row), flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
