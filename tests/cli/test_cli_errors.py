"""The command as a finished tool: version, help, and one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import incgraph
from incgraph.cli import main


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(incgraph.__file__).parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "incgraph.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`incgraph --version` prints the installed version and exits 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"incgraph {incgraph.__version__}"


def test_top_help_shows_the_global_options(capsys: pytest.CaptureFixture[str]) -> None:
    """The top-level help lists --store, --json and --version next to the commands."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--store PATH", "--json", "--version", "explain", "ls"):
        assert option in out, option


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "import sys\nitems = [int(a) for a in sys.argv[1:]]\nraise ValueError('bad input')\n",
            "(line 3) failed: ValueError: bad input",
        ),
        ("import a_module_that_does_not_exist_anywhere\n", "ModuleNotFoundError"),
        ("import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n", "SystemExit"),
        ("def broken(:\n", "is not a Python file this Python can read"),
    ],
)
def test_explain_on_a_failing_script_is_one_line(
    tmp_path: Path, source: str, expected: str
) -> None:
    """`explain` on a script whose module-level code fails exits 2 with one line, no traceback."""
    (tmp_path / "script.py").write_text(source)
    done = _run("explain", "script.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3  # argparse may print its own usage first


def test_explain_sees_the_script_run_without_arguments(tmp_path: Path) -> None:
    """The script's module-level code sees sys.argv as when it is run with no arguments."""
    (tmp_path / "script.py").write_text(
        "import sys\n"
        "from incgraph import ProcessGraph, Processor\n"
        "assert sys.argv[1:] == [], sys.argv\n"
        "class Inc(Processor):\n"
        "    def process(self, x: int) -> int:\n"
        "        return x + 1\n"
        "graph = ProcessGraph(store=':memory:')\n"
        "node = graph.add_node(1, Inc, {'x': 1})\n"
    )
    done = _run("explain", "script.py", "--target", "node", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 to compute" in done.stdout


def test_user_mistakes_exit_nonzero_without_traceback(tmp_path: Path) -> None:
    """A missing store, a missing file and a file without a graph each give one error line."""
    (tmp_path / "nograph.py").write_text("x = 1\n")
    for args in (
        ("ls",),
        ("--store", "nowhere", "show", "abc"),
        ("explain", "missing.py"),
        ("explain", "nograph.py"),
        ("render", "nograph.py"),
    ):
        done = _run(*args, cwd=tmp_path)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr, args
        assert done.stderr.count("\n") == 1, (args, done.stderr)


def test_a_graph_error_in_the_file_is_one_line(tmp_path: Path) -> None:
    """An incgraph error raised while planning the file's graph is reported, not raised."""
    (tmp_path / "script.py").write_text(
        "from incgraph import ProcessGraph\n"
        "graph = ProcessGraph(store=':memory:')\n"
        "node = graph.add_constant_node(1, 'size')\n"
    )
    done = _run("explain", "script.py", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("incgraph explain: error: constant node 1 (size) has no value")


def test_explain_on_a_flow_script_does_not_run_the_flow(tmp_path: Path) -> None:
    """A script that runs a flow at module level is loaded without running it, and told apart."""
    (tmp_path / "script.py").write_text(
        "from incgraph.flow import Flow, Layer\n"
        "class Exp(Flow): ...\n"
        "@Exp.register\n"
        "class Data(Layer):\n"
        "    def __call__(self) -> None:\n"
        "        self.x = 1\n"
        "if flow := Exp(store='flow-store'):\n"
        "    flow()\n"
    )
    done = _run("explain", "script.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "script.py defines a flow (Exp), not a ProcessGraph; the flow was not run" in done.stderr
    assert "--node 'Exp/*'" in done.stderr
    assert not (tmp_path / "flow-store").exists()


def test_python_dash_m_incgraph_is_the_command(tmp_path: Path) -> None:
    """`python -m incgraph --version` runs the same command as `incgraph --version`."""
    env = {**os.environ, "PYTHONPATH": str(Path(incgraph.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "incgraph", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"incgraph {incgraph.__version__}"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("missing", "the folder does not exist"),
        ("notes.txt", "it is a file, not a folder"),
        ("empty", "no index.sqlite in it"),
        ("store/index.sqlite", "it is the store's index file; give the folder holding it"),
    ],
)
def test_a_path_that_is_no_store_says_why(
    tmp_path: Path, given: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--store naming a missing path, a file, an empty folder or the index itself says which."""
    from incgraph.store import open_store

    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    open_store(tmp_path / "store").close()
    assert main(["ls", "--store", str(tmp_path / given)]) == 2
    err = capsys.readouterr().err
    assert reason in err
    assert "Traceback" not in err
    assert not (tmp_path / "missing").exists()


def test_explain_on_a_pipeline_script_names_the_pipeline(tmp_path: Path) -> None:
    """A script that defines a queue pipeline is told apart from one with no graph at all."""
    (tmp_path / "script.py").write_text(
        "import incgraph.queues as iq\n"
        "p = iq.Pipeline(store=':memory:')\n"
        "out = p.map(iq.task(lambda x: x + 1), iq.Queue([1, 2]))\n"
        "if __name__ == '__main__':\n"
        "    p.run()\n"
    )
    done = _run("explain", "script.py", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "script.py defines a queue pipeline (p), not a ProcessGraph" in done.stderr
    assert "p.draw()" in done.stderr
