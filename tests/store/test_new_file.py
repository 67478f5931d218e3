"""A new store's SQLite file is made whole from the schema image: same schema, atomic, private."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incgraph.store import SqliteFile, open_store
from incgraph.store.schema import MIGRATIONS, SCHEMA_VERSION, new_file_image

from .contract import dv, record

pytestmark = pytest.mark.skipif(new_file_image() is None, reason="sqlite3 cannot serialize")


def schema_of(path: Path) -> dict[str, Any]:
    """Everything that makes up a file's schema, read with a plain sqlite3 connection."""
    conn = sqlite3.connect(path)
    try:
        return {
            "master": conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
            ).fetchall(),
            # creation order; a migrated file keeps free pages of dropped indexes, a new one not
            "roots": conn.execute("SELECT name FROM sqlite_master ORDER BY rootpage").fetchall(),
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "encoding": conn.execute("PRAGMA encoding").fetchone()[0],
            "auto_vacuum": conn.execute("PRAGMA auto_vacuum").fetchone()[0],
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
        }
    finally:
        conn.close()


def migrated_step_by_step(path: Path) -> None:
    """Version 0 -> 1 -> ... -> SCHEMA_VERSION, one transaction and one user_version per step."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for version, migration in enumerate(MIGRATIONS):
        conn.execute("BEGIN IMMEDIATE")
        for statement in migration:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    conn.close()


def open_and_close(path: Path, **kwargs: Any) -> None:
    file = SqliteFile(path, **kwargs)
    file.connection()
    file.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".new"))


def test_a_new_file_has_the_schema_of_one_migrated_step_by_step(tmp_path: Path) -> None:
    """A file made from the image has the same sqlite_master (names, SQL, creation order),
    version and mode as migrations give."""
    open_and_close(tmp_path / "image.sqlite")
    migrated_step_by_step(tmp_path / "steps.sqlite")
    (tmp_path / "ordinary.sqlite").touch()  # an empty file is migrated the ordinary way
    open_and_close(tmp_path / "ordinary.sqlite")
    made, steps = schema_of(tmp_path / "image.sqlite"), schema_of(tmp_path / "steps.sqlite")
    assert made["user_version"] == SCHEMA_VERSION and made["journal_mode"] == "wal"
    assert made["integrity"] == [("ok",)]
    sql = {name: text for _, name, _, text in steps["master"]}
    wanted = tuple(sql[name] for (name,) in steps["roots"] if sql[name])
    assert made == steps, f"set incgraph.store.schema.NEW_FILE_SQL to {wanted!r}"
    assert steps == schema_of(tmp_path / "ordinary.sqlite")


def test_creating_a_store_does_not_import_sqlite_utils(tmp_path: Path) -> None:
    """A new store is made without sqlite_utils (whose import pulls in pandas and numpy)."""
    code = (
        "import sys; from incgraph.store import open_store; "
        f"open_store({str(tmp_path / 's')!r}).close(); "
        "print(sorted({'sqlite_utils', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]"]


def test_the_image_is_a_wal_database_at_the_current_version() -> None:
    """The image's header says WAL (format versions 2) and carries the current user_version."""
    image = new_file_image()
    assert image is not None and image[:16] == b"SQLite format 3\x00"
    assert image[18:20] == b"\x02\x02"
    assert int.from_bytes(image[60:64], "big") == SCHEMA_VERSION


def test_a_new_store_is_private_complete_and_leaves_no_temporary(tmp_path: Path) -> None:
    """open_store on a new folder: index 0600 in WAL mode, usable at once, no temporary left."""
    folder = tmp_path / "store"
    with open_store(folder) as store:
        store.save(record(1, 2), "value")
        assert store.load(store.lookup(dv(1))) == "value"
    assert stat.S_IMODE((folder / "index.sqlite").stat().st_mode) == 0o600
    assert leftovers(folder) == []
    with open_store(folder, read_only=True) as reader:
        assert reader.lookup(dv(1)).data_version == dv(2)


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    """Reopening a store keeps its results: the image is written only where no file exists."""
    with open_store(tmp_path / "s") as store:
        store.save(record(1, 2), "kept")
    with open_store(tmp_path / "s") as store:
        assert store.load(store.lookup(dv(1))) == "kept"
    assert leftovers(tmp_path / "s") == []


@pytest.mark.parametrize("failing", ["link", "fsync", "open"])
def test_a_failed_creation_falls_back_to_the_ordinary_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """No hard links, a failed fsync or a refused temporary: the file is made and migrated as before."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EPERM, "not here")

    if failing == "open":
        real_open = os.open

        def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path).endswith(".new"):
                refuse()
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", open_)
    else:
        monkeypatch.setattr(os, failing, refuse)
    open_and_close(tmp_path / "index.sqlite")
    monkeypatch.undo()
    migrated_step_by_step(tmp_path / "steps.sqlite")
    assert schema_of(tmp_path / "index.sqlite") == schema_of(tmp_path / "steps.sqlite")
    assert leftovers(tmp_path) == []


def test_a_creator_that_loses_the_race_opens_the_winners_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another process links its file first, ours is discarded and theirs (with data) is used."""
    target = tmp_path / "s" / "index.sqlite"
    with open_store(tmp_path / "other") as other:
        other.save(record(1, 2), "theirs")
    real_link = os.link

    def lose(src: Any, dst: Any, **kwargs: Any) -> None:
        real_link(tmp_path / "other" / "index.sqlite", dst)  # the other process wins
        raise FileExistsError(errno.EEXIST, "exists", str(dst))

    (tmp_path / "s" / "blobs").mkdir(parents=True)
    monkeypatch.setattr(os, "link", lose)
    file = SqliteFile(target)
    assert file.connection().execute("SELECT count(*) FROM results").fetchone() == (1,)
    file.close()
    assert leftovers(tmp_path / "s") == []


@pytest.mark.parametrize("durable", [False, True])
def test_creation_fsyncs_the_file_and_with_durable_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    """The image is fsynced before it is linked; durable=True also fsyncs the folder."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        synced.append("folder" if os.path.isdir(target) else Path(target).suffix)
        real_fsync(fd)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name a descriptor's file")
    monkeypatch.setattr(os, "fsync", fsync)
    open_and_close(tmp_path / "index.sqlite", durable=durable)
    assert synced == ([".new", "folder"] if durable else [".new"])
