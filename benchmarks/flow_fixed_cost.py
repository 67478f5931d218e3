"""The fixed cost of one flow run: ``bench_flow``'s flow with N = 1 task, on a fresh store and not.

A ForEach's per-task figure on its first run (``bench_flow.py``) includes what
one run of the flow costs whatever its size: creating the store, the engine
runs of the flow's waves (each with its run log row and its leases), and the
close that checkpoints SQLite's WAL into the file. This script measures that
cost alone, as the time of a run with one task:

* ``fresh``    - each run opens a store folder that does not exist yet;
* ``existing`` - each run reopens one store that holds the results (all hits);
* ``new_process`` - the first run of a new Python process, on a fresh store,
  after ``import bench_flow`` (so incgraph is imported, the flow defined):
  what a script pays once, beyond the in-process ``fresh`` figure. One
  process per measurement, ``--processes`` of them per checkout.

Each checkout (this one, and with ``--against`` another, e.g. a ``git worktree``
of the previous commit) runs in its own long-lived child process. The
children take turns, round after round, so a machine that slows down for a
while slows both alike; a round is the mean of ``--runs`` runs, and the figure
kept is the best round of ``--rounds`` (the median is printed too). Wall time on
a shared VM drifts; counts do not: ``--syscalls`` also counts, under ``strace -f
-c``, the system calls and fsyncs of one fresh-store run. ``--dir /dev/shm``
puts the stores on tmpfs, where an fsync costs nothing: what is left is the
CPU part of the cost.

Prints one JSON line per measurement (``ratio`` = this checkout / ``--against``),
then a markdown table.

Run (about a minute; ``--syscalls`` needs ``strace``)::

    git worktree add /tmp/fixed_base HEAD      # before changing anything
    python benchmarks/flow_fixed_cost.py --against /tmp/fixed_base --syscalls
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent

# The child: imports the checkout's incgraph and bench_flow, then answers
# "<phase> <runs>" lines on stdin with the mean seconds per run on stdout.
_CHILD = """
import gc, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import bench_flow
folder = Path(tempfile.mkdtemp(dir=sys.argv[2] or None))
bench_flow.run_flow(folder / "existing", 1)  # pays the imports; "existing" reuses the store
count = 0
for line in sys.stdin:
    phase, runs = line.split()
    stores = []
    for _ in range(int(runs)):
        count += 1
        stores.append(folder / f"fresh{count}" if phase == "fresh" else folder / "existing")
    gc.collect()
    start = time.perf_counter()
    for store in stores:
        bench_flow.run_flow(store, 1)
    seconds = (time.perf_counter() - start) / len(stores)
    for store in stores:
        if store.name != "existing":
            shutil.rmtree(store, ignore_errors=True)
    print(seconds, flush=True)
shutil.rmtree(folder, ignore_errors=True)
"""

# Under strace: a warm-up run, then ``runs`` fresh-store runs.
_STRACED = """
import shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import bench_flow
folder = Path(tempfile.mkdtemp())
bench_flow.run_flow(folder / "warm", 1)
for i in range(int(sys.argv[2])):
    bench_flow.run_flow(folder / f"fresh{i}", 1)
shutil.rmtree(folder)
"""

# A new process: import bench_flow, then time its first run on a fresh store.
_NEW_PROCESS = """
import shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import bench_flow
folder = Path(tempfile.mkdtemp(dir=sys.argv[2] or None))
start = time.perf_counter()
bench_flow.run_flow(folder / "fresh", 1)
print(time.perf_counter() - start)
shutil.rmtree(folder)
"""

PHASES = ("fresh", "existing")


def _env(checkout: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


class Child:
    """One checkout's long-lived measuring process."""

    def __init__(self, checkout: Path, folder: str) -> None:
        self.checkout = checkout
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(checkout), folder],
            env=_env(checkout),
            cwd=checkout,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def measure(self, phase: str, runs: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{phase} {runs}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the child measuring {self.checkout} exited")
        return float(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def interleaved(
    checkouts: list[Path], rounds: int, runs: int, folder: str
) -> dict[tuple[str, str], list]:
    """(checkout label, phase) -> the per-round mean seconds per run."""
    children = {str(c): Child(c, folder) for c in checkouts}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(rounds):
            order = list(children.items())
            if r % 2:  # alternate who goes first
                order.reverse()
            for phase in PHASES:
                for label, child in order:
                    times.setdefault((label, phase), []).append(child.measure(phase, runs))
    finally:
        for child in children.values():
            child.close()
    return times


def new_processes(checkouts: list[Path], processes: int, folder: str) -> dict[str, list[float]]:
    """Checkout label -> seconds of the first fresh-store run in each of ``processes`` processes."""
    times: dict[str, list[float]] = {str(c): [] for c in checkouts}
    for p in range(processes):
        for checkout in checkouts if p % 2 == 0 else checkouts[::-1]:
            out = subprocess.run(
                [sys.executable, "-c", _NEW_PROCESS, str(checkout), folder],
                env=_env(checkout),
                cwd=checkout,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            times[str(checkout)].append(float(out))
    return times


def syscalls(checkout: Path, runs: int) -> dict[str, float]:
    """System calls and fsyncs per fresh-store run, counted by ``strace -f -c``."""

    def counted(n: int) -> dict[str, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "strace.txt"
            command = ["strace", "-f", "-c", "-o", str(out), sys.executable, "-c", _STRACED]
            subprocess.run(
                [*command, str(checkout), str(n)],
                env=_env(checkout),
                cwd=checkout,
                check=True,
                capture_output=True,
            )
            counts: dict[str, int] = {}
            for line in out.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 5 and re.fullmatch(r"\d+", fields[3]):
                    counts[fields[-1]] = int(fields[3])
            return counts

    base, many = counted(0), counted(runs)

    def per_run(*names: str) -> float:
        return sum(many.get(n, 0) - base.get(n, 0) for n in names) / runs

    return {
        "syscalls": per_run("total"),
        "fsyncs": per_run("fsync", "fdatasync"),
        "thread_starts": per_run("clone", "clone3"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=9, help="rounds; the best is kept")
    parser.add_argument("--runs", type=int, default=20, help="flow runs per round")
    parser.add_argument("--processes", type=int, default=5, help="new processes per checkout")
    parser.add_argument("--syscalls", action="store_true", help="also count syscalls (strace)")
    parser.add_argument(
        "--dir",
        default="",
        help="where the stores go (default: the temp folder); /dev/shm: no fsync",
    )
    args = parser.parse_args()
    this = HERE
    checkouts = [this] if args.against is None else [this, args.against.resolve()]
    times = interleaved(checkouts, args.rounds, args.runs, args.dir)
    for label, seconds in new_processes(checkouts, args.processes, args.dir).items():
        times[(label, "new_process")] = seconds
    rows: list[dict[str, Any]] = []
    for phase in (*PHASES, "new_process"):
        mine = times[(str(this), phase)]
        row: dict[str, Any] = {
            "bench": "flow_fixed_cost",
            "phase": phase,
            "n": 1,
            "dir": args.dir or tempfile.gettempdir(),
            "ms": round(min(mine) * 1e3, 3),
            "median_ms": round(statistics.median(mine) * 1e3, 3),
        }
        if args.against is not None:
            theirs = times[(str(checkouts[1]), phase)]
            row["against_ms"] = round(min(theirs) * 1e3, 3)
            row["against_median_ms"] = round(statistics.median(theirs) * 1e3, 3)
            row["ratio"] = round(min(mine) / min(theirs), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    counts = {}
    if args.syscalls and shutil.which("strace"):
        for checkout in checkouts:
            counts[checkout] = syscalls(checkout, 20)
            line = {
                "bench": "flow_fixed_cost_syscalls",
                "phase": "fresh",
                "checkout": str(checkout),
            }
            print(json.dumps({**line, **counts[checkout]}), flush=True)
    _table(rows, counts, checkouts, args)


def _table(
    rows: list[dict[str, Any]],
    counts: dict[Path, dict[str, float]],
    checkouts: list[Path],
    args: argparse.Namespace,
) -> None:
    print()
    what = (
        f"best of {args.rounds} rounds of {args.runs} runs (median); "
        f"new_process: best of {args.processes} processes (median)"
    )
    if args.against is None:
        print(f"| flow run, N = 1 | ms per run, {what} |")
        print("|---|---:|")
        for r in rows:
            print(f"| {r['phase']} | {r['ms']:.2f} ({r['median_ms']:.2f}) |")
    else:
        print(f"| flow run, N = 1 | this checkout, ms | `{args.against}`, ms | ratio |")
        print("|---|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['phase']} | {r['ms']:.2f} ({r['median_ms']:.2f}) "
                f"| {r['against_ms']:.2f} ({r['against_median_ms']:.2f}) | {r['ratio']:.2f} |"
            )
        print(f"\n(ms per run: {what})")
    if counts:
        print("\n| per fresh-store run | " + " | ".join(f"`{c}`" for c in checkouts) + " |")
        print("|---|" + "---:|" * len(checkouts))
        for name in ("syscalls", "fsyncs", "thread_starts"):
            print(f"| {name} | " + " | ".join(f"{counts[c][name]:.1f}" for c in checkouts) + " |")


if __name__ == "__main__":
    main()
