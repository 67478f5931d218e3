"""Per-task CPU instructions of a ForEach's first run: a timing-free measure for noisy machines.

The VMs these benchmarks run on change speed by up to 1.5x within minutes, which
hides any change of less than ~20% in wall-clock figures. Instructions executed
do not drift: this script runs the first run of ``bench_flow``'s flow under
valgrind's cachegrind (no cache simulation) for N = 200 and N = 2,200 tasks and
reports ``(I(2200) - I(200)) / 2000``, the instructions one more task costs. The
session writer's time-based and prompt writes are switched off (through the
settings, or the module constants of older checkouts), so the same work is
measured however slow valgrind makes the process. I/O time (SQLite's writes)
is not in the count, so compare like with like: two checkouts (``--against``),
not a count and a wall time.

Run (about a minute; needs ``valgrind`` on the PATH)::

    python benchmarks/flow_instructions.py                      # this checkout
    python benchmarks/flow_instructions.py --against ../old    # and another, with the ratio

``../old`` can be made with ``git worktree add ../old <commit>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cachegrind

SMALL, LARGE = 200, 2200

# Runs in the measured process: the first run of bench_flow's flow on a fresh store
# (after a warm-up run that pays the imports), with the time-based flushes off.
_CHILD = """
import shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import bench_flow
import importlib
never = float("inf")
# checkouts from before the settings object keep the flush policy in module constants
for name, constants in (
    ("incgraph.store.writer", ("MAX_DELAY", "PROMPT_SECONDS")),
    ("incgraph.flow.writeback", ("MAX_DELAY",)),
    ("incgraph.run.engine", ("PROMPT_WRITE_SECONDS",)),
):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    for constant in constants:
        if hasattr(module, constant):
            setattr(module, constant, never)
try:
    from incgraph.settings import DEFAULT_SETTINGS
except ImportError:
    def where(path):
        return path
else:
    from incgraph import open_store
    slow = DEFAULT_SETTINGS.replace(prompt_write_seconds=never, writer_max_delay_seconds=never)
    def where(path):
        return open_store(path, settings=slow)
folder = Path(tempfile.mkdtemp())
bench_flow.run_flow(where(folder / "warm"), 10)
bench_flow.run_flow(where(folder / "store"), int(sys.argv[1]))
shutil.rmtree(folder)
"""


def instructions(checkout: Path, n: int) -> int:
    """Instructions the child process executes for a first run of ``n`` tasks."""
    return cachegrind.instructions(checkout, _CHILD, str(n), str(checkout / "benchmarks"))


def per_task(checkout: Path) -> float:
    """Instructions per additional task, in thousands."""
    small, large = instructions(checkout, SMALL), instructions(checkout, LARGE)
    return (large - small) / (LARGE - SMALL) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind (or your system's package)")
    here = round(per_task(Path(__file__).resolve().parent.parent), 1)
    line: dict[str, object] = {"bench": "flow_instructions", "kilo_instructions_per_task": here}
    if args.against is not None:
        other = round(per_task(args.against.resolve()), 1)
        line.update(against=str(args.against), against_kilo_instructions_per_task=other)
        line["ratio"] = round(here / other, 3)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
