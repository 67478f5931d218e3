"""The on-disk store: what only a store on disk can get wrong (the contract: test_contracts.py)."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from incgraph.errors import ReadOnlyStoreError, StoreCorruptError, StoreError, StoreFullError
from incgraph.sentinels import MISSING
from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import (
    ENV_VAR,
    FileBlobStore,
    SqliteFile,
    SqliteIndex,
    Store,
    default_location,
    file_blobs,
    memory_store,
    open_store,
    sqlite_file,
    sqlite_index,
)
from incgraph.store.names import host_tag
from incgraph.store.schema import SCHEMA_VERSION

from .contract import BIG, assert_same, blob_value, dv, record


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = open_store(tmp_path / "store")
    yield made
    made.close()


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter and return its completed process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- opening ---------------------------------------------------------------------------


def test_open_store_lays_out_a_private_folder(tmp_path: Path) -> None:
    """open_store creates the folder (0700), the index (0600, WAL files too) and blob files 0600."""
    folder = tmp_path / "deep" / "store"
    with open_store(folder) as store:
        saved = store.save(record(1, 2), np.arange(BIG))
        blob_file = store.blobs.path_of(saved.data_version)
        assert blob_file is not None and blob_file.is_relative_to(folder / "blobs")
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in [
                folder,
                folder / "blobs",
                blob_file.parent,
                blob_file,
                *folder.glob("index.sqlite*"),
            ]
        }
    assert {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"} <= set(modes)
    for name, mode in modes.items():
        expected = 0o600 if "." in name else 0o700
        assert mode == expected, (name, oct(mode))


def test_open_store_returns_a_store_as_is(tmp_path: Path) -> None:
    """open_store(store) returns that very store."""
    store = memory_store()
    assert open_store(store) is store


def test_default_location_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a location the store is $INCGRAPH_STORE, else ./.incgraph under the cwd."""
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env-store"))
    with open_store() as store:
        assert store.path == tmp_path / "env-store"
        assert (tmp_path / "env-store" / "index.sqlite").is_file()
    monkeypatch.delenv(ENV_VAR)
    assert default_location() == Path.cwd() / ".incgraph"


def test_open_store_on_a_file_raises(tmp_path: Path) -> None:
    """A location that is a file, not a folder, raises StoreError naming it."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        open_store(tmp_path / "f")


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    """A new store's index carries the current schema version and the v1 tables."""
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"results", "blobs"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store written by a newer incgraph (higher schema version) raises StoreError saying so."""
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="upgrade incgraph"):
        open_store(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_index_file_names_the_file_and_fix(tmp_path: Path, damage: str) -> None:
    """An index that is garbage or truncated raises StoreCorruptError naming it and the fix."""
    with open_store(tmp_path) as store:
        store.save_many([(record(i, i), i) for i in range(500)])
    index = tmp_path / "index.sqlite"
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    if damage == "garbage":
        index.write_bytes(os.urandom(8192))
    else:
        index.write_bytes(index.read_bytes()[:1000])
    with pytest.raises(StoreCorruptError) as caught:
        open_store(tmp_path)
    assert str(index) in str(caught.value)
    assert "move it aside" in str(caught.value) and "recomputed" in str(caught.value)


# -- persistence -------------------------------------------------------------------------


def test_a_new_process_sees_saved_results(tmp_path: Path) -> None:
    """Results saved here are found and loaded by another process opening the same folder."""
    with open_store(tmp_path) as store:
        store.save(record(1, 10), {"small": [1, 2]})
        store.save(record(2, 20), np.arange(BIG))
    done = run_python(
        f"""
        import numpy as np, sys
        from incgraph.store import open_store
        with open_store(sys.argv[1]) as store:
            assert store.load(store.lookup("{dv(1)}")) == {{"small": [1, 2]}}
            assert (store.load(store.lookup("{dv(2)}")) == np.arange({BIG})).all()
        print("ok")
        """,
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_big_array_is_an_npy_file_numpy_can_open(store: Store) -> None:
    """A large array is stored as a .npy file that numpy.load reads back equal."""
    array = np.asfortranarray(np.arange(100_000, dtype=np.float64).reshape(400, 250))
    saved = store.save(record(1, 2), array)
    path = store.blobs.path_of(saved.data_version)
    assert path is not None and path.suffix == ".npy"
    np.testing.assert_array_equal(np.load(path), array)


def test_writing_to_a_mapped_array_leaves_the_file_alone(store: Store) -> None:
    """A big array loaded through a memory map is writable and writes do not reach the file."""
    array = np.arange(2_000_000, dtype=np.float64)
    saved = store.save(record(1, 2), array)
    path = store.blobs.path_of(saved.data_version)
    before = path.read_bytes()
    loaded = store.load(saved)
    loaded *= -1
    assert path.read_bytes() == before
    np.testing.assert_array_equal(store.load(saved), array)


def test_durable_store_round_trips(tmp_path: Path) -> None:
    """A store opened with durable=True (fsync everything) saves and loads as usual."""
    with open_store(tmp_path, durable=True) as store:
        saved = store.save(record(1, 2), np.arange(BIG))
        assert_same(store.load(saved), np.arange(BIG))


def test_records_page_through_a_long_index(store: Store) -> None:
    """records() pages through the index in creation order without skipping or repeating."""
    store.index.put_many([record(i, i, created=float(i % 13)) for i in range(100)])
    listed = list(store.index.records(page=7))
    assert len({rec.key for rec in listed}) == 100
    assert [rec.created for rec in listed] == sorted(rec.created for rec in listed)


def test_lookup_reads_no_blob(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """lookup and lookup_many consult the index only: no blob is read."""
    saved = store.save(record(1, 2), np.arange(BIG))

    def no_blob_io(*args: object) -> None:
        raise AssertionError("lookup read a blob")

    monkeypatch.setattr(FileBlobStore, "get", no_blob_io)
    monkeypatch.setattr(FileBlobStore, "_read_file", no_blob_io)
    assert store.lookup(saved.key) == saved
    assert store.lookup_many([saved.key]) == {saved.key: saved}


def test_stale_temp_files_lists_only_old_temporaries(store: Store) -> None:
    """stale_temp_files lists temporary files older than the cutoff and nothing else."""
    saved = store.save(record(1, 2), np.arange(BIG))
    folder = store.blobs.path_of(saved.data_version).parent
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    old = folder / f"{dv(2)[:2]}{'0' * 30}.{'d' * 32}-{host_tag()}-{dead}-1.tmp"
    fresh = folder / f"{dv(2)[:2]}{'0' * 30}.{'e' * 32}-{host_tag()}-{dead}-2.tmp"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.blobs.stale_temp_files(older_than=3600) == [old]


def test_invalid_data_version_is_refused(store: Store) -> None:
    """A data version that could escape the blob folder is refused with ValueError."""
    with pytest.raises(ValueError, match="data version"):
        store.save(record(1, 2).__class__("k" * 32, "../../etc/passwd", "n", "p", "c", "i"), 1)


# -- corruption ---------------------------------------------------------------------------


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("size", [BIG, 2_000_000])
def test_a_corrupt_blob_file_is_never_served(store: Store, size: int) -> None:
    """A flipped byte raises StoreCorruptError naming the file; it is dropped, never served."""
    saved = store.save(record(1, 2), np.arange(size // 8, dtype=np.float64))
    store.save(record(3, 2), np.arange(size // 8, dtype=np.float64))
    path = store.blobs.path_of(saved.data_version)
    flip_a_byte(path)
    with pytest.raises(StoreCorruptError, match=str(path)):
        store.load(saved)
    assert store.lookup(dv(1)) is MISSING and store.lookup(dv(3)) is MISSING
    assert not store.blobs.contains(saved.data_version) and not path.exists()
    with pytest.raises(KeyError):
        store.load(saved)
    resaved = store.save(record(1, 2), np.arange(size // 8, dtype=np.float64))
    assert_same(store.load(resaved), np.arange(size // 8, dtype=np.float64))


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_truncated_or_missing_blob_file_is_corrupt(store: Store, damage: str) -> None:
    """A blob file cut short or deleted raises StoreCorruptError and the record is dropped."""
    saved = store.save(record(1, 2), {"payload": b"x" * BIG})
    path = store.blobs.path_of(saved.data_version)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.unlink()
    with pytest.raises(StoreCorruptError):
        store.load(saved)
    assert store.lookup(saved.key) is MISSING


def test_a_corrupt_inline_blob_is_never_served(store: Store, tmp_path: Path) -> None:
    """A small value whose bytes in SQLite were altered raises StoreCorruptError and is dropped."""
    saved = store.save(record(1, 2), blob_value(1))
    conn = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    with conn:
        conn.execute("UPDATE blobs SET data = ? WHERE data_version = ?", (b"garbage", dv(2)))
    conn.close()
    with pytest.raises(StoreCorruptError, match="checksum"):
        store.load(saved)
    assert store.lookup(saved.key) is MISSING


def test_an_undecodable_blob_is_corrupt(store: Store, tmp_path: Path) -> None:
    """A blob whose bytes match their checksum but cannot be unpickled is corrupt, and dropped."""
    saved = store.save(record(1, 2), blob_value(1))
    conn = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    with conn:
        conn.execute(
            "UPDATE blobs SET data = ?, checksum = ? WHERE data_version = ?",
            (b"not a pickle", file_blobs.checksum([b"not a pickle"]), dv(2)),
        )
    conn.close()
    with pytest.raises(StoreCorruptError, match="cannot be decoded"):
        store.load(saved)
    assert not store.blobs.contains(dv(2))


def test_the_first_writer_of_a_data_version_wins(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of different bytes for one data version: the first row wins, the loser's
    file is deleted."""
    store.save(record(1, 2), np.zeros(BIG))
    first = store.blobs.path_of(dv(2))
    monkeypatch.setattr(FileBlobStore, "_rows", lambda self, dvs: {})  # the loser saw no row yet
    assert store.blobs.put(dv(2), np.ones(BIG)) == first.stat().st_size
    assert sorted(first.parent.iterdir()) == [first]
    assert_same(store.blobs.get(dv(2)), np.zeros(BIG))


# -- read-only, full disk -------------------------------------------------------------------


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    """A store opened read-only loads results but refuses every write with ReadOnlyStoreError."""
    with open_store(tmp_path) as store:
        saved = store.save(record(1, 2), np.arange(BIG))
    with open_store(tmp_path, read_only=True) as store:
        assert store.read_only
        assert_same(store.load(store.lookup(saved.key)), np.arange(BIG))
        for write in (
            lambda: store.save(record(3, 4), 1),
            lambda: store.save_many([(record(3, 4), 1)]),
            lambda: store.index.put(record(3, 4)),
            lambda: store.index.delete([saved.key]),
            lambda: store.blobs.put(dv(4), 1),
            lambda: store.blobs.delete(saved.data_version),
        ):
            with pytest.raises(ReadOnlyStoreError, match=r"read.only"):
                write()
    with open_store(tmp_path) as store:
        assert store.lookup(saved.key) == saved
        assert store.lookup(dv(3)) is MISSING


def test_read_only_open_of_a_missing_store_raises(tmp_path: Path) -> None:
    """Opening a folder with no store read-only raises StoreError and creates nothing."""
    with pytest.raises(StoreError, match="no incgraph store"):
        open_store(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def test_a_full_disk_while_writing_a_blob(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC writing a blob raises StoreFullError, leaves no temp file; the store still reads."""
    kept = store.save(record(1, 2), np.arange(BIG))

    def disk_full(fd: int, data: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_blobs, "write_all", disk_full)
    with pytest.raises(StoreFullError, match="full") as caught:
        store.save(record(3, 4), np.ones(BIG))
    assert caught.value.errno == errno.ENOSPC
    assert store.blobs.stale_temp_files(older_than=-60) == []
    assert store.lookup(dv(3)) is MISSING
    assert_same(store.load(store.lookup(kept.key)), np.arange(BIG))
    monkeypatch.undo()
    assert_same(store.load(store.save(record(3, 4), np.ones(BIG))), np.ones(BIG))


def test_a_full_database_raises_store_full(store: Store) -> None:
    """SQLite running out of room (SQLITE_FULL) raises StoreFullError and the store still reads."""
    kept = store.save(record(1, 2), "kept")
    conn = store.index.file.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreFullError):
        store.index.put_many([record(i, i, inputs={"x": "y" * 1000}) for i in range(10, 2000)])
    assert store.lookup(kept.key) == kept
    assert store.load(kept) == "kept"


# -- concurrency and processes ----------------------------------------------------------------


def test_busy_database_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that finds the database locked is retried until it succeeds."""
    db = SqliteFile(tmp_path / "index.sqlite")
    index = SqliteIndex(db)
    db.connection()  # creates the schema before writes start failing
    real = SqliteFile._transaction
    attempts = []

    def flaky(conn: sqlite3.Connection, operation: object) -> object:
        attempts.append(1)
        if len(attempts) <= 3:
            raise sqlite3.OperationalError("database is locked")
        return real(conn, operation)

    monkeypatch.setattr(SqliteFile, "_transaction", staticmethod(flaky))
    index.put(record(1, 2))
    assert len(attempts) == 4
    assert index.get(dv(1)).data_version == dv(2)


def test_a_lock_held_too_long_is_reported(tmp_path: Path) -> None:
    """A write lock held past lock_timeout raises StoreError, not a raw sqlite3 error."""
    db = SqliteFile(tmp_path / "index.sqlite", busy_timeout=0.01, lock_timeout=0.05)
    index = SqliteIndex(db)
    index.put(record(1, 1))
    holder = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="stayed locked"):
            index.put(record(2, 2))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert index.get(dv(1)).data_version == dv(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(store: Store) -> None:
    """After fork the child uses a new SQLite connection and can read and write the store."""
    store.save(record(1, 2), "parent")
    parent_conn = store.index.file.connection()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            own = store.index.file.connection() is not parent_conn
            found = store.load(store.lookup(dv(1))) == "parent"
            store.save(record(3, 4), "child")
            code = 0 if own and found else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.load(store.lookup(dv(3))) == "child"
    assert store.index.file.connection() is parent_conn


WRITER = """
import sys
import numpy as np
from incgraph.store import open_store, Record

def key(i): return f"{i:032x}"
def version(i): return f"{i:032x}"[::-1]
def value(i):
    if i % 3 == 0:
        return {"i": i}
    return np.arange(5_000 + (i % 7) * 40_000, dtype=np.float64) * i

store = open_store(sys.argv[1])
start, stop, tag = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print("ready", flush=True)
sys.stdin.readline()  # "go": lets a test start several writers at the same instant
for i in range(start, stop):
    if i % 10 == 9:
        pair = (i, i + 100_000)
        store.save_many([(Record(key(j), version(j), tag, "w", "c", "i"), value(j)) for j in pair])
    else:
        store.save(Record(key(i), version(i), tag, "w", "c", "i"), value(i))
    print(i, flush=True)
"""


def expected_value(i: int) -> object:
    if i % 3 == 0:
        return {"i": i}
    return np.arange(5_000 + (i % 7) * 40_000, dtype=np.float64) * i


def check_every_record_loads(folder: Path) -> int:
    """Open the store and check every listed record loads its expected value; return the count."""
    with open_store(folder) as store:
        count = 0
        for rec in store.index.records():
            assert_same(store.load(rec), expected_value(int(rec.key, 16)))
            count += 1
    return count


@pytest.mark.slow
def test_a_killed_writer_leaves_a_readable_store(tmp_path: Path) -> None:
    """SIGKILLed mid-save, a writer leaves a store that opens and serves only complete results."""
    acknowledged: list[int] = []
    start = 0
    for kill_after in (1, 4, 9, 17):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(start), str(start + 10_000), "w"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert writer.stdout.readline() == "ready\n"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        seen = [int(writer.stdout.readline()) for _ in range(kill_after)]
        os.kill(writer.pid, signal.SIGKILL)  # somewhere inside the next save
        writer.wait(timeout=30)
        writer.stdin.close()
        writer.stdout.close()
        acknowledged += seen
        start = seen[-1] + 2
    with open_store(tmp_path) as store:
        for i in acknowledged:
            assert store.lookup(f"{i:032x}") is not MISSING, i
    assert check_every_record_loads(tmp_path) >= len(acknowledged)


def test_two_processes_write_one_store_at_once(tmp_path: Path) -> None:
    """Two processes saving overlapping results concurrently both succeed; every row is there."""
    open_store(tmp_path).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), "0", "150", tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:  # both are waiting: start them together
        writer.stdin.write("go\n")
        writer.stdin.flush()
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    assert "locked" not in "".join(errors)
    with open_store(tmp_path) as store:
        keys = [f"{i:032x}" for i in range(150)] + [
            f"{i + 100_000:032x}" for i in range(9, 150, 10)
        ]
        assert len(store.lookup_many(keys)) == len(keys)
    assert check_every_record_loads(tmp_path) == len(keys)


def test_sqlite_file_closes_every_threads_connection(tmp_path: Path) -> None:
    """SqliteFile.close closes the connections of all threads; the next use opens a new one."""
    db = SqliteFile(tmp_path / "index.sqlite")
    first = db.connection()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")
    assert db.connection() is not first
    assert sqlite_file.SqliteFile is SqliteFile


def test_put_many_spans_several_transactions(tmp_path: Path) -> None:
    """put_many and delete of more rows than one chunk write every row, in order."""
    store = open_store(tmp_path / "chunked", settings=DEFAULT_SETTINGS.replace(index_put_chunk=7))
    store.index.put_many([record(i, i, created=float(i)) for i in range(50)])
    assert [rec.key for rec in store.index.records()] == [dv(i) for i in range(50)]
    store.index.delete(dv(i) for i in range(0, 50, 2))
    assert len(store.index) == 25
    store.close()


def test_save_many_writes_blob_and_index_rows_in_one_transaction_per_chunk(
    tmp_path: Path,
) -> None:
    """save_many of 20 results in chunks of 8 takes three write transactions, and all load."""
    store = open_store(tmp_path / "chunked", settings=DEFAULT_SETTINGS.replace(index_put_chunk=8))
    statements: list[str] = []
    store.index.file.connection().set_trace_callback(statements.append)
    saved = store.save_many([(record(i, i + 100), {"i": i}) for i in range(20)])
    store.index.file.connection().set_trace_callback(None)
    assert sum(sql == "BEGIN IMMEDIATE" for sql in statements) == 3
    assert [store.load(store.lookup(rec.key)) for rec in saved] == [{"i": i} for i in range(20)]
    assert all(rec.size > 0 and rec.created > 0 for rec in saved)
    store.close()


def test_a_failed_index_write_keeps_no_inline_blob_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the index rows cannot be written, the inline blob rows of the same chunk roll back."""

    def fail(self: SqliteIndex, conn: sqlite3.Connection, rows: list[object]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteIndex, "insert_rows", fail)
    with pytest.raises(StoreError):
        store.save_many([(record(i, i + 100), [i]) for i in range(5)])
    assert not any(store.blobs.contains(dv(i + 100)) for i in range(5))
    assert store.lookup(dv(0)) is MISSING


def test_a_read_only_store_refuses_a_corrupt_blob_without_dropping_it(tmp_path: Path) -> None:
    """Read-only, a corrupt blob still raises StoreCorruptError, and nothing is deleted."""
    with open_store(tmp_path) as store:
        saved = store.save(record(1, 2), np.arange(BIG))
        path = store.blobs.path_of(saved.data_version)
    flip_a_byte(path)
    with open_store(tmp_path, read_only=True) as store:
        with pytest.raises(StoreCorruptError, match="not served"):
            store.load(saved)
        assert store.lookup(saved.key) == saved
    assert path.exists()


def test_transient_disk_io_errors_are_retried_then_reported(tmp_path: Path) -> None:
    """SQLite's WAL 'disk I/O error' race is retried; an error that persists becomes a StoreError."""
    import sqlite3

    from incgraph.errors import StoreError
    from incgraph.store.sqlite_file import SqliteFile

    file = SqliteFile(tmp_path / "index.sqlite")
    calls = {"n": 0}

    def flaky(conn: sqlite3.Connection) -> str:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("disk I/O error")
        return "ok"

    assert file.write(flaky) == "ok" and calls["n"] == 3

    def broken(conn: sqlite3.Connection) -> str:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(StoreError, match="disk I/O error"):
        file.write(broken)
    assert file.io_retries == DEFAULT_SETTINGS.sqlite_io_retries >= 3
    file.close()


def test_io_retries_come_from_the_settings(tmp_path: Path) -> None:
    """With sqlite_io_retries=1 a second transient I/O error in a row is reported."""
    import sqlite3

    from incgraph.errors import StoreError

    with open_store(
        tmp_path / "s", settings=DEFAULT_SETTINGS.replace(sqlite_io_retries=1)
    ) as store:
        file = store.index.file
        calls = {"n": 0}

        def flaky(conn: sqlite3.Connection) -> str:
            calls["n"] += 1
            if calls["n"] <= 2:
                raise sqlite3.OperationalError("disk I/O error")
            return "ok"

        with pytest.raises(StoreError, match="disk I/O error"):
            file.write(flaky)
        assert calls["n"] == 2


def test_inputs_json_is_compact_escaped_and_round_trips() -> None:
    """The index writes inputs as compact JSON, escaping any name, and reads back the same dict."""
    import json

    inputs = {"x": "a" * 32, 'naïve "quoted"\n': "b" * 32, "": "c"}
    text = sqlite_index._dumps(inputs)
    assert text == json.dumps(inputs, separators=(",", ":"))
    assert json.loads(text) == inputs
    with pytest.raises(TypeError, match="must be a str"):
        sqlite_index._dumps({"x": object()})


def test_a_thread_opening_its_connection_keeps_the_other_threads_locks(tmp_path: Path) -> None:
    """Opening a connection in one thread never drops the SQLite locks the other threads'
    connections hold (closing any descriptor of the file would): another process closing its
    connection still sees this one open, so it leaves the WAL in place rather than
    checkpointing and deleting it under this process's feet."""
    import threading

    path = tmp_path / "index.sqlite"
    db = SqliteFile(path)
    db.write(lambda conn: conn.execute("INSERT INTO pins (key, created) VALUES ('k', 1.0)"))
    opened = threading.Thread(target=db.connection)  # a second thread's first connection
    opened.start()
    opened.join()
    probe = textwrap.dedent(
        f"""
        import sqlite3
        conn = sqlite3.connect({str(path)!r})
        conn.execute("SELECT count(*) FROM pins").fetchone()
        conn.close()
        """
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
    try:
        assert Path(f"{path}-wal").exists()  # the probe was not the last connection
        assert db.connection().execute("SELECT key FROM pins").fetchall() == [("k",)]
    finally:
        db.close()
