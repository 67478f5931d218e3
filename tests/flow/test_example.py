"""examples/grid_search.py: a real grid search whose second run is fully cached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grid_search.py"


@pytest.mark.slow
def test_grid_search_second_run_is_cached(tmp_path: Path) -> None:
    """The first run trains 9 models and prints the best; the second computes nothing."""
    pytest.importorskip("sklearn")
    store = str(tmp_path / "store")

    def run() -> str:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), store], capture_output=True, text=True, check=True
        )
        return done.stdout

    first = run()
    assert "best of 9 models: SVC(" in first
    assert "12 nodes computed, 0 cached" in first
    second = run()
    assert "0 nodes computed, 12 cached" in second
    assert "everything was cached" in second
    best = next(line for line in first.splitlines() if line.startswith("best of"))
    assert f"{best} (cached)" in second
