"""The store marker, foreign folders and databases, read-only opening, and dead owners' leftovers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from incgraph.cli import main
from incgraph.errors import ReadOnlyStoreError, StoreError
from incgraph.store import (
    FileBlobStore,
    SqliteFile,
    SqliteIndex,
    Store,
    mark_folder,
    open_store,
    read_marker,
)
from incgraph.store.runlog import RunEntry, new_owner
from incgraph.store.schema import SCHEMA_VERSION
from incgraph.store.store import MARKER_FILE

from .contract import dv, record


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


# -- the marker ---------------------------------------------------------------------------------


def test_a_new_store_is_marked_with_its_id_and_schema_version(tmp_path: Path) -> None:
    """open_store writes incgraph-store.json naming the store's id and schema version."""
    open_store(tmp_path / "store").close()
    marker = json.loads((tmp_path / "store" / MARKER_FILE).read_text())
    assert marker["format"] == "incgraph store" and marker["schema"] == SCHEMA_VERSION
    assert len(marker["id"]) == 32
    open_store(tmp_path / "store").close()
    assert read_marker(tmp_path / "store") == marker  # reopening keeps the id


def test_an_older_store_without_a_marker_is_adopted_when_opened_writable(tmp_path: Path) -> None:
    """A store made before markers existed gets one on its first writable opening, not before."""
    with open_store(tmp_path / "store") as store:
        store.save(record(1, 2), [1, 2])
    (tmp_path / "store" / MARKER_FILE).unlink()
    with open_store(tmp_path / "store", read_only=True) as store:
        assert store.load(store.lookup(dv(1))) == [1, 2]
        assert store.verify().ok  # reports only: needs no marker
    assert read_marker(tmp_path / "store") is None
    with open_store(tmp_path / "store") as store:
        assert store.verify().ok
    assert read_marker(tmp_path / "store") is not None


def test_an_older_store_among_other_files_is_not_adopted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unmarked store folder that also holds a user's files stays unmarked when opened, and
    gc and clear refuse it (from Python and the CLI) without deleting anything."""
    folder = tmp_path / "store"
    with open_store(folder) as store:
        store.save(record(1, 2), [1, 2])
    (folder / MARKER_FILE).unlink()
    (folder / "blobs" / "raw").mkdir()
    photo = folder / "blobs" / "raw" / "photo.png"
    photo.write_bytes(b"\x89PNG")
    with open_store(folder) as store:
        assert store.load(store.lookup(dv(1))) == [1, 2]  # still usable as a cache
        for action in (store.gc, store.clear):
            with pytest.raises(StoreError, match="files incgraph did not make"):
                action()
    assert read_marker(folder) is None
    assert main(["gc", "--store", str(folder), "--grace", "0"]) == 1
    assert "no incgraph-store.json" in capsys.readouterr().err
    assert photo.exists()


def test_refusing_an_older_store_names_the_files_incgraph_did_not_make(tmp_path: Path) -> None:
    """gc refusing an unmarked store among a user's files names those files, to move them out."""
    folder = tmp_path / "store"
    with open_store(folder) as store:
        store.save(record(1, 2), [1, 2])
    (folder / MARKER_FILE).unlink()
    (folder / "notes.txt").write_text("mine")
    (folder / "blobs" / "raw").mkdir()
    with (
        open_store(folder) as store,
        pytest.raises(StoreError, match=r"did not make \(notes\.txt, blobs/raw\): move those"),
    ):
        store.gc(grace=0)


def test_maintenance_refuses_a_folder_without_a_marker(tmp_path: Path) -> None:
    """gc, clear and quarantining verify refuse a store folder that is not marked."""
    db = SqliteFile(tmp_path / "index.sqlite")
    store = Store(SqliteIndex(db), FileBlobStore(tmp_path / "blobs", db), path=tmp_path)
    store.save(record(1, 2), "x")
    for action in (store.gc, store.clear, store.verify):
        with pytest.raises(StoreError, match="marking it as an incgraph store"):
            action()
    assert store.lookup(dv(1)) is not None
    mark_folder(tmp_path)
    assert store.gc(grace=0).kept == 1
    store.close()


# -- foreign databases ------------------------------------------------------------------------


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A folder holding another application's index.sqlite (in WAL mode, cleanly closed)."""
    folder = tmp_path / "other-app"
    folder.mkdir()
    conn = sqlite3.connect(folder / "index.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE photos (name TEXT, taken REAL)")
    conn.execute("INSERT INTO photos VALUES ('a.png', 1.0)")
    conn.commit()
    conn.close()
    return folder


@pytest.mark.parametrize("command", ["ls", "stats", "runs", "verify", "gc", "clear"])
def test_commands_refuse_a_foreign_database_without_writing(
    foreign: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command refuses another application's index.sqlite and writes nothing to it."""
    before = _files(foreign)
    extra = ["--yes"] if command == "clear" else []
    assert main([command, "--store", str(foreign), *extra]) != 0
    assert "not an incgraph store index" in capsys.readouterr().err
    assert _files(foreign) == before  # no tables added, no WAL switch, no -wal/-shm, no marker


def test_open_store_refuses_a_foreign_database_without_writing(foreign: Path) -> None:
    """open_store, writable or read-only, names the foreign file and leaves it untouched."""
    before = _files(foreign)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="holds tables incgraph does not make: 'photos'"):
            open_store(foreign, read_only=read_only)
    assert _files(foreign) == before


def _entries(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, relative to it."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize(
    "command",
    [["verify"], ["gc"], ["clear", "--yes"], ["pin", "ab"], ["invalidate", "ab"], ["accept", "ab"]],
)
def test_writing_commands_create_no_folder_beside_a_foreign_database(
    foreign: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that would write refuses another application's index before creating blobs/."""
    before = _entries(foreign)
    assert main([*command, "--store", str(foreign)]) != 0
    assert "not an incgraph store index" in capsys.readouterr().err
    assert _entries(foreign) == before


def test_open_store_creates_no_folder_beside_a_foreign_database(foreign: Path) -> None:
    """open_store refusing a foreign index leaves the folder's listing as it was."""
    before = _entries(foreign)
    with pytest.raises(StoreError, match="not an incgraph store index"):
        open_store(foreign)
    assert _entries(foreign) == before


# -- read-only folders --------------------------------------------------------------------------


def _read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` seen through a read-only bind mount at ``view`` (where root can write nothing);
    else made immutable with chattr; else made unwritable by mode bits (not root)."""
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if mounted.returncode == 0:
        remount = ["mount", "-o", "remount,bind,ro", str(view)]
        if subprocess.run(remount, capture_output=True).returncode == 0:
            try:
                yield view
            finally:
                subprocess.run(["umount", "-l", str(view)], check=True)
            return
        subprocess.run(["umount", "-l", str(view)], check=True)
    if subprocess.run(["chattr", "+i", str(source)], capture_output=True).returncode == 0:
        try:
            yield source
        finally:
            subprocess.run(["chattr", "-i", str(source)], check=True)
        return
    source.chmod(0o500)
    try:
        yield source
    finally:
        source.chmod(0o700)


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[Path]:
    """A cleanly closed store holding one result, in a folder that cannot be written."""
    with open_store(tmp_path / "store") as store:
        store.save(record(1, 2), {"answer": 42})
    yield from _read_only_view(tmp_path / "store", tmp_path / "view")


def test_a_store_in_an_unwritable_folder_opens_read_only(read_only_store: Path) -> None:
    """read_only=True reads a cleanly closed store where nothing can be written, creating no file."""
    assert not os.path.exists(read_only_store / "index.sqlite-wal")
    with pytest.raises(OSError):
        (read_only_store / "probe").write_text("x")  # really unwritable, even for root
    with open_store(read_only_store, read_only=True) as store:
        assert store.read_only
        assert store.load(store.lookup(dv(1))) == {"answer": 42}
        assert len(store.runs()) == 0
    assert sorted(os.listdir(read_only_store)) == ["blobs", "incgraph-store.json", "index.sqlite"]


@pytest.mark.parametrize("command", [["ls"], ["show", dv(1)[:8]], ["stats"], ["runs"]])
def test_inspection_commands_work_on_an_unwritable_store(
    read_only_store: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """ls, show, stats and runs work on a store in a folder that cannot be written."""
    assert main([*command, "--store", str(read_only_store)]) == 0, capsys.readouterr().err


def test_an_unclean_store_in_an_unwritable_folder_says_what_to_do(tmp_path: Path) -> None:
    """A store whose -wal still holds commits cannot be read where it cannot be written: the
    error says to open it writable once where it can be written."""
    folder = tmp_path / "store"
    with open_store(folder) as store:
        store.save(record(1, 2), "x")
        held = store.index.file.connection()  # keeps the -wal as it is while copying
        held.execute("PRAGMA wal_autocheckpoint = 0")
        store.save(record(3, 4), "y")
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in os.listdir(folder):
            if name != "index.sqlite-shm" and (folder / name).is_file():
                (copy / name).write_bytes((folder / name).read_bytes())
        (copy / "blobs").mkdir()
    assert os.path.getsize(copy / "index.sqlite-wal") > 0
    for view in _read_only_view(copy, tmp_path / "view"):
        with pytest.raises(StoreError, match="open the store once with read_only=False"):
            open_store(view, read_only=True)


# -- dead owners --------------------------------------------------------------------------------


def _running_row(store: Store, owner: str) -> int:
    entry = RunEntry("batch", "killed", owner, 1.0, None, "running", 0, 0, b"", b"")
    return store.ledger.start_run(entry)


def test_a_run_whose_process_died_shows_as_abandoned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An announced run of a dead process is "abandoned" in runs() and incgraph runs."""
    dead = new_owner().split(":")
    dead[1] = str(_dead_pid())
    with open_store(tmp_path / "store") as store:
        _running_row(store, ":".join(dead))
        live = _running_row(store, new_owner())
        statuses = {run.id: run.status for run in store.runs()}
    assert sorted(statuses.values()) == ["abandoned", "running"] and statuses[live] == "running"
    assert main(["runs", "--store", str(tmp_path / "store")]) == 0
    assert "abandoned" in capsys.readouterr().out


def test_leases_of_dead_processes_are_dropped_when_the_store_is_opened(tmp_path: Path) -> None:
    """Opening a store writable drops leases whose owner died or that expired, keeps live ones."""
    dead = new_owner().split(":")
    dead[1] = str(_dead_pid())
    with open_store(tmp_path / "store") as store:
        far = 4_000_000_000.0
        store.ledger.claim([dv(1)], ":".join(dead), far, 0.0)
        store.ledger.claim([dv(2)], new_owner(), 1.0, 0.0)  # expired long ago
        live = new_owner()
        store.ledger.claim([dv(3)], live, far, 0.0)
    with open_store(tmp_path / "store") as store:
        states = store.ledger.lease_states()
    assert list(states) == [dv(3)] and states[dv(3)].owner == live


def test_the_errors_on_an_unwritable_store_give_the_right_advice(
    read_only_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening writable says to open read-only; saving says the folder cannot be written; the
    CLI's gc says it opened the store read-only and changes nothing."""
    with pytest.raises(ReadOnlyStoreError, match="open it with read_only=True"):
        open_store(read_only_store)
    with (
        open_store(read_only_store, read_only=True) as store,
        pytest.raises(ReadOnlyStoreError, match="its folder cannot be written"),
    ):
        store.save(record(5, 6), "x")
    assert main(["gc", "--store", str(read_only_store), "--dry-run"]) == 0
    assert "opened read-only and nothing in it is changed" in capsys.readouterr().err
    assert main(["verify", "--store", str(read_only_store)]) == 0


def test_gc_on_an_unwritable_store_points_to_the_dry_run_option(
    read_only_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """incgraph gc where nothing can be written fails naming the command-line --dry-run."""
    assert main(["gc", "--store", str(read_only_store), "--grace", "0"]) == 1
    err = capsys.readouterr().err
    assert "incgraph gc --dry-run" in err and "dry_run=True" not in err


_KILLED_WRITER = """
import os, signal, sys
from incgraph.store import open_store
sys.path.insert(0, sys.argv[2])
from tests.store.contract import record
store = open_store(sys.argv[1])
store.save(record(1, 2), {"answer": 42})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_store_on_a_read_only_mount_refuses_writable_opening(
    tmp_path: Path,
) -> None:
    """A store left with its -wal and -shm by a killed writer, seen where nothing can be
    written, refuses a writable open up front (saying read_only=True) and reads read-only."""
    root = str(Path(__file__).resolve().parents[2])
    folder = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(folder), root],
        env={**os.environ, "PYTHONPATH": root},
    )
    assert done.returncode == -9
    assert (folder / "index.sqlite-shm").exists()
    for view in _read_only_view(folder, tmp_path / "view"):
        with pytest.raises(ReadOnlyStoreError, match="open it with read_only=True"):
            open_store(view)
        with open_store(view, read_only=True) as store:
            assert store.load(store.lookup(dv(1))) == {"answer": 42}
