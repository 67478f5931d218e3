"""On disk: verify and quarantine, gc of stray files, HMAC signing, permissions, schema upgrade."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from incgraph.errors import ReadOnlyStoreError, StoreCorruptError, StoreError
from incgraph.sentinels import MISSING
from incgraph.store import Store, open_store
from incgraph.store.codecs import checksum
from incgraph.store.names import host_tag
from incgraph.store.schema import MIGRATIONS, SCHEMA_VERSION
from incgraph.store.signing import HMAC_ENV_VAR

from .contract import BIG, assert_same, blob_value, dv, record


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = open_store(tmp_path / "store")
    yield made
    made.close()


def sql(store: Store, statement: str, *params: object) -> None:
    """Run one statement on the store's index file from a separate connection."""
    conn = sqlite3.connect(store.path / "index.sqlite")
    with conn:
        conn.execute(statement, params)
    conn.close()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# -- verify ----------------------------------------------------------------------------------


def test_verify_quarantines_a_corrupt_blob_file(store: Store) -> None:
    """A flipped byte in a blob file: its rows go, its file moves to quarantine/, never served."""
    saved = store.save(record(1, 2), np.arange(BIG))
    store.save(record(3, 2), np.arange(BIG))
    sound = store.save(record(4, 5), np.ones(BIG))
    path = store.blobs.path_of(saved.data_version)
    flip_a_byte(path)
    report = store.verify()
    (problem,) = report.problems
    assert (problem.kind, problem.name) == ("blob", dv(2)) and "checksum" in problem.reason
    assert sorted(problem.keys) == [dv(1), dv(3)]
    moved = Path(problem.moved_to)
    assert moved.parent == store.path / "quarantine" and moved.exists() and not path.exists()
    assert store.lookup(dv(1)) is MISSING and store.lookup(dv(3)) is MISSING
    assert_same(store.load(sound), np.ones(BIG))
    assert (report.blobs, report.results) == (2, 3)
    assert store.verify().ok


def test_verify_quarantines_a_corrupt_inline_blob(store: Store) -> None:
    """Altered inline bytes are written to a quarantine file and the blob and rows dropped."""
    store.save(record(1, 2), blob_value(1))
    sql(store, "UPDATE blobs SET data = ? WHERE data_version = ?", b"garbage", dv(2))
    (problem,) = store.verify().problems
    assert Path(problem.moved_to).read_bytes() == b"garbage"
    assert not store.blobs.contains(dv(2)) and store.lookup(dv(1)) is MISSING


def test_verify_reports_a_missing_or_short_file(store: Store) -> None:
    """A blob file that is gone or cut short is reported, and its result forgotten."""
    store.save(record(1, 2), np.arange(BIG))
    store.save(record(3, 4), np.ones(BIG))
    store.blobs.path_of(dv(2)).unlink()
    path = store.blobs.path_of(dv(4))
    path.write_bytes(path.read_bytes()[:10])
    reasons = sorted(p.reason for p in store.verify().problems)
    assert reasons == [f"its file holds 10 bytes, not {BIG * 8 + 128}", "its file is missing"]
    assert len(store.index) == 0


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("inputs", "{not json", "inputs"),
        ("inputs", '{"a": 1}', "inputs"),
        ("created", "yesterday", "created"),
        ("duration", -1.0, "duration"),
        ("data_version", "../../x", "data version"),
        ("node", b"\x01", "node"),
    ],
)
def test_verify_quarantines_a_malformed_index_row(
    store: Store, column: str, value: object, reason: str
) -> None:
    """A malformed index row is reported, appended to quarantine/index-rows.jsonl and deleted."""
    store.save(record(1, 2), "ok")
    store.save(record(3, 4), "bad")
    sql(store, f"UPDATE results SET {column} = ? WHERE key = ?", value, dv(3))
    report = store.verify()
    (problem,) = report.problems
    assert (problem.kind, problem.name) == ("index", dv(3)) and reason in problem.reason
    lines = (store.path / "quarantine" / "index-rows.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["row"][0] == dv(3)
    assert [rec.key for rec in store.index.records()] == [dv(1)]
    assert store.load(store.lookup(dv(1))) == "ok"


def test_verify_without_quarantine_touches_nothing(store: Store) -> None:
    """verify(quarantine=False) reports problems and leaves rows and files where they are."""
    saved = store.save(record(1, 2), np.arange(BIG))
    path = store.blobs.path_of(saved.data_version)
    flip_a_byte(path)
    report = store.verify(quarantine=False)
    assert not report.ok and not report.quarantined and report.problems[0].moved_to is None
    assert path.exists() and store.lookup(dv(1)) == saved
    assert not (store.path / "quarantine").exists()


def test_verify_of_a_read_only_store_only_reports(store: Store) -> None:
    """A read-only store is verified without quarantining anything."""
    saved = store.save(record(1, 2), np.arange(BIG))
    flip_a_byte(store.blobs.path_of(saved.data_version))
    with open_store(store.path, read_only=True) as read_only:
        report = read_only.verify()
        assert not report.ok and not report.quarantined
    assert store.lookup(dv(1)) == saved


def test_verify_reports_a_damaged_index_file(store: Store) -> None:
    """Damaged SQLite pages are reported as a problem of the file, naming it and the fix."""
    store.save_many([(record(i, i), "x" * 3000) for i in range(200)])
    store.close()
    index = store.path / "index.sqlite"
    data = bytearray(index.read_bytes())
    page = 4096
    for at in range(3 * page, len(data) - page, 7 * page):
        data[at + 100 : at + 400] = os.urandom(300)
    index.write_bytes(bytes(data))
    try:
        with open_store(store.path) as damaged:
            report = damaged.verify()
    except StoreCorruptError as exc:  # damage that SQLite notices on open is as good
        message = str(exc)
    else:
        (problem,) = report.problems
        assert problem.kind == "file"
        message = problem.reason
    assert str(index) in message and "mv " in message


def test_verify_counts_orphans_and_temporaries_without_calling_them_problems(
    store: Store,
) -> None:
    """Orphan blobs and files and temporary files are counted; they are gc's to reclaim."""
    store.save(record(1, 2), "kept")
    store.blobs.put(dv(9), "orphan row")
    folder = store.path / "blobs" / "ab"
    folder.mkdir()
    (folder / f"{'ab' * 16}.{'0' * 16}.pkl").write_bytes(b"orphan file")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (folder / f"{'ab' * 16}.{'f' * 32}-{host_tag()}-{dead}-2.tmp").write_bytes(b"torn")
    report = store.verify()
    assert report.ok
    assert (report.orphan_blobs, report.orphan_files, report.temp_files) == (1, 1, 1)


# -- gc of stray files --------------------------------------------------------------------------


def test_gc_removes_old_orphan_and_temporary_files(store: Store) -> None:
    """Blob files no row names and temporary files are removed once older than grace."""
    saved = store.save(record(1, 2), np.arange(BIG))
    folder = store.path / "blobs" / "ab"
    folder.mkdir()
    orphan = folder / f"{'ab' * 16}.{'0' * 16}.npy"
    temp = folder / f"{'ab' * 16}.{'f' * 32}-1-2.tmp"
    for path in (orphan, temp):
        path.write_bytes(b"x" * 100)
    assert store.gc(grace=3600).files_removed == []
    old = time.time() - 7200
    for path in (orphan, temp):
        os.utime(path, (old, old))
    report = store.gc(grace=3600)
    assert sorted(report.files_removed) == sorted([orphan, temp])
    assert report.bytes_freed == 200 and not orphan.exists() and not temp.exists()
    assert_same(store.load(saved), np.arange(BIG))


def test_gc_of_a_read_only_store_refuses_unless_dry(store: Store) -> None:
    """A read-only store can only be gc'ed as a dry run."""
    store.save(record(1, 2), 1)
    with open_store(store.path, read_only=True) as read_only:
        with pytest.raises(ReadOnlyStoreError, match="dry_run"):
            read_only.gc(keep_runs=0)
        assert read_only.gc(keep_runs=0, grace=0, dry_run=True).removed[0].key == dv(1)


# -- signing ------------------------------------------------------------------------------------


def test_signed_blobs_load_and_tampered_ones_are_refused(tmp_path: Path) -> None:
    """With a key, blobs carry an HMAC; rewritten bytes with a matching checksum are refused."""
    with open_store(tmp_path, hmac_key="s3cret") as store:
        small = store.save(record(1, 2), {"a": 1})
        big = store.save(record(3, 4), np.arange(BIG))
        assert store.load(small) == {"a": 1}
        path = store.blobs.path_of(dv(4))
        forged = np.full(BIG, 7).tobytes()
        header = path.read_bytes()[: path.stat().st_size - len(forged)]
        path.write_bytes(header + forged)
        sql(store, "UPDATE blobs SET checksum = ? WHERE data_version = ?",
            checksum([header + forged]), dv(4))  # fmt: skip
        os.rename(path, path.with_name(f"{dv(4)}.{checksum([header + forged])}.npy"))
        with pytest.raises(StoreCorruptError, match=f"{dv(4)}.*HMAC signature does not match"):
            store.load(big)
        assert store.lookup(dv(3)) is MISSING and store.load(small) == {"a": 1}


def test_unsigned_or_wrongly_signed_blobs_are_refused(tmp_path: Path) -> None:
    """A store written without a key (or with another) is refused blob by blob under a key."""
    with open_store(tmp_path) as plain:
        plain.save(record(1, 2), "unsigned")
    with open_store(tmp_path, hmac_key="k1") as signed:
        with pytest.raises(StoreCorruptError, match="no HMAC signature"):
            signed.load(dv(2))
        signed.save(record(1, 2), "signed")
    with open_store(tmp_path, hmac_key="k2") as other, pytest.raises(StoreCorruptError):
        other.load(dv(2))
    with open_store(tmp_path, hmac_key="k1") as signed:
        assert signed.lookup(dv(1)) is MISSING  # dropped when refused under k2


def test_the_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$INCGRAPH_HMAC_KEY turns signing on; verify quarantines blobs signed with nothing."""
    with open_store(tmp_path) as plain:
        plain.save(record(1, 2), blob_value("unsigned"))
    monkeypatch.setenv(HMAC_ENV_VAR, "from-env")
    with open_store(tmp_path) as signed:
        (problem,) = signed.verify().problems
        assert "no HMAC signature" in problem.reason
        saved = signed.save(record(1, 2), "signed now")
        assert signed.load(saved) == "signed now" and signed.verify().ok


# -- permissions ----------------------------------------------------------------------------------

PERMISSIONS = """
import os, stat, sys
import numpy as np
from incgraph import ProcessGraph, Processor
from incgraph.store import open_store, Record

os.umask(int(sys.argv[2], 8))

class Big(Processor):
    def process(self, n: int) -> np.ndarray:
        return np.arange(n)

store = open_store(sys.argv[1])
graph = ProcessGraph(store=store)
n = graph.add_constant_node(0, "n", value=100_000)
graph.add_node(1, Big, {"n": n})
small = graph.add_node(2, Big, {"n": 3})
graph.run_upto([graph.nodes[1], small])
store.save(Record("f" * 32, "e" * 32, "n", "p", "c", "i"), "bad")
os.truncate(store.blobs.path_of(graph.last_run.statuses[graph.nodes[1]].data_version), 1)
store.verify()  # makes quarantine/
bad = []
for root, dirs, files in os.walk(sys.argv[1]):
    for name in dirs + files:
        path = os.path.join(root, name)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            bad.append((path, oct(mode)))
names = {os.path.basename(p) for p, _, _ in os.walk(sys.argv[1])}
files = os.listdir(sys.argv[1])
print(sorted(files), bad)
"""


@pytest.mark.parametrize("umask", ["000", "022"])
def test_every_store_file_is_private_to_its_user(tmp_path: Path, umask: str) -> None:
    """Folders are 0700 and files 0600 (index, WAL, SHM, blobs, quarantine) under any umask."""
    folder = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PERMISSIONS), str(folder), umask],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed, bad = done.stdout.strip().split("] ", 1)
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "blobs", "quarantine"):
        assert repr(name) in listed
    assert bad == "[]", bad
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# -- schema ---------------------------------------------------------------------------------------


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    """A store written at schema version 1 opens, gains the ledger tables and keeps its rows."""
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO results VALUES (?, ?, 'n', 'p', 'c', 'i', '{}', 1.0, 0.0, 0)", (dv(1), dv(2))
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="open it once"):
        open_store(tmp_path, read_only=True)
    with open_store(tmp_path) as store:
        assert store.lookup(dv(1)).data_version == dv(2)
        store.run_log().close()
        assert len(store.runs()) == 1
        version = store.index.file.connection().execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 4


def test_the_run_log_costs_one_insert(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing a run log of thousands of keys is one write transaction with two blobs."""
    writes: list[object] = []
    real = store.index.file.write
    monkeypatch.setattr(
        store.index.file, "write", lambda op, **kw: writes.append(op) or real(op, **kw)
    )
    with store.run_log() as log:
        log.hits += [dv(i) for i in range(5000)]
        log.written += [dv(i) for i in range(5000, 6000)]
    assert len(writes) == 1
    (blob_bytes,) = (
        store.index.file.connection()
        .execute("SELECT length(hit_keys) + length(written_keys) FROM runs")
        .fetchone()
    )
    assert blob_bytes == 2 + 16 * 6000


def test_a_read_only_store_logs_no_runs(store: Store) -> None:
    """A run log of a read-only store records nothing and raises nothing."""
    store.save(record(1, 2), 1)
    with open_store(store.path, read_only=True) as read_only:
        with read_only.run_log() as log:
            log.hit_many([dv(1)])
        assert read_only.runs() == []
        with pytest.raises(ReadOnlyStoreError):
            read_only.pin(dv(1))
