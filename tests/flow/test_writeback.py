"""The write-back buffer a flow run writes through: reads see pending writes, flush keeps order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.flow import writeback
from incgraph.flow.writeback import WriteBackStore
from incgraph.sentinels import MISSING
from incgraph.store import MemoryBlobStore, MemoryIndex, Store, memory_store, open_store
from incgraph.store.protocols import Record


def record(key: str, dv: str) -> Record:
    return Record(key, dv, node="n", processor="p", code_version="c", init_version="i")


DV1, DV2, DV3 = "1" * 32, "2" * 32, "3" * 32


def test_pending_writes_are_visible_then_committed(tmp_path: Path) -> None:
    """Before a flush lookups and loads see pending items; after it the inner store has them."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    buffer.save(record("k1", DV1), {"a": 1})
    buffer.put_blob(DV2, [1, 2, 3])
    assert buffer.lookup("k1") is not MISSING
    assert buffer.load(DV1) == {"a": 1}
    assert buffer.load(DV2) == [1, 2, 3]
    assert set(buffer.lookup_many(["k1", "k2"])) == {"k1"}
    assert (buffer.lookup_version("k1"), buffer.lookup_version("k2")) == (DV1, MISSING)
    assert buffer.lookup_versions(["k1", "k2"]) == {"k1": DV1}
    assert inner.lookup("k1") is MISSING
    buffer.flush()
    assert buffer.lookup_versions(["k1"]) == {"k1": DV1} == inner.lookup_versions(["k1"])
    assert inner.lookup("k1").data_version == DV1
    assert inner.load(DV2) == [1, 2, 3]


class Recording:
    """Wraps a blob store or an index, logging the writes that reach it."""

    def __init__(self, inner: Any, events: list[str]) -> None:
        self.inner, self.events = inner, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, dv: str, value: Any) -> int:
        self.events.append(f"blob {dv[0]}")
        return int(self.inner.put(dv, value))

    def put_many(self, items: Any) -> list[Any]:
        items = list(items)
        if items and isinstance(items[0], Record):
            self.events += [f"row {r.key}" for r in items]
            self.inner.put_many(items)
            return []
        return [self.put(dv, v) for dv, v in items]


def test_flush_writes_blobs_before_rows() -> None:
    """A flush commits artifact blobs, then result blobs, then index rows."""
    events: list[str] = []
    inner = Store(Recording(MemoryIndex(), events), Recording(MemoryBlobStore(), events))
    buffer = WriteBackStore(inner)
    buffer.put_blob(DV2, "artifact")
    buffer.save(record("k1", DV1), "result")
    buffer.flush()
    assert events == ["blob 2", "blob 1", "row k1"]


def test_flushes_when_enough_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending items are committed once MAX_PENDING of them wait."""
    monkeypatch.setattr(writeback, "MAX_PENDING", 3)
    monkeypatch.setattr(writeback, "MAX_DELAY", 1e9)
    inner = memory_store()
    buffer = WriteBackStore(inner)
    buffer.save(record("k1", DV1), 1)
    buffer.put_blob(DV2, 2)
    assert inner.lookup("k1") is MISSING
    buffer.put_blob(DV3, 3)
    assert inner.lookup("k1") is not MISSING


def test_recently_written_blobs_are_served_from_memory(tmp_path: Path) -> None:
    """After a flush, small blobs written by this buffer load without reading the store."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    value = list(range(10))
    buffer.put_blob(DV1, value)
    buffer.flush()
    inner.blobs.delete(DV1)  # only the buffer's memory still has it
    assert buffer.load(DV1) == value


def test_loads_are_private_copies_of_the_value_as_queued(tmp_path: Path) -> None:
    """Changing a queued value, or a loaded one, changes neither later loads nor the store."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    value = [1, 2]
    buffer.put_blob(DV1, value)
    value.append(3)  # after queuing
    pending = buffer.load(DV1)
    pending.append(4)  # a reader's change, before the flush
    assert buffer.load(DV1) == [1, 2]
    buffer.flush()
    recent = buffer.load(DV1)  # served from memory
    recent.append(5)
    assert buffer.load(DV1) == [1, 2] and inner.load(DV1) == [1, 2]


def test_close_flushes_and_leaves_the_inner_store_open(tmp_path: Path) -> None:
    """close() commits what is pending; the inner store stays usable."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    buffer.save(record("k1", DV1), "x")
    buffer.close()
    assert inner.load(inner.lookup("k1")) == "x"


KEY = "a" * 32


def test_a_session_keeps_leases_of_queued_results_until_they_are_committed(
    tmp_path: Path,
) -> None:
    """A saved key's lease outlives the queue: released only after the flush committed its row."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    session = buffer.session("run", "test")
    assert session.claim([KEY]).mine == [KEY]
    buffer.save(record(KEY, DV1), 1)
    session.saved([KEY])
    assert inner.lookup(KEY) is MISSING
    assert set(inner.ledger.lease_states([KEY])) == {KEY}  # still ours: not committed yet
    session.commit()
    assert inner.lookup_version(KEY) == DV1
    session.close()
    assert inner.ledger.lease_states([KEY]) == {}
    assert inner.runs()[-1].computed == 1


def test_another_claimant_sees_a_queued_result_once_it_is_committed(tmp_path: Path) -> None:
    """Another process's claim on a key saved but still queued is 'theirs', then 'done'."""
    buffer = WriteBackStore(open_store(tmp_path))
    other = open_store(tmp_path).lessee()
    session = buffer.session()
    session.claim([KEY])
    buffer.save(record(KEY, DV1), 1)
    session.saved([KEY])
    assert other.claim_many([KEY]).theirs == [KEY]  # no duplicate compute while queued
    session.commit()
    assert other.claim_many([KEY]).done == {KEY: DV1}
    session.close()
    other.close()


def test_a_session_whose_flush_fails_still_releases_its_leases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close(): the flush's store error is raised (a run that failed keeps its own error)."""
    from incgraph.errors import StoreError

    inner = open_store(tmp_path)
    for ok in (True, False):
        buffer = WriteBackStore(inner)
        session = buffer.session()
        session.claim([KEY])
        buffer.save(record(KEY, DV1), 1)

        def broken() -> None:
            raise StoreError("disk full")

        monkeypatch.setattr(buffer, "flush", broken)
        if ok:
            with pytest.raises(StoreError, match="disk full"):
                session.close(ok)
        else:
            session.close(ok)
        assert inner.ledger.lease_states([KEY]) == {}
        assert inner.runs()[-1].status == "failed"


def test_flushes_when_the_pending_values_are_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large values (arrays, bytes) are committed once MAX_PENDING_BYTES of them wait."""
    import numpy as np

    monkeypatch.setattr(writeback, "MAX_PENDING_BYTES", 1000)
    monkeypatch.setattr(writeback, "MAX_DELAY", 1e9)
    inner = memory_store()
    buffer = WriteBackStore(inner)
    buffer.save(record("k1", DV1), np.zeros(100))  # 800 bytes
    assert inner.lookup("k1") is MISSING
    buffer.put_blob(DV2, b"x" * 300)
    assert inner.lookup("k1") is not MISSING
    buffer.save(record("k3", DV3), np.zeros(100))  # the count restarted at the flush
    assert inner.lookup("k3") is MISSING


def test_save_row_names_a_stored_blob_without_encoding_it_again(tmp_path: Path) -> None:
    """A row for a blob still queued is committed with it at the next flush; a row for a
    committed blob is written at once; either way the blob is stored once."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    buffer.save(record("k1", DV1), {"a": 1})
    buffer.save_row(record("k2", DV1))  # DV1 is still queued
    assert inner.lookup("k2") is MISSING
    buffer.flush()
    assert inner.lookup("k2").data_version == DV1 and inner.load(DV1) == {"a": 1}
    encoded: list[str] = []
    real = inner.blobs.put_many

    def counting(items: Any, **kw: Any) -> Any:
        items = list(items)
        encoded.extend(dv for dv, _ in items)
        return real(items, **kw)

    inner.blobs.put_many = counting  # type: ignore[method-assign]
    buffer.save_row(record("k3", DV1))  # DV1 is committed: the row alone, right away
    assert inner.lookup("k3").data_version == DV1 and encoded == []
    buffer.flush()
    assert encoded == [] and inner.load(DV1) == {"a": 1}


def test_save_row_of_a_result_kept_in_its_row_copies_it(tmp_path: Path) -> None:
    """A memo row for a small committed result (kept in its results row) gets its own copy of
    the bytes: gc dropping the join's row leaves the memo loadable."""
    inner = open_store(tmp_path)
    buffer = WriteBackStore(inner)
    joined = buffer.save(record("join", DV1), {"joined": [1, 2, 3]})
    buffer.flush()
    buffer.save_row(record("memo", DV1))
    assert inner.lookup("memo").data_version == DV1
    with inner.run_log() as log:
        log.hit_many(["memo"])
    report = inner.gc(keep_runs=1, grace=0)
    assert [rec.key for rec in report.removed] == ["join"] and joined.key == "join"
    assert inner.load(inner.lookup("memo")) == {"joined": [1, 2, 3]}
    assert inner.verify().ok
    inner.close()
