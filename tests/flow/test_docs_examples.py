"""docs/flow.md: every python block runs as a script and prints the text block below it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "flow.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\n(?:\n```text\n(.*?)^```)?", re.S | re.M)


def blocks() -> list[tuple[str, str | None]]:
    text = DOC.read_text(encoding="utf-8")
    return [(code, out or None) for code, out in BLOCK.findall(text)]


def test_page_has_examples() -> None:
    """The page has python blocks, most of them followed by their expected output."""
    found = blocks()
    assert len(found) >= 8
    assert sum(out is not None for _, out in found) >= 8


@pytest.mark.parametrize("number", range(len(blocks())))
def test_doc_block_prints_what_the_page_says(
    number: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each python block runs as a script on a fresh default store and prints its text block.

    The block is written to a file and compiled under that name, so code versions
    come from its source, as for a script; the default store ($INCGRAPH_STORE) is
    a fresh temporary folder for each test.
    """
    code, expected = blocks()[number]
    script = tmp_path / f"flow_doc_block_{number}.py"
    script.write_text(code, encoding="utf-8")
    exec(compile(code, str(script), "exec"), {"__name__": f"flow_doc_block_{number}"})
    out = capsys.readouterr().out
    if expected is not None:
        assert out == expected
