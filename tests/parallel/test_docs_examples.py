"""docs/parallel.md and examples/inbatch.py: every example runs and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "parallel.md"
EXAMPLE = ROOT / "examples" / "inbatch.py"

pytest.importorskip("numba")  # the nogil examples use it


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


def _promised_outputs(block: str) -> list[str]:
    """The literal outputs promised in ``print(...)  # output`` comments."""
    promised = re.findall(r"^\s*print\(.*\)\s+#\s*(.+)$", block, re.M)
    return [text.strip() for text in promised if "..." not in text]


def _run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_doc_has_examples_for_every_target() -> None:
    """The docs page shows each target in a runnable block."""
    blocks = "\n".join(_python_blocks())
    for target in ("async", "nogil", "mpc"):
        assert f'target="{target}"' in blocks
    assert "@njit(nogil=True)" in blocks


@pytest.mark.parametrize("number", range(len(_python_blocks())))
def test_doc_block_runs_and_prints_promised_output(number: int, tmp_path: Path) -> None:
    """Each python block of docs/parallel.md runs as a script and prints what its comments say."""
    block = _python_blocks()[number]
    script = tmp_path / f"block_{number}.py"
    script.write_text(block, encoding="utf-8")
    done = _run(script)
    assert done.returncode == 0, done.stderr
    for promised in _promised_outputs(block):
        assert promised in done.stdout, f"block {number} should print {promised!r}"


def test_example_script_runs() -> None:
    """examples/inbatch.py runs every target end to end."""
    done = _run(EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert "12 images processed" in done.stdout
    assert "label=bright" in done.stdout and "label=dark" in done.stdout
