"""docs/cli.md cannot go stale: its example script is run as the page says, and each read-only
command's output block is what the command prints today (times and paths aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"
# commands whose output depends only on the three runs the page describes
CHECKED = ("ls", "show", "lineage", "explain", "render", "runs", "stats")
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "TIME"),
    (re.compile(r"\d+ (?:s|min|h|d) ago"), "AGO"),
    (re.compile(r"\b\d+ ms\b"), "MS"),
    (re.compile(r"/\S*?\.incgraph"), "STORE"),
    (re.compile(r"(?m)^(index\s+)[\d.]+ [KMG]?B"), r"\1SIZE"),
    (re.compile(r"[ \t]+"), " "),
]


def normalized(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def examples() -> list[tuple[str, str]]:
    """(command, output shown) for each checked ``$ incgraph ...`` block of the page.

    JSON examples are left out: the page shortens them.
    """
    found = []
    for block in re.findall(r"^```\n(\$ incgraph .*?)^```", PAGE.read_text("utf-8"), re.M | re.S):
        command, _, shown = block.partition("\n")
        words = command.split()
        if words[2] in CHECKED and not {"|", "--output", "--json"} & set(words):
            found.append((command[2:], shown))
    return found


def cli(args: list[str], cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INCGRAPH_STORE": str(store), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pipeline.py from the page, run three times as the page says."""
    folder = tmp_path_factory.mktemp("cli-page")
    script = re.search(r"```python\n(.*?)^```", PAGE.read_text("utf-8"), re.M | re.S)
    assert script is not None
    (folder / "pipeline.py").write_text(script.group(1), encoding="utf-8")
    for extra in ([], ["5000"], []):
        done = cli(["pipeline.py", *extra], folder, folder / ".incgraph")
        assert done.returncode == 0, done.stderr
    return folder


def test_the_page_shows_the_read_only_commands() -> None:
    """Each read-only command has at least one example on the page."""
    shown = {command.split()[1] for command, _ in examples()}
    assert shown == set(CHECKED)


@pytest.mark.parametrize("number", range(len(examples())))
def test_a_command_prints_what_the_page_shows(project: Path, number: int) -> None:
    """The command, run on the page's store, prints the page's block (times and paths aside)."""
    command, shown = examples()[number]
    args = ["-m", "incgraph.cli", *command.split()[1:]]
    done = cli(args, project, project / ".incgraph")
    assert done.returncode == 0, done.stderr
    assert normalized(done.stdout) == normalized(shown)
