"""Every python block of README.md and docs/ runs, in page order, and prints what the page shows.

A page's python blocks run one after the other in one fresh interpreter (later
blocks may use what earlier ones defined, as a reader would type them), in a
temporary folder with a fresh default store. Each block is written to its own
file first, so processors get code versions from their source, as in a script.
A block followed directly by a ```` ```text ```` block must print exactly that
text; a block written as a ``>>>`` session is checked as a doctest.
``docs/flow.md``, ``docs/parallel.md`` and ``docs/queues.md`` have their own tests
(``tests/flow``, ``tests/parallel``, ``tests/queues``), which run each block alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN_TESTS = {"flow.md", "parallel.md", "queues.md"}
BLOCK = re.compile(r"^```python\n(.*?)^```\n(?:\n```text\n(.*?)^```)?", re.S | re.M)

RUNNER = r"""
import contextlib, doctest, io, json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
failed = False
for i, (path, code, expected) in enumerate(blocks):
    out = io.StringIO()
    sys.argv = [path]  # as `python block.py`
    try:
        if code.lstrip().startswith(">>>"):  # a session: its outputs are checked by doctest
            test = doctest.DocTestParser().get_doctest(code, namespace, path, path, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            runner.run(test, out=out.write, clear_globs=False)
            if runner.failures:
                raise AssertionError(out.getvalue())
            continue
        with contextlib.redirect_stdout(out):
            exec(compile(code, path, "exec"), namespace)
    except BaseException as exc:
        print(f"block {i + 1} ({path}) raised {type(exc).__name__}: {exc}")
        failed = True
        continue
    if expected is not None and out.getvalue() != expected:
        print(f"block {i + 1} ({path}) printed:\n{out.getvalue()}\nthe page shows:\n{expected}")
        failed = True
sys.exit(1 if failed else 0)
"""


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [p for p in found if p.name not in OWN_TESTS and BLOCK.search(p.read_text("utf-8"))]


def test_the_pages_have_blocks() -> None:
    """The pages this test runs hold python blocks (a broken pattern would test nothing)."""
    assert len(pages()) >= 6
    assert sum(len(BLOCK.findall(p.read_text("utf-8"))) for p in pages()) >= 15


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_python_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    """The page's python blocks run in order in one interpreter and print what the page shows."""
    blocks = []
    for number, (code, expected) in enumerate(BLOCK.findall(page.read_text("utf-8")), 1):
        path = tmp_path / f"{page.stem}_block_{number}.py"
        path.write_text(code, encoding="utf-8")
        blocks.append((str(path), code, expected or None))
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    env = {
        **os.environ,
        "INCGRAPH_STORE": str(tmp_path / "store"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
