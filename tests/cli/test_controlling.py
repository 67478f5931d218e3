"""``incgraph invalidate`` and ``incgraph accept``, and gc's summary output, on real stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import incgraph
from incgraph.cli import main
from incgraph.store import Record, open_store

PROCS = """
from incgraph import Processor

class Double(Processor):
    def process(self, x: int) -> int:
        return 2 * x

class Square(Processor):
    def process(self, y: int) -> int:
        return {body}
"""

SCRIPT = """
import sys
from incgraph import ProcessGraph
from procs import Double, Square

g = ProcessGraph(store=sys.argv[1])
out = []
for i in range(3):
    d = g.add_node(f"d{i}", Double, {"x": i})
    out.append(g.add_node(f"s{i}", Square, {"y": d}))
g.run_upto(out)
print("computed", len(g.last_run.computed))
"""


def _python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(incgraph.__file__).parents[1]),
        "PYTHONDONTWRITEBYTECODE": "1",  # edits within one second must not reuse a .pyc
    }
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def _project(tmp_path: Path, body: str = "y * y") -> Path:
    (tmp_path / "procs.py").write_text(PROCS.format(body=body))
    (tmp_path / "run.py").write_text(SCRIPT)
    return tmp_path


def test_accept_after_editing_a_processor_file(tmp_path: Path) -> None:
    """Edit a processor's file, `incgraph accept` it, and the next run computes nothing."""
    project = _project(tmp_path)
    store = str(tmp_path / "store")
    assert "computed 6" in _python(project, "run.py", store).stdout
    _project(tmp_path, body="y ** 2")  # a refactor: same results
    dry = _python(project, "-m", "incgraph.cli", "accept", "procs.Square", "--store", store,
                  "--dry-run")  # fmt: skip
    assert dry.returncode == 0 and dry.stdout.count("would accept 1 result(s)") == 3, dry.stderr
    done = _python(project, "-m", "incgraph.cli", "accept", "procs.Square", "--store", store)
    assert done.returncode == 0 and done.stdout.count("accepted 1 result(s)") == 3, done.stderr
    assert "computed 0" in _python(project, "run.py", store).stdout
    shown = _python(project, "-m", "incgraph.cli", "ls", "--store", store, "--node", "s0", "--json")
    newest = json.loads(shown.stdout)[0]
    show = _python(project, "-m", "incgraph.cli", "show", "--store", store, newest["key"][:12])
    assert "accepted" in show.stdout and "not computed by this code" in show.stdout
    lineage = _python(
        project, "-m", "incgraph.cli", "lineage", "--store", store, newest["key"][:12]
    )
    assert "accepted from code" in lineage.stdout
    again = _python(project, "-m", "incgraph.cli", "accept", "s0", "--store", store)
    assert again.returncode == 0 and "accepted 0 result(s)" in again.stdout


def test_accept_says_when_there_is_nothing_to_accept(tmp_path: Path) -> None:
    """Accepting unchanged code exits 1 and says why; an unknown target is a usage error."""
    project = _project(tmp_path)
    store = str(tmp_path / "store")
    _python(project, "run.py", store)
    same = _python(project, "-m", "incgraph.cli", "accept", "procs.Square", "--store", store)
    assert same.returncode == 1 and "nothing to accept" in same.stderr
    unknown = _python(project, "-m", "incgraph.cli", "accept", "procs.Nope", "--store", store)
    assert unknown.returncode == 2 and "no stored result" in unknown.stderr


def _store_with_chain(tmp_path: Path) -> str:
    project = _project(tmp_path)
    store = str(tmp_path / "store")
    _python(project, "run.py", store)
    return store


def test_invalidate_dry_run_then_for_real(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run says what would go and removes nothing; then the rows go, downstream too."""
    store = _store_with_chain(tmp_path)
    assert main(["invalidate", "--store", store, "--node", "d0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would take 2 result(s) out of use, 1 of them downstream" in out
    assert len(list(open_store(store).index.records())) == 6
    args = ["--processor", "procs.Double", "--json"]
    assert main(["invalidate", "--store", store, *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(r["node"] for r in report["removed"]) == ["d0", "d1", "d2", "s0", "s1", "s2"]
    assert list(open_store(store).index.records()) == []


def test_invalidate_by_key_without_downstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key prefix with --no-downstream removes exactly that result; -v lists it."""
    store = _store_with_chain(tmp_path)
    rec = next(r for r in open_store(store).index.records() if r.node == "d2")
    assert main(["invalidate", "--store", store, rec.key[:10], "--no-downstream", "-v"]) == 0
    out = capsys.readouterr().out
    assert rec.key[:12] in out and "took 1 result(s) out of use;" in out
    assert {r.node for r in open_store(store).index.records()} == {"d0", "d1", "s0", "s1", "s2"}


def test_invalidate_needs_a_target_that_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No target, or one matching nothing, is a usage error (exit 2)."""
    store = _store_with_chain(tmp_path)
    assert main(["invalidate", "--store", store]) == 2
    assert main(["invalidate", "--store", store, "--node", "nope*"]) == 2
    assert "no stored result matches" in capsys.readouterr().err


def test_gc_prints_a_summary_unless_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gc counts removed results by processor and node; -v lists each one."""
    store = open_store(tmp_path / "s")
    old = time.time() - 7200
    for i in range(50):
        key = f"{i:032x}"
        store.save(Record(key, f"{i + 100:032x}", f"n{i % 2}", "m.P", "c", "i", {}, old), i)
    store.close()
    where = str(tmp_path / "s")
    assert main(["gc", "--store", where, "--keep-runs", "0", "--dry-run"]) == 0
    summary = capsys.readouterr().out.splitlines()
    assert len(summary) == 4  # header, two (processor, node) rows, the totals
    assert "would remove 50 result(s)" in summary[-1] and "25" in summary[1]
    assert main(["gc", "--store", where, "--keep-runs", "0", "--dry-run", "-v"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 52


def test_gc_uses_the_environment_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With $INCGRAPH_MAX_BYTES set, a plain `incgraph gc` enforces it."""
    store = open_store(tmp_path / "s")
    old = time.time() - 7200
    for i in range(5):
        store.save(
            Record(f"{i:032x}", f"{i + 9:032x}", "n", "m.P", "c", "i", {}, old + i), b"x" * 5000
        )
    store.close()
    monkeypatch.setenv("INCGRAPH_MAX_BYTES", "12K")
    assert main(["gc", "--store", str(tmp_path / "s"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept_bytes"] <= 12_000 and len(report["removed"]) == 3
    assert [r["key"] for r in report["removed"]] == [f"{i:032x}" for i in range(3)]


def test_help_lists_the_new_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """`incgraph --help` lists invalidate and accept."""
    main(["--help"])
    out = capsys.readouterr().out
    assert "invalidate" in out and "accept" in out
    assert textwrap.dedent(out)


def test_stats_shows_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`incgraph stats` says which byte budget runs enforce, or that there is none."""
    open_store(tmp_path / "s").close()
    assert main(["stats", "--store", str(tmp_path / "s")]) == 0
    assert "budget" in capsys.readouterr().out
    monkeypatch.setenv("INCGRAPH_MAX_BYTES", "2G")
    assert main(["stats", "--store", str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_bytes"] == 2_000_000_000


def test_accept_refuses_flow_layer_processors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flow layer's generated processor is refused with what to do instead."""
    store = open_store(tmp_path / "s")
    name = "incgraph.flow.processors.LayerProcessor[Train]"
    store.save(Record("a" * 32, "b" * 32, "F/Train", name, "c" * 32, "i" * 32, {}), 1)
    store.close()
    assert main(["accept", "--store", str(tmp_path / "s"), "F/Train"]) == 2
    assert "flow layer" in capsys.readouterr().err
