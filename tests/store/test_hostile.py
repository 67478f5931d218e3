"""A store folder holding crafted rows, symlinks and files that are not incgraph's."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from incgraph.cli import main
from incgraph.errors import StoreCorruptError, StoreError
from incgraph.store import Store, open_store
from incgraph.store.names import host_tag

from .contract import BIG, dv, record


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh on-disk store in tmp_path/store."""
    with open_store(tmp_path / "store") as opened:
        yield opened


def _raw(store: Store, sql: str, *params: object) -> None:
    conn = sqlite3.connect(store.path / "index.sqlite")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _crafted(store: Store, tmp_path: Path) -> tuple[str, Path]:
    """A big result whose blob row's checksum climbs out of the store to a victim file."""
    saved = store.save(record(1, 2), np.arange(BIG))
    store.close()
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    # a folder named like the row's file, so the kernel can walk up from it
    (store.path / "blobs" / dv(2)[:2] / f"{dv(2)}.x").mkdir()
    _raw(store, "UPDATE blobs SET codec = 'raw', checksum = ?", "x/../../../../victim")
    return saved.key, victim


def test_a_crafted_checksum_never_touches_a_file_outside_on_load(
    store: Store, tmp_path: Path
) -> None:
    """A load of a row whose checksum holds ../ reports corruption and leaves outside files be."""
    key, victim = _crafted(store, tmp_path)
    with pytest.raises(StoreCorruptError, match="checksum"):
        store.load(store.lookup(key))
    assert victim.read_bytes() == b"precious"


def test_show_gc_verify_and_clear_never_touch_a_file_outside(store: Store, tmp_path: Path) -> None:
    """incgraph show, verify, gc --grace 0 and clear --yes on a crafted row keep outside files."""
    key, victim = _crafted(store, tmp_path)
    where = ["--store", str(store.path)]
    assert main(["show", *where, key[:12]]) == 0
    assert main(["verify", *where]) == 1
    assert main(["gc", *where, "--grace", "0", "--keep-runs", "0"]) == 0
    assert main(["clear", *where, "--yes"]) == 0
    assert victim.read_bytes() == b"precious"


def test_verify_reports_a_crafted_row_as_corruption(store: Store, tmp_path: Path) -> None:
    """verify names the bad checksum and drops the row, nothing else."""
    key, victim = _crafted(store, tmp_path)
    report = store.verify()
    assert [p.kind for p in report.problems] == ["blob"]
    assert "checksum" in report.problems[0].reason and report.problems[0].keys == (key,)
    assert victim.exists() and store.lookup(key) is not None


def test_gc_and_clear_leave_a_users_own_files_alone(store: Store) -> None:
    """Files under blobs/ whose names incgraph would not make are never deleted."""
    store.save(record(1, 2), np.arange(BIG))
    raw = store.path / "blobs" / "raw"
    raw.mkdir()
    photo = raw / "photo.png"
    photo.write_bytes(b"\x89PNG")
    odd = store.path / "blobs" / dv(2)[:2] / "notes.txt"
    odd.write_text("mine")
    old = 1_000_000_000.0
    for path in (photo, odd):
        os.utime(path, (old, old))
    report = store.gc(grace=0)
    assert report.files_removed == [] and photo.exists() and odd.exists()
    store.clear()
    assert photo.exists() and odd.exists()


def test_gc_does_not_follow_a_symlinked_blob_folder(store: Store, tmp_path: Path) -> None:
    """A blobs/<xx> folder that is a symlink is neither listed nor emptied by gc or clear."""
    outside = tmp_path / "outside"
    outside.mkdir()
    lookalike = outside / f"{'cd' * 16}.{'0' * 16}.pkl"
    lookalike.write_bytes(b"not incgraph's")
    os.utime(lookalike, (1_000_000_000.0, 1_000_000_000.0))
    (store.path / "blobs" / "cd").symlink_to(outside, target_is_directory=True)
    assert store.gc(grace=0).files_removed == []
    store.clear()
    assert lookalike.exists()


def test_a_symlinked_blob_file_is_not_read(store: Store, tmp_path: Path) -> None:
    """A blob file replaced by a symlink is corrupt: its target is never read or removed."""
    saved = store.save(record(1, 2), np.arange(BIG))
    path = store.blobs.path_of(saved.data_version)
    target = tmp_path / "elsewhere.npy"
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(StoreCorruptError, match="symlink"):
        store.load(saved)
    assert target.exists()


def test_a_live_writers_temporary_file_survives_gc_with_no_grace(store: Store) -> None:
    """gc --grace 0 keeps an old temporary file whose writer still runs, drops a dead one's."""
    store.save(record(1, 2), np.arange(BIG))
    folder = store.path / "blobs" / "ab"
    folder.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    live = folder / f"{'ab' * 16}.{'1' * 32}-{host_tag()}-{os.getpid()}-1.tmp"
    gone = folder / f"{'ab' * 16}.{'2' * 32}-{host_tag()}-{dead}-1.tmp"
    for path in (live, gone):
        path.write_bytes(b"partial")
        os.utime(path, (1_000_000_000.0, 1_000_000_000.0))
    report = store.gc(grace=0)
    assert report.files_removed == [gone]
    assert live.exists() and not gone.exists()


def test_verify_never_quarantines_through_a_symlinked_quarantine_folder(
    store: Store, tmp_path: Path
) -> None:
    """A quarantine folder that is a symlink is refused: nothing is moved or written outside."""
    saved = store.save(record(1, 2), np.arange(BIG))
    path = store.blobs.path_of(saved.data_version)
    path.write_bytes(b"x" * path.stat().st_size)  # a bad checksum
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.path / "quarantine").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symlink"):
        store.verify()
    assert list(outside.iterdir()) == []
