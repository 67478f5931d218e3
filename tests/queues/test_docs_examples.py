"""docs/queues.md: every python block runs as a script and prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "queues.md"

PROMISED = {
    "meow": [
        "['meow (data of cat1)', 'meow (data of cat2)', 'woof (data of dog1)']",
        "9 0",
    ],
    'name="inverse"': ["[1.0, 0.25]", "inverse 1 0 ZeroDivisionError('division by zero')"],
    "def square": [
        "[1, 4, 9] computed: 3 cached: 0",
        "[1, 4, 9] computed: 0 cached: 3",
        "[1, 4, 9, 16] computed: 1 cached: 3",
    ],
    "run_upto": ["['queue:numbers', 'double'] True", "42", "1"],
    "def numbers": ["333283335000 10000"],
    "def run_once": ["True", "40"],
}


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


def test_every_promise_names_a_block() -> None:
    """Each promised output belongs to exactly one block of the page."""
    for marker in PROMISED:
        assert sum(marker in b for b in _python_blocks()) == 1, marker


@pytest.mark.timeout(90)
@pytest.mark.parametrize("number", range(len(_python_blocks())))
def test_doc_block_runs_and_prints_what_the_page_says(number: int, tmp_path: Path) -> None:
    """Each python block runs as a script; blocks with promised output print exactly that first."""
    block = _python_blocks()[number]
    script = tmp_path / f"block_{number}.py"
    script.write_text(block, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for marker, lines in PROMISED.items():
        if marker in block:
            assert done.stdout.splitlines()[: len(lines)] == lines
