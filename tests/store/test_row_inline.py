"""Schema version 3: a small result lives in its own ``results`` row, and everything knows it."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from incgraph.errors import StoreCorruptError, StoreError
from incgraph.sentinels import MISSING
from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import Store, open_store
from incgraph.store.codecs import checksum_of, dumps
from incgraph.store.schema import MIGRATIONS, SCHEMA_VERSION
from incgraph.store.sqlite_index import SqliteIndex

from .contract import BIG, blob_value, dv, record


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = open_store(tmp_path / "store")
    yield made
    made.close()


def raw(store: Store, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``query`` read with a plain sqlite3 connection (what is really on disk)."""
    assert store.path is not None
    conn = sqlite3.connect(store.path / "index.sqlite")
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def sql(store: Store, statement: str, *params: Any) -> None:
    """Change the store's file behind its back (damage, old layouts)."""
    assert store.path is not None
    conn = sqlite3.connect(store.path / "index.sqlite")
    with conn:
        conn.execute(statement, params)
    conn.close()


def held(store: Store, key: int) -> tuple[Any, ...]:
    """(checksum, data, typeof(data), size) of the results row of ``key``."""
    (row,) = raw(
        store, "SELECT checksum, data, typeof(data), size FROM results WHERE key = ?", dv(key)
    )
    return row


def blob_count(store: Store) -> int:
    return int(raw(store, "SELECT count(*) FROM blobs")[0][0])


def pickled_of_size(size: int) -> str:
    """A str whose pickle (protocol 5) is exactly ``size`` bytes."""
    text = "x" * size
    while len(dumps(text)) > size:
        text = text[:-1]
    assert len(dumps(text)) == size
    return text


# -- the write path -------------------------------------------------------------------------------


def test_a_small_value_is_written_into_its_row_and_gets_no_blob_row(store: Store) -> None:
    """The pickle, its xxh3 checksum and its size are in the results row; blobs stays empty."""
    value = {"y": ("v", 3), "index": 3}
    saved = store.save(record(1, 2), value)
    data = dumps(value)
    assert held(store, 1) == (checksum_of(data), data, "blob", len(data))
    assert blob_count(store) == 0
    assert saved.size == len(data) and saved.created > 0
    assert store.load(saved) == value and store.load(dv(2)) == value


def test_the_limit_is_at_most_one_kibibyte_of_pickle(store: Store) -> None:
    """A pickle of exactly row_inline_limit_bytes is kept in its row; one byte more is a blob."""
    limit = DEFAULT_SETTINGS.row_inline_limit_bytes
    at, over = pickled_of_size(limit), pickled_of_size(limit + 1)
    saved = store.save_many([(record(1, 2), at), (record(3, 4), over)])
    assert [rec.size for rec in saved] == [limit, limit + 1]
    assert held(store, 1)[2] == "blob" and held(store, 3)[2] == "null"
    assert raw(store, "SELECT data_version FROM blobs") == [(dv(4),)]
    assert [store.load(rec) for rec in saved] == [at, over]


def test_bytes_arrays_and_larger_values_go_as_before(store: Store) -> None:
    """Small bytes, small arrays, mid-sized and big values are blobs; their rows hold nothing."""
    values = [b"tiny", np.arange(4), blob_value(1), np.arange(BIG)]
    saved = store.save_many([(record(i, 10 + i), v) for i, v in enumerate(values)])
    assert all(held(store, i)[2] == "null" for i in range(4))
    assert blob_count(store) == 4
    np.testing.assert_array_equal(store.load(saved[1]), np.arange(4))
    assert store.load(saved[0]) == b"tiny" and store.load(saved[2]) == blob_value(1)


def test_a_signed_store_keeps_small_values_as_signed_blobs(tmp_path: Path) -> None:
    """With a signer nothing is kept in rows: a small value is a blob carrying its HMAC tag."""
    with open_store(tmp_path, hmac_key="k") as signed:
        saved = signed.save(record(1, 2), {"a": 1})
        assert held(signed, 1)[2] == "null"
        assert raw(signed, "SELECT tag IS NOT NULL FROM blobs") == [(1,)]
        assert signed.load(saved) == {"a": 1} and signed.verify().ok


def test_a_mixed_batch_keeps_order_and_the_last_row_of_a_repeated_key(store: Store) -> None:
    """Row-held and blob results in one save_many: records in order; a key saved twice in the
    batch keeps its last value, whichever way each was stored."""
    items = [
        (record(1, 11), "small"),
        (record(2, 12), np.arange(BIG)),
        (record(1, 13), blob_value("mid")),  # key 1 again: now a blob
        (record(3, 14), 3),
        (record(3, 15), 4),  # key 3 again: both kept in rows
    ]
    saved = store.save_many(items)
    assert [rec.key for rec in saved] == [dv(i) for i in (1, 2, 1, 3, 3)]
    assert store.lookup(dv(1)).data_version == dv(13) and held(store, 1)[2] == "null"
    assert store.load(store.lookup(dv(1))) == blob_value("mid")
    assert store.lookup(dv(3)).data_version == dv(15) and store.load(dv(15)) == 4


def test_a_failed_index_write_leaves_no_row_and_no_bytes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and their bytes are one transaction: a failure commits neither."""

    def fail(self: SqliteIndex, conn: sqlite3.Connection, rows: list[object]) -> None:
        conn.executemany(
            "INSERT INTO results (key, data_version, node, processor, code_version, "
            "init_version, inputs, created, duration, size, checksum, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[:2],
        )
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteIndex, "insert_rows", fail)
    with pytest.raises(StoreError):
        store.save_many([(record(i, i + 100), [i]) for i in range(5)])
    assert raw(store, "SELECT count(*) FROM results") == [(0,)]


def test_the_last_writer_of_a_key_wins_with_its_own_bytes(tmp_path: Path) -> None:
    """Two store handles (as two processes) save one key: the last row stands and loads."""
    with open_store(tmp_path) as first, open_store(tmp_path) as second:
        first.save(record(1, 2), "first")
        second.save(record(1, 3), "second")
        assert first.lookup(dv(1)).data_version == dv(3)
        assert first.load(first.lookup(dv(1))) == "second"
        with pytest.raises(KeyError):  # the replaced row held the only copy of dv 2
            first.load(dv(2))


# -- the read path --------------------------------------------------------------------------------


def test_altered_row_bytes_are_never_served_and_their_rows_go(store: Store) -> None:
    """Bytes that fail their checksum raise StoreCorruptError; every row of that dv is dropped."""
    saved = store.save(record(1, 2), {"small": 1})
    store.save(record(3, 2), {"small": 1})
    sql(store, "UPDATE results SET data = ? WHERE key = ?", b"garbage", dv(1))
    with pytest.raises(StoreCorruptError, match=r"checksum.*recomputed"):
        store.load(saved)
    assert store.lookup(dv(1)) is MISSING and store.lookup(dv(3)) is MISSING


def test_row_bytes_that_do_not_unpickle_are_corrupt(store: Store) -> None:
    """Bytes matching their checksum that are no pickle raise StoreCorruptError, never a value."""
    saved = store.save(record(1, 2), {"small": 1})
    sql(
        store,
        "UPDATE results SET data = ?, checksum = ? WHERE key = ?",
        b"not a pickle",
        checksum_of(b"not a pickle"),
        dv(1),
    )
    with pytest.raises(StoreCorruptError, match="cannot be decoded"):
        store.load(saved)
    assert store.lookup(dv(1)) is MISSING


def test_a_read_only_store_refuses_bad_row_bytes_and_keeps_the_row(tmp_path: Path) -> None:
    """Read-only, bad row bytes raise StoreCorruptError saying so, and nothing is deleted."""
    with open_store(tmp_path) as store:
        saved = store.save(record(1, 2), [1, 2])
        sql(store, "UPDATE results SET checksum = ? WHERE key = ?", "0" * 16, dv(1))
    with open_store(tmp_path, read_only=True) as read_only:
        with pytest.raises(StoreCorruptError, match="not served"):
            read_only.load(saved)
        assert read_only.lookup(dv(1)) is not MISSING


def test_a_signed_store_refuses_bytes_kept_in_rows(tmp_path: Path) -> None:
    """Rows are never signed: opened with a key, a row-held result is refused and forgotten."""
    with open_store(tmp_path) as plain:
        saved = plain.save(record(1, 2), "unsigned")
    with open_store(tmp_path, hmac_key="k") as signed:
        (problem,) = signed.verify(quarantine=False).problems
        assert problem.kind == "index" and "no HMAC signature" in problem.reason
        with pytest.raises(StoreCorruptError, match="no HMAC signature"):
            signed.load(saved)
        assert signed.lookup(dv(1)) is MISSING


def test_row_bytes_are_served_when_a_stale_file_row_names_the_same_data_version(
    tmp_path: Path,
) -> None:
    """A blob row whose file is gone does not hide a row's own bytes: load and verify keep it."""
    with open_store(tmp_path) as store:
        store.save(record(1, 2), np.arange(BIG))
        assert store.blobs.path_of(dv(2)) is not None
        store.blobs.path_of(dv(2)).unlink()
        mine = store.save(record(3, 2), "small value, same data version")
        report = store.verify()
        assert [(p.kind, p.name, p.keys) for p in report.problems] == [("blob", dv(2), (dv(1),))]
        assert store.lookup(dv(1)) is MISSING and store.lookup(dv(3)) is not MISSING
        assert store.load(mine) == "small value, same data version" and store.verify().ok


# -- a second key: the ForEach memo -----------------------------------------------------------------


def test_put_sharing_data_copies_row_bytes_and_shares_blobs(store: Store) -> None:
    """A second row for a row-held result gets its own copy; for a blob, it holds nothing."""
    first = store.save(record(1, 2), {"join": [1, 2]})
    blob = store.save(record(3, 4), blob_value("join"))
    index = store.index
    assert isinstance(index, SqliteIndex)
    index.put_sharing_data([record(5, 2, size=first.size), record(6, 4, size=blob.size)])
    assert held(store, 5) == held(store, 1)
    assert held(store, 6)[2] == "null"
    index.delete([dv(1), dv(3)])
    assert store.load(store.lookup(dv(5))) == {"join": [1, 2]}
    assert store.load(store.lookup(dv(6))) == blob_value("join")
    assert store.verify().ok


def test_put_sharing_data_may_replace_the_row_it_copies_from(store: Store) -> None:
    """Re-putting the key whose row holds the bytes keeps them (the copy is read first)."""
    saved = store.save(record(1, 2), "kept")
    index = store.index
    assert isinstance(index, SqliteIndex)
    index.put_sharing_data([saved])
    assert held(store, 1)[2] == "blob" and store.load(saved) == "kept"


# -- records() and the query plans ------------------------------------------------------------------


def test_queries_use_the_indexes_that_remain(store: Store) -> None:
    """latest_* use results_node_created and a row's bytes are found by results_data_version;
    results_created is gone."""
    store.save_many([(record(i, i, node=f"n{i % 3}"), i) for i in range(10)])
    conn = store.index.file.connection()  # type: ignore[attr-defined]
    from incgraph.store import sqlite_index

    plans = {
        name: " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", args))
        for name, query, args in [
            ("latest", sqlite_index._LATEST, ("n1",)),
            ("latest_many", sqlite_index._LATEST_MANY, (json.dumps(["n1", "n2"]),)),
            ("row_data", sqlite_index._ROW_DATA, (dv(3),)),
        ]
    }
    assert "results_node_created" in plans["latest"], plans
    assert "results_node_created" in plans["latest_many"], plans
    assert "results_data_version" in plans["row_data"], plans
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "results_created" not in names


def test_records_are_in_creation_order_across_pages(store: Store) -> None:
    """records() reads rowid pages and sorts by (created, rowid): out-of-order times, ties kept."""
    times = [5.0, 1.0, 3.0, 1.0, 2.0, 5.0, 0.5]
    store.save_many([(record(i, i, created=t), i) for i, t in enumerate(times)])
    index = store.index
    assert isinstance(index, SqliteIndex)
    order = sorted(range(len(times)), key=lambda i: (times[i], i))
    assert [rec.key for rec in index.records(page=2)] == [dv(i) for i in order]


def test_records_survive_a_created_that_is_not_a_number(store: Store) -> None:
    """A damaged created (text) does not break the listing: SQLite's order, numbers first."""
    store.save_many([(record(i, i, created=float(10 - i)), i) for i in range(3)])
    sql(store, "UPDATE results SET created = 'yesterday' WHERE key = ?", dv(2))
    assert [rec.key for rec in store.index.records()] == [dv(1), dv(0), dv(2)]


# -- maintenance on a mixed store -------------------------------------------------------------------


def mixed(store: Store) -> list[Any]:
    """Row-held, blob-inline and file results (two rows of one row-held data version)."""
    return store.save_many(
        [
            (record(1, 11, node="a", created=1.0), {"small": 1}),
            (record(2, 11, node="a", created=2.0), {"small": 1}),
            (record(3, 12, node="b", created=3.0), blob_value(3)),
            (record(4, 13, node="b", created=4.0), np.arange(BIG)),
        ]
    )


def test_verify_passes_a_mixed_store_and_counts_everything(store: Store) -> None:
    """Rows holding their bytes need no blob: a sound mixed store verifies clean."""
    mixed(store)
    report = store.verify()
    assert report.ok and (report.blobs, report.results, report.orphan_blobs) == (2, 4, 0)


def test_verify_quarantines_a_row_with_bad_bytes_and_keeps_its_twin(store: Store) -> None:
    """Bad row bytes: that row is reported, written to index-rows.jsonl (bytes in hex) and
    dropped; the other row of the data version holds its own sound copy and stays."""
    mixed(store)
    sql(store, "UPDATE results SET data = ? WHERE key = ?", b"rotten", dv(1))
    listed = store.verify(quarantine=False)
    assert [(p.kind, p.name) for p in listed.problems] == [("index", dv(1))]
    assert "checksum" in listed.problems[0].reason and listed.results == 4
    report = store.verify()
    (problem,) = report.problems
    assert report.results == 4 and problem.moved_to is not None
    line = json.loads(Path(problem.moved_to).read_text().splitlines()[-1])
    assert line["row"][:2] == [dv(1), dv(11)] and line["row"][3] == b"rotten".hex()
    assert store.lookup(dv(1)) is MISSING and store.load(store.lookup(dv(2))) == {"small": 1}
    assert store.verify().ok


def test_verify_still_reports_a_row_with_no_bytes_and_no_blob(store: Store) -> None:
    """A row that holds nothing and names no stored blob is still 'missing', even when another
    row holds bytes of that data version (rows never depend on each other)."""
    mixed(store)
    store.index.put(record(5, 11))  # a bare row of the row-held data version
    store.index.put(record(6, 99))
    problems = store.verify(quarantine=False).problems
    assert sorted(p.name for p in problems) == [dv(5), dv(6)]
    assert all("missing" in p.reason for p in problems)


def test_gc_counts_and_frees_row_bytes(store: Store) -> None:
    """Dropped row-held results free their bytes; kept ones count in kept_bytes, per row."""
    saved = mixed(store)
    with store.run_log() as log:
        log.hit_many([dv(2), dv(4)])
    report = store.gc(keep_runs=1, grace=0, dry_run=True)
    assert sorted(rec.key for rec in report.removed) == [dv(1), dv(3)]
    assert report.blobs_removed == [dv(12)]
    assert report.bytes_freed == saved[0].size + saved[2].size
    assert report.kept_bytes == saved[1].size + saved[3].size
    store.gc(keep_runs=1, grace=0)
    assert store.load(store.lookup(dv(2))) == {"small": 1} and store.verify().ok


def test_gc_byte_budget_counts_each_row_copy(store: Store) -> None:
    """Under max_bytes, each row-held result counts its own bytes and dropping it frees them."""
    items = [(record(i, 50, created=float(i)), "v" * 500) for i in range(1, 5)]  # one dv
    saved = store.save_many(items)
    each = saved[0].size
    report = store.gc(max_bytes=2 * each, grace=0)
    assert [rec.key for rec in report.removed] == [dv(1), dv(2)]
    assert report.kept_bytes == 2 * each and not report.over_budget
    assert store.load(store.lookup(dv(4))) == "v" * 500


def test_stats_count_row_bytes(store: Store) -> None:
    """stats: row_bytes is the sum over rows holding bytes, part of bytes and of per-node bytes."""
    saved = mixed(store)
    stats = store.stats()
    rows = saved[0].size + saved[1].size
    assert stats.row_bytes == rows and stats.blobs == 2
    assert stats.bytes == rows + saved[2].size + saved[3].size
    assert stats.inline_bytes == saved[2].size and stats.file_bytes == saved[3].size
    per_node = {n.node: n.bytes for n in stats.per_node}
    assert per_node == {"a": rows, "b": saved[2].size + saved[3].size}


def test_clear_counts_and_removes_row_bytes(store: Store) -> None:
    """clear deletes rows with their bytes and counts those bytes."""
    saved = mixed(store)
    report = store.clear()
    assert report.results == 4 and report.blobs == 2
    assert report.bytes == sum(rec.size for rec in saved)
    assert raw(store, "SELECT count(*) FROM results") == [(0,)] and store.stats().bytes == 0


# -- schema: migrating, reading older files, older incgraph ------------------------------------------


def version_2_store(folder: Path) -> None:
    """A store written at schema version 2 with an inline blob, a file blob and a shared blob."""
    folder.mkdir()
    (folder / "blobs").mkdir()
    conn = sqlite3.connect(folder / "index.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for migration in MIGRATIONS[:2]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    small, big = dumps({"small": 1}), np.arange(BIG, dtype=np.int64)
    blob = "INSERT INTO blobs VALUES (?, ?, ?, ?, 1.0, ?, NULL)"
    conn.execute(blob, (dv(11), "pickle", checksum_of(small), len(small), small))
    big_pickle = pickle.dumps(big, protocol=5)
    conn.execute(blob, (dv(12), "pickle", checksum_of(big_pickle), len(big_pickle), None))
    (folder / "blobs" / dv(12)[:2]).mkdir()
    (folder / "blobs" / dv(12)[:2] / f"{dv(12)}.{checksum_of(big_pickle)}.pkl").write_bytes(
        big_pickle
    )
    row = "INSERT INTO results VALUES (?, ?, 'n', 'p', 'c', 'i', '{}', ?, 0.0, ?)"
    conn.execute(row, (dv(1), dv(11), 1.0, len(small)))
    conn.execute(row, (dv(2), dv(11), 2.0, len(small)))
    conn.execute(row, (dv(3), dv(12), 3.0, len(big_pickle)))
    conn.execute("COMMIT")
    conn.close()


def user_version(folder: Path) -> int:
    conn = sqlite3.connect(folder / "index.sqlite")
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_version_2_store_opened_read_only_is_read_without_migrating(tmp_path: Path) -> None:
    """Read-only, a version 2 file is served as it is (no row bytes) and stays version 2."""
    folder = tmp_path / "v2"
    version_2_store(folder)
    with open_store(folder, read_only=True) as store:
        assert store.index.file.schema_version == 2  # type: ignore[attr-defined]
        assert store.load(store.lookup(dv(2))) == {"small": 1}
        np.testing.assert_array_equal(store.load(store.lookup(dv(3))), np.arange(BIG))
        assert [rec.key for rec in store.index.records()] == [dv(1), dv(2), dv(3)]
        assert store.verify().ok and store.stats().row_bytes == 0
        with pytest.raises(KeyError):
            store.load(dv(99))
    assert user_version(folder) == 2


def test_a_version_2_store_migrates_and_loads_every_result(tmp_path: Path) -> None:
    """Opened writable, a version 2 store becomes version 3 in place; all its results load,
    new small results go into rows, and the index on created is gone."""
    folder = tmp_path / "v2"
    version_2_store(folder)
    with open_store(folder) as store:
        assert [store.load(store.lookup(dv(i))) == {"small": 1} for i in (1, 2)] == [True, True]
        np.testing.assert_array_equal(store.load(store.lookup(dv(3))), np.arange(BIG))
        new = store.save(record(4, 14), "new")
        assert held(store, 4)[2] == "blob" and store.load(new) == "new"
        assert store.verify().ok
        names = {name for (name,) in raw(store, "SELECT name FROM sqlite_master")}
    assert user_version(folder) == SCHEMA_VERSION == 4
    assert "results_created" not in names and "results_node_created" in names
    columns = [row[1] for row in raw(store, "PRAGMA table_info(results)")]
    assert columns[-2:] == ["checksum", "data"]


def test_a_version_3_file_is_refused_by_an_incgraph_that_knows_only_version_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older incgraph (SCHEMA_VERSION 2) refuses a version 3 store instead of dropping the
    rows whose bytes it cannot see."""
    from incgraph.store import sqlite_file

    open_store(tmp_path).close()
    monkeypatch.setattr(sqlite_file, "SCHEMA_VERSION", 2)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer than this incgraph"):
            open_store(tmp_path, read_only=read_only)
