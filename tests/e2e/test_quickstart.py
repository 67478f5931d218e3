"""The README's demo gives the seed's numbers and computes nothing on a rerun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_twice(tmp_path: Path) -> None:
    """First run: 600, 501, then 600 as a pure hit; second process: nothing computes at all."""

    def run() -> list[str]:
        out = subprocess.run(
            [sys.executable, str(SCRIPT), str(tmp_path / "store")],
            capture_output=True,
            text=True,
            check=True,
        )
        return [line for line in out.stdout.splitlines() if line.startswith("run_upto")]

    first = run()
    assert [line.split("->")[1].split()[0] for line in first] == ["600", "501", "600", "360000"]
    assert "computed: nothing; cache hits: 2" in first[2]
    assert "computed: node 3 (SlowSquare)" in first[3]
    second = run()
    assert all("computed: nothing" in line for line in second)
