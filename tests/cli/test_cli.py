"""The ``incgraph`` command: every subcommand in-process through ``main``, and a few as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from incgraph.cli import main
from incgraph.store import Record, open_store

GRAPH_FILE = """
import os
import numpy as np
from incgraph import ProcessGraph, Processor

class Load(Processor):
    def process(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.float64)

class Total(Processor):
    def process(self, data: np.ndarray, scale: float) -> float:
        return float(data.sum()) * scale

graph = ProcessGraph(store=os.path.join(os.path.dirname(os.path.abspath(__file__)), "store"))
size = graph.add_constant_node(0, "size", value=50_000)
loaded = graph.add_node(1, Load, {"n": size})
total = graph.add_node(2, Total, {"data": loaded, "scale": 2.0})

if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1:
        size.set_value(int(sys.argv[1]))
    print(graph.run_upto(total))
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pipeline.py (a graph whose store is store/ beside it), run twice with two sizes."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "pipeline.py").write_text(GRAPH_FILE)
    for size in ("1000", "50000"):
        done = subprocess.run(
            [sys.executable, "pipeline.py", size],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """main(args) in-process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def store_of(project: Path) -> str:
    return str(project / "store")


# -- the process and the parser ------------------------------------------------------------------


def test_python_dash_m_runs_the_command(project: Path) -> None:
    """`python -m incgraph.cli ls` works as a process and prints the table."""
    done = subprocess.run(
        [sys.executable, "-m", "incgraph.cli", "ls", "--store", store_of(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    header, *rows, footer = done.stdout.splitlines()
    assert header.split() == ["KEY", "NODE", "PROCESSOR", "CREATED", "SIZE", "DURATION", "HITS"]
    assert len(rows) == 4 and footer.startswith("4 results")


def test_usage_errors_exit_with_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Unknown commands, bad options and a missing store are usage errors (exit code 2)."""
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "ls", "--limit", "many")[0] == 2
    code, _, err = run(capsys, "ls", "--store", str(tmp_path / "nowhere"))
    assert code == 2 and "no incgraph store" in err and not (tmp_path / "nowhere").exists()
    code, out, _ = run(capsys)
    assert code == 2 and "COMMAND" in out
    assert run(capsys, "--help")[0] == 0


def test_the_default_store_is_the_process_graph_default(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --store the command uses $INCGRAPH_STORE, as ProcessGraph does."""
    monkeypatch.setenv("INCGRAPH_STORE", store_of(project))
    assert len(run_json(capsys, "ls")) == 4
    code, out, _ = run(capsys, "--store", store_of(project), "stats")  # before the command too
    assert code == 0 and store_of(project) in out


# -- ls, show, lineage, runs, stats ------------------------------------------------------------------


def test_ls_lists_results_with_hits_and_filters(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """ls shows every result newest first, counts hits from the run log, and filters."""
    subprocess.run([sys.executable, "pipeline.py", "50000"], cwd=project, check=True, timeout=120)
    rows = run_json(capsys, "ls", "--store", store_of(project))
    assert [r["node"] for r in rows] == ["2", "1", "2", "1"]
    assert [r["hits"] for r in rows] == [1, 1, 0, 0]
    assert rows[0]["created"] >= rows[-1]["created"] and rows[1]["size"] > 400_000
    only = run_json(capsys, "ls", "--store", store_of(project), "--node", "1", "--limit", "1")
    assert [r["node"] for r in only] == ["1"]
    by_size = run_json(capsys, "ls", "--store", store_of(project), "--sort", "size", "--reverse")
    assert [r["size"] for r in by_size] == sorted(r["size"] for r in rows)
    code, out, _ = run(capsys, "ls", "--store", store_of(project), "--processor", "*.Total")
    assert code == 0 and "__main__.Total" in out and "__main__.Load" not in out


def test_show_prints_the_record_and_a_preview(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """show accepts a key prefix and prints lineage fields, where inputs came from, the value."""
    newest = run_json(capsys, "ls", "--store", store_of(project))[0]
    code, out, _ = run(capsys, "show", newest["key"][:10], "--store", store_of(project))
    assert code == 0
    assert newest["key"] in out and "__main__.Total" in out
    assert "data = " in out and "from " in out and "(no stored producer)" in out
    assert "value" in out and "float" in out
    assert "in its row of the index" in out  # a float: kept in its results row
    loaded = next(
        r for r in run_json(capsys, "ls", "--store", store_of(project)) if r["node"] == "1"
    )
    data = run_json(capsys, "show", loaded["key"], "--store", store_of(project))
    assert data["value"].startswith("numpy.ndarray shape=(50000,) dtype=float64")
    assert data["file"].endswith(".npy") and data["in_row"] is False
    quiet = run_json(capsys, "show", loaded["key"], "--store", store_of(project), "--no-value")
    assert quiet["value"] is None


def test_show_refuses_unknown_and_ambiguous_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown or ambiguous key prefix is a usage error listing candidates."""
    with open_store(tmp_path) as store:
        for key in ("ab12" + "0" * 28, "ab34" + "0" * 28):
            store.save(Record(key, key[::-1], "n", "p", "c", "i"), 1)
    code, _, err = run(capsys, "show", "ab", "--store", str(tmp_path))
    assert code == 2 and "ambiguous" in err and "ab12" in err
    code, _, err = run(capsys, "show", "ffff", "--store", str(tmp_path))
    assert code == 2 and "no stored result" in err


def test_lineage_in_text_json_and_dot(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """lineage walks from a result through its inputs' producers, in three formats."""
    total = run_json(capsys, "ls", "--store", store_of(project), "--node", "2")[0]
    code, text, _ = run(capsys, "lineage", total["key"][:12], "--store", store_of(project))
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith(total["key"][:12]) and "node 2 (__main__.Total)" in lines[0]
    assert any("node 1 (__main__.Load)" in line for line in lines[1:])
    assert sum("no stored producer" in line for line in lines) == 2  # size and scale
    tree = run_json(capsys, "lineage", total["key"], "--store", store_of(project))
    data = next(i for i in tree["inputs"] if i["name"] == "data")
    assert data["producers"][0]["node"] == "1"
    assert data["producers"][0]["inputs"][0]["producers"] == []
    code, dot, _ = run(
        capsys, "lineage", total["key"], "--store", store_of(project), "--format", "dot"
    )
    assert code == 0 and dot.startswith("digraph") and '[label="data"]' in dot
    code, shallow, _ = run(
        capsys, "lineage", total["key"], "--store", store_of(project), "--depth", "0"
    )
    assert code == 0 and "node 1" not in shallow


def test_runs_and_stats(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """runs lists the run log newest first; stats counts results, bytes and hit rates."""
    runs = run_json(capsys, "runs", "--store", store_of(project))
    assert [(r["kind"], r["computed"], r["hits"]) for r in runs] == [("run", 2, 0)] * 2
    stats = run_json(capsys, "stats", "--store", store_of(project))
    assert (stats["results"], stats["nodes"], stats["runs"]) == (4, 2, 2)
    assert stats["hit_rate"] == 0.0 and stats["bytes"] > 400_000
    assert stats["row_bytes"] > 0  # the two float totals are kept in their rows
    code, out, _ = run(capsys, "stats", "--store", store_of(project))
    assert code == 0 and "hit rate  0%" in out and "HIT RATE" in out
    assert "small results kept in their index row" in out


# -- explain --------------------------------------------------------------------------------------


def test_explain_runs_the_file_without_its_main_block(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """explain finds the file's graph, skips its __main__ block, and shows hits for the
    stored inputs with the same cache keys the script used."""
    (project / "marker.py").write_text("")
    code, out, err = run(capsys, "explain", str(project / "pipeline.py"))
    assert code == 0, err
    assert "graph `graph`" in out and "targets: node 2 (Total)" in out
    assert out.count(" hit ") == 2 and "2 hit(s), 0 to compute" in out
    plans = run_json(capsys, "explain", str(project / "pipeline.py"), "--target", "loaded")
    assert plans[0]["targets"] == ["1"]
    assert [d["action"] for d in plans[0]["decisions"]] == ["constant", "hit"]
    assert sys.modules["__main__"].__name__ == "__main__" and "graph" not in vars(
        sys.modules["__main__"]
    )


def test_explain_against_another_store_and_errors(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    """--store explains against that store; files without graphs and bad targets are usage errors."""
    open_store(tmp_path / "empty").close()
    plans = run_json(
        capsys, "explain", str(project / "pipeline.py"), "--store", str(tmp_path / "empty")
    )
    assert [d["action"] for d in plans[0]["decisions"]] == ["constant", "compute", "compute"]
    (project / "nothing.py").write_text("x = 1\n")
    code, _, err = run(capsys, "explain", str(project / "nothing.py"))
    assert code == 2 and "defines no ProcessGraph" in err
    code, _, err = run(capsys, "explain", str(project / "pipeline.py"), "--target", "nope")
    assert code == 2 and "nope" in err
    assert run(capsys, "explain", str(project / "missing.py"))[0] == 2


# -- gc, verify, clear, pin -------------------------------------------------------------------------


def test_gc_lists_what_it_removes_and_keeps_pins(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """gc --keep-runs 1 drops the older run's results, listing them; --pin keeps one."""
    rows = run_json(capsys, "ls", "--store", store_of(project))
    old_load = next(r for r in rows[2:] if r["node"] == "1")
    dry = run_json(capsys, "gc", "--store", store_of(project), "--keep-runs", "1", "--grace", "0",
                   "--dry-run")  # fmt: skip
    assert dry["dry_run"] and len(dry["removed"]) == 2
    code, out, _ = run(
        capsys, "gc", "--store", store_of(project), "--keep-runs", "1", "--grace", "0",
        "--pin", old_load["key"][:12],
    )  # fmt: skip
    assert code == 0 and "removed 1 result(s)" in out and "1 pinned" in out
    assert len(out.splitlines()) == 3  # header, the removed result, the summary
    keys = {r["key"] for r in run_json(capsys, "ls", "--store", store_of(project))}
    assert old_load["key"] in keys and len(keys) == 3
    assert run(capsys, "gc", "--store", store_of(project), "--max-bytes", "lots")[0] == 2


def test_gc_byte_budget(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """--max-bytes drops least recently used results until the store fits."""
    report = run_json(capsys, "gc", "--store", store_of(project), "--max-bytes", "300K",
                      "--grace", "0")  # fmt: skip
    assert report["kept_bytes"] <= 300_000 and len(report["removed"]) >= 1
    assert not report["over_budget"]


def test_verify_exits_1_on_a_corrupt_blob_and_quarantines_it(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """verify reports a corrupt blob with exit code 1, moves it aside, then passes."""
    assert run(capsys, "verify", "--store", store_of(project))[0] == 0
    blob = next((project / "store" / "blobs").glob("*/*.npy"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    code, out, _ = run(capsys, "verify", "--store", store_of(project), "--no-quarantine")
    assert code == 1 and "reported only" in out and blob.exists()
    code, out, _ = run(capsys, "verify", "--store", store_of(project))
    assert code == 1 and "checksum" in out and "quarantine" in out and not blob.exists()
    report = run_json(capsys, "verify", "--store", store_of(project))
    assert report["ok"] and report["problems"] == []


def test_show_of_a_corrupt_blob_says_incgraph_verify_drops_it(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """show (read-only) on a result whose blob is corrupt points to incgraph verify."""
    blob = next((project / "store" / "blobs").glob("*/*.npy"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    key = next(
        row["key"]
        for row in run_json(capsys, "ls", "--store", store_of(project))
        if blob.name.startswith(row["data_version"])
    )
    code, out, _ = run(capsys, "show", key, "--store", store_of(project))
    assert code == 0 and "is corrupt" in out and "run `incgraph verify`" in out
    assert blob.exists()


def test_clear_needs_yes(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """clear without --yes says what it would delete and exits 2; with --yes it deletes."""
    code, _, err = run(capsys, "clear", "--store", store_of(project))
    assert code == 2 and "4 result(s)" in err and "--yes" in err
    assert len(run_json(capsys, "ls", "--store", store_of(project))) == 4
    deleted = run_json(capsys, "clear", "--store", store_of(project), "--yes")
    assert deleted["results"] == 4 and run_json(capsys, "ls", "--store", store_of(project)) == []


def test_pin_and_unpin(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    """pin marks results kept (an asterisk in ls); unpin removes the mark."""
    key = run_json(capsys, "ls", "--store", store_of(project))[-1]["key"]
    assert run_json(capsys, "pin", key[:8], "--store", store_of(project)) == {"pinned": [key]}
    _, out, _ = run(capsys, "ls", "--store", store_of(project))
    assert f"{key[:12]}*" in out and "(* pinned)" in out
    assert run_json(capsys, "unpin", key[:8], "--store", store_of(project)) == {"unpinned": [key]}
    assert run(capsys, "unpin", key, "--store", store_of(project))[0] == 2


def test_a_corrupt_index_is_reported_with_the_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A damaged index file exits 1 with a message naming the file and how to recover."""
    folder = tmp_path / "store"
    with open_store(folder) as store:
        store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i"), np.arange(3))
    for suffix in ("-wal", "-shm"):
        Path(f"{folder / 'index.sqlite'}{suffix}").unlink(missing_ok=True)
    (folder / "index.sqlite").write_bytes(b"garbage" * 1000)
    for command in ("ls", "verify", "stats"):
        code, _, err = run(capsys, command, "--store", str(folder))
        assert code == 1 and "index.sqlite" in err and "mv " in err


def test_a_read_only_folder_is_browsed_read_only(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store in a folder the user cannot write is opened read-only: ls works, gc refuses."""
    folder = project / "store"
    if os.geteuid() == 0:  # root can write anywhere: make the folder look unwritable instead
        import incgraph.cli.context

        monkeypatch.setattr(incgraph.cli.context, "folder_is_writable", lambda path: False)
    os.chmod(folder, 0o500)
    try:
        assert len(run_json(capsys, "ls", "--store", str(folder))) == 4
        code, _, err = run(capsys, "gc", "--store", str(folder), "--keep-runs", "0")
        assert code == 1 and "read-only" in err
    finally:
        os.chmod(folder, 0o700)


def test_tables_align_their_columns() -> None:
    """Columns start where the widest cell above or below says; numbers are right-aligned."""
    from incgraph.cli.tables import table

    text = table(["A", "LONG HEADER", "N"], [["x" * 9, "y", 1], ["z", "w" * 15, 123]], right=[2])
    header, first, second = text.splitlines()
    assert header.index("LONG") == first.index("y") == second.index("w") == 11
    assert len(header) == len(first) == len(second)
    assert first.endswith("  1") and second.endswith("  123")


def test_an_unknown_key_prefix_is_an_incgraph_error_that_says_what_to_do(tmp_path) -> None:
    """Invalidating a key no result has raises NotCachedError (a KeyError) pointing at `incgraph ls`."""
    import pytest

    from incgraph import ProcessGraph
    from incgraph.errors import ConfigurationError, NotCachedError

    graph = ProcessGraph(store=tmp_path / "store")
    with pytest.raises(NotCachedError, match="incgraph ls") as info:
        graph.invalidate("0123abcd")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("no stored result")
    assert issubclass(ConfigurationError, ValueError)
