"""docs/cli.md cannot go stale: its example script is run as the page says, and each read-only
command's output block is what the command prints today (times and paths aside).

When a change alters what the commands print (or the cache keys, which follow the code
versions), regenerate the page's blocks and review the diff::

    python tests/cli/test_cli_docs.py --write
"""

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
    (re.compile(r"\d+ (?:s|min|h|d) ago|just now"), "AGO"),
    (re.compile(r"\b(?:\d+ ms|\d+\.\d s|\d+m\d\ds)\b"), "TOOK"),
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
    """Run ``python ARGS`` in ``cwd`` with ``store`` as the default store and this checkout."""
    env = {**os.environ, "INCGRAPH_STORE": str(store), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def make_project(folder: Path) -> Path:
    """pipeline.py from the page in ``folder``, run three times as the page says."""
    script = re.search(r"```python\n(.*?)^```", PAGE.read_text("utf-8"), re.M | re.S)
    assert script is not None
    (folder / "pipeline.py").write_text(script.group(1), encoding="utf-8")
    for extra in ([], ["5000"], []):
        done = cli(["pipeline.py", *extra], folder, folder / ".incgraph")
        assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's project, made once for the module."""
    return make_project(tmp_path_factory.mktemp("cli-page"))


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


def write_page(folder: Path) -> None:
    """Regenerate the page: keys renamed to today's, checked blocks replaced by real output."""
    text = PAGE.read_text("utf-8")
    project = make_project(folder)
    listed = cli(["-m", "incgraph.cli", "ls"], project, project / ".incgraph").stdout
    new_keys = re.findall(r"^([0-9a-f]{12})\s", listed, re.M)
    old_ls = re.search(r"^\$ incgraph ls\n(.*?)^```", text, re.M | re.S)
    assert old_ls is not None
    old_keys = re.findall(r"^([0-9a-f]{12})\s", old_ls.group(1), re.M)
    renamed = dict(zip(old_keys, new_keys, strict=True))
    for old, new in renamed.items():
        text = text.replace(old, new)
        text = re.sub(rf"(\$ incgraph \w+ ){old[:4]}\b", rf"\g<1>{new[:4]}", text)
    PAGE.write_text(text, encoding="utf-8")
    for command, shown in examples():
        args = ["-m", "incgraph.cli", *command.split()[1:]]
        out = cli(args, project, project / ".incgraph").stdout
        out = re.sub(r"/\S*?\.incgraph", "/tmp/doc/.incgraph", out)
        text = text.replace(f"$ {command}\n{shown}", f"$ {command}\n{out}", 1)
    PAGE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/cli/test_cli_docs.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        write_page(Path(tmp))
