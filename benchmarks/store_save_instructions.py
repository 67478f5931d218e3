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
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
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
