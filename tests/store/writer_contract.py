"""The contract every store's session writer keeps (``session.writer``).

``tests/store/test_contracts.py`` runs it over every backend of
``tests/store/backends.py``, with the other contract suites.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from incgraph.errors import ReadOnlyStoreError
from incgraph.sentinels import MISSING
from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import Store

from .backends import MakeStore
from .contract import blob_value, dv, record

__all__ = ["UNTIMED", "WriterContract"]

UNTIMED = DEFAULT_SETTINGS.replace(
    writer_max_delay_seconds=1e9,
    writer_pending_count=5,
    writer_pending_bytes=1000,
    prompt_write_bytes=1024,
)
"""Small limits, and no write because time passed: each policy can be seen alone."""


class WriterContract:
    """Queue, read back, write in batches, log and release: for any store."""

    @pytest.fixture
    def untimed(self, make_store: MakeStore) -> Store:
        """A store whose writer never writes because time passed (only count and size)."""
        return make_store(UNTIMED)

    def test_a_queued_result_is_readable_then_committed_by_flush(self, store: Store) -> None:
        """Before the flush the writer serves the queued result; after it the store has it."""
        with store.session("run", "writer") as session:
            writer = session.writer
            writer.add(record(1, 2), store.capture(blob_value(1)))
            assert writer.pending_version(dv(1)) == dv(2)
            assert writer.load(dv(2)) == blob_value(1)
            assert store.lookup(dv(1)) is MISSING
            assert writer.flush() == []
            assert store.lookup_version(dv(1)) == dv(2)
            assert writer.pending_version(dv(1)) is None
        assert store.load(dv(2)) == blob_value(1)
        assert store.runs()[-1].computed == 1

    def test_close_flushes_and_logs_every_key_once(self, store: Store) -> None:
        """A session closed with results still queued commits them and logs them as written."""
        with store.session("run", "close") as session:
            for i in range(5):
                session.writer.add(record(i, 100 + i), store.capture(i))
        assert store.lookup_versions([dv(i) for i in range(5)]) == {
            dv(i): dv(100 + i) for i in range(5)
        }
        assert store.runs()[-1].computed == 5

    def test_put_blob_is_written_with_the_result_naming_it(self, store: Store) -> None:
        """An artifact blob queued with put_blob is loadable from the writer, then from the store."""
        with store.session() as session:
            session.writer.put_blob(dv(7), [1, 2, 3])
            assert session.writer.load(dv(7)) == [1, 2, 3]
        assert store.load(dv(7)) == [1, 2, 3]

    def test_loads_are_private_copies_of_the_value_as_queued(self, store: Store) -> None:
        """Changing a queued value, or a loaded copy, changes neither later loads nor the store."""
        value = [1, 2]
        with store.session() as session:
            writer = session.writer
            writer.add(record(1, 2), store.capture(value))
            value.append(3)
            writer.load(dv(2)).append(4)
            assert writer.load(dv(2)) == [1, 2]
            writer.flush()
            writer.load(dv(2)).append(5)  # served from the recent bytes
            assert writer.load(dv(2)) == [1, 2]
        assert store.load(dv(2)) == [1, 2]

    def test_recently_written_small_blobs_are_served_from_memory(self, store: Store) -> None:
        """After a flush, a small blob loads from the writer even once the store lost it."""
        with store.session() as session:
            session.writer.put_blob(dv(9), blob_value("recent"))
            session.writer.flush()
            store.blobs.delete(dv(9))
            assert session.writer.load(dv(9)) == blob_value("recent")
            assert session.writer.load(dv(10)) is MISSING

    def test_a_lease_is_released_only_after_its_result_is_committed(self, store: Store) -> None:
        """Another claimant sees a queued key as 'theirs', and as done once the flush committed."""
        other = store.lessee()
        with store.session() as session:
            assert session.claim([dv(1)]).mine == [dv(1)]
            session.writer.add(record(1, 2), store.capture("x"))
            assert other.claim_many([dv(1)]).theirs == [dv(1)]
            session.commit()
            assert other.claim_many([dv(1)]).done == {dv(1): dv(2)}
        other.close()

    def test_a_slow_or_large_result_is_written_at_once(self, untimed: Store) -> None:
        """A result that took prompt_write_seconds, or is prompt_write_bytes large, is committed."""
        store = untimed
        with store.session() as session:
            writer = session.writer
            writer.add(record(1, 2), store.capture("fast"))
            assert store.lookup(dv(1)) is MISSING
            writer.add(record(3, 4), store.capture("slow"), duration=60.0)
            assert store.lookup_versions([dv(1), dv(3)]) == {dv(1): dv(2), dv(3): dv(4)}
            writer.add(record(5, 6), store.capture(np.zeros(129)))  # 1,032 bytes and more
            assert store.lookup_version(dv(5)) == dv(6)

    def test_writer_pending_count_results_are_written_without_a_flush(self, untimed: Store) -> None:
        """The writer_pending_count-th waiting result makes add commit them all."""
        store = untimed
        with store.session() as session:
            writer = session.writer
            for i in range(4):
                writer.add(record(i, i), store.capture(i))
            assert store.lookup_versions([dv(i) for i in range(5)]) == {}
            writer.add(record(4, 4), store.capture(4))
            assert len(store.lookup_versions([dv(i) for i in range(5)])) == 5

    def test_waiting_bytes_are_written_once_they_reach_writer_pending_bytes(
        self, untimed: Store
    ) -> None:
        """Queued values are committed once their encoded bytes reach writer_pending_bytes."""
        store = untimed
        with store.session() as session:
            writer = session.writer
            writer.add(record(1, 1), store.capture(np.zeros(60)))  # 480 bytes and a header
            assert store.lookup(dv(1)) is MISSING
            writer.put_blob(dv(2), store.capture(b"x" * 600))
            assert store.lookup_version(dv(1)) == dv(1) and store.load(dv(2)) == b"x" * 600

    def test_the_oldest_result_is_written_once_it_waited_long_enough(
        self, make_store: MakeStore
    ) -> None:
        """With a tiny writer_max_delay_seconds, the next add commits what waited."""
        store = make_store(DEFAULT_SETTINGS.replace(writer_max_delay_seconds=1e-9))
        with store.session() as session:
            session.writer.add(record(1, 1), store.capture(1))
            session.writer.add(record(2, 2), store.capture(2))
            assert store.lookup_version(dv(1)) == dv(1)

    def test_the_sessions_settings_set_the_policy_not_the_stores(self, store: Store) -> None:
        """A session given settings (as a graph's run is) writes by them, not by the store's."""
        at_once = DEFAULT_SETTINGS.replace(prompt_write_seconds=0)
        with store.session(settings=at_once) as session:
            assert session.writer.settings is at_once
            session.writer.add(record(1, 2), store.capture("any"))
            assert store.lookup_version(dv(1)) == dv(2)
        never = DEFAULT_SETTINGS.replace(
            prompt_write_seconds=float("inf"), writer_max_delay_seconds=float("inf")
        )
        with store.session(settings=never) as session:
            session.writer.add(record(3, 4), store.capture("slow"), duration=3600.0)
            assert store.lookup_version(dv(3)) is MISSING
            session.writer.flush()
            assert store.lookup_version(dv(3)) == dv(4)

    def test_an_automatic_write_keeps_blobs_no_queued_result_names(self, store: Store) -> None:
        """A write by the policy takes only the blobs its results name; flush() takes the rest."""
        with store.session() as session:
            writer = session.writer
            writer.put_blob(dv(8), "not named yet")
            writer.add(record(1, 2), store.capture("slow"), duration=60.0)
            assert store.lookup_version(dv(1)) == dv(2)
            assert writer.load(dv(8)) == "not named yet"
            with pytest.raises(KeyError):
                store.blobs.get(dv(8))
            writer.flush()
            assert store.load(dv(8)) == "not named yet"

    def test_add_row_names_a_result_without_writing_it_again(self, store: Store) -> None:
        """A row for a queued or committed result is written; both keys load the same value."""
        with store.session() as session:
            writer = session.writer
            writer.add(record(1, 2), store.capture(blob_value("shared")))
            writer.add_row(record(3, 2))
            assert writer.pending_version(dv(3)) == dv(2)
            writer.flush()
            first = store.lookup(dv(1))
            assert first is not MISSING
            writer.add_row(record(4, 2, size=first.size, created=first.created))
        for key in (1, 3, 4):
            assert store.load(store.lookup(dv(key))) == blob_value("shared")
        assert store.runs()[-1].computed == 3

    def test_threads_adding_at_once_lose_nothing(self, store: Store) -> None:
        """Eight threads adding 200 results each: every row is committed and logged once."""

        def add(t: int) -> None:
            for i in range(200):
                n = t * 1000 + i
                session.writer.add(record(n, n), store.capture(n))

        with store.session() as session:
            threads = [threading.Thread(target=add, args=(t,)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        keys = [dv(t * 1000 + i) for t in range(8) for i in range(200)]
        assert len(store.lookup_versions(keys)) == 1600
        assert store.runs()[-1].computed == 1600

    def test_a_failed_write_names_the_node_and_keeps_the_queue(self, store: Store) -> None:
        """A store error on flush names the node; the session still releases its leases."""
        session = store.session()
        session.claim([dv(1)])
        session.writer.add(record(1, 2, node="writes"), store.capture("x"))
        store.read_only = True
        with pytest.raises(ReadOnlyStoreError, match="writes"):
            session.writer.flush()
        assert session.writer.pending_version(dv(1)) == dv(2)
        store.read_only = False
        session.close(ok=False)  # the flush now works; the run is still logged as failed
        assert store.runs()[-1].status == "failed"
        assert store.ledger.lease_states([dv(1)]) == {}
        assert store.lookup_version(dv(1)) == dv(2)

    def test_a_session_made_current_gathers_the_sessions_opened_inside(self, store: Store) -> None:
        """Sessions opened inside as_current() are parts: one writer, one run-log row."""
        before = len(store.runs())
        with store.session("flow", "outer") as outer, outer.as_current():
            for wave in range(3):
                with store.session("run", f"wave {wave}") as part:
                    assert part.writer is outer.writer
                    part.writer.add(record(wave, wave), store.capture(wave))
                assert store.lookup_version(dv(wave)) == dv(wave)  # committed at its close
            part.hits.append(dv(99))
        runs = store.runs()[before:]
        assert [(r.kind, r.label, r.computed, r.hits) for r in runs] == [("flow", "outer", 3, 1)]
