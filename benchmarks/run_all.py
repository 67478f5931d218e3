"""Run every benchmark, one after another, each printing JSON lines and a markdown table.

    python benchmarks/run_all.py            # everything (about 6 minutes on 2 cores)
    python benchmarks/run_all.py engine store

The figures go into docs/benchmarks.md (summary) and docs/benchmarks/*.md (details).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ALL = [
    "engine",
    "rerun",
    "import",
    "hashing",
    "paths",
    "store",
    "batch",
    "executors",
    "flow",
    "queues",
    "inbatch",
]


def main(names: list[str]) -> int:
    failed = []
    for name in names or ALL:
        script = HERE / f"bench_{name}.py"
        print(f"\n### {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
