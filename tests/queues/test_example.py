"""examples/pipeline.py runs, and its second run, in a new process, computes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "pipeline.py"


@pytest.mark.timeout(60)
def test_example_pipeline_second_process_computes_nothing(tmp_path: Path) -> None:
    """The file pipeline prints its results, then a second process reports computed=0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=55,
    )
    out = done.stdout
    assert "first run: computed=75 cached=0 failures=0" in out
    assert "second run (new process): computed=0 cached=75 failures=0" in out
    assert "img24.ppm: 2x2 image" in out and "doc00.txt: 3 words" in out
    assert '{{"split: image_or_doc"}}' in out
