"""Counting a child Python process's CPU instructions under valgrind's cachegrind.

Shared by ``flow_instructions.py`` and ``store_save_instructions.py`` (run as scripts,
this folder is on ``sys.path``). Instruction counts do not drift with the machine's
load, so they compare two checkouts where wall-clock timings cannot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def instructions(checkout: Path, child: str, *args: str) -> int:
    """Instructions ``python -c child *args`` executes with ``checkout`` first on its path.

    The same hash seed every time, and no BLAS threads spinning (numpy may be imported
    by the store's migrations): valgrind counts every thread's instructions.
    """
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            child,
            *args,
        ],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))
