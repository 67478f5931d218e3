"""The one contract every store implementation passes.

One class per protocol: `IndexContract`, `BlobStoreContract`, `LedgerContract`,
`RunLogContract`, and `StoreContract` for the rules that span them. Each test
takes a ``store`` fixture; ``tests/store/test_contracts.py`` runs every class
over every backend listed in ``tests/store/backends.py`` (add a new backend
there). pytest never collects this module itself (its name does not start with
``test_``) nor these classes (their names do not start with ``Test``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incgraph.errors import StoreError
from incgraph.sentinels import MISSING
from incgraph.store import BlobStore, Index, Record, SqliteIndex, Store
from incgraph.store.runlog import RunEntry, pack_keys

BIG = 64 * 1024  # bytes: above the 32 KiB inline limit


def blob_value(x: Any) -> dict[str, Any]:
    """A small value kept as a blob by every store: its pickle is above the 1 KiB an
    SQLite store keeps in the result's own row, and below the 32 KiB inline limit."""
    return {"v": x, "pad": "." * 1200}


def dv(n: int | str) -> str:
    """A 32-hex-char data version or key made from ``n``."""
    return f"{n:032x}" if isinstance(n, int) else n.encode().hex()[:32].ljust(32, "0")


def record(key: int | str, data_version: int | str, node: str = "n", **fields: Any) -> Record:
    """A record with the given key, data version and node; other fields are filled in."""
    base: dict[str, Any] = {
        "processor": "tests.Proc",
        "code_version": dv("code"),
        "init_version": dv("init"),
        "inputs": {"a": dv(1), "b": dv(2)},
    }
    base.update(fields)
    return Record(dv(key), dv(data_version), node, **base)


def assert_same(loaded: Any, expected: Any) -> None:
    """Equal value and type, understanding numpy arrays and pandas frames."""
    assert type(loaded) is type(expected) or isinstance(loaded, np.ndarray)
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray)
        assert loaded.dtype == expected.dtype and loaded.shape == expected.shape
        np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, expected)
    elif isinstance(expected, dict) and any(isinstance(v, np.ndarray) for v in expected.values()):
        assert loaded.keys() == expected.keys()
        for name in expected:
            assert_same(loaded[name], expected[name])
    else:
        assert loaded == expected


def big_frame() -> pd.DataFrame:
    n = 20_000
    return pd.DataFrame(
        {
            "x": np.arange(n, dtype=np.float64) / 7,
            "i": np.arange(n, dtype=np.int64),
            "s": [f"row{i}" for i in range(n)],
            "t": pd.date_range("2024-01-01", periods=n, freq="s"),
        },
        index=pd.RangeIndex(n, name="row"),
    )


VALUES: dict[str, Any] = {
    "none": None,
    "int": 42,
    "float": 1.5,
    "str": "héllo",
    "small-bytes": b"\x00\x01abc",
    "big-bytes": bytes(range(256)) * (BIG // 256),
    "big-bytearray": bytearray(b"z" * BIG),
    "dict": {"a": [1, 2, (3, None)], "b": {"nested": True}},
    "big-list": list(range(20_000)),
    "set": {1, 2, 3},
    "empty-list": [],
}

ARRAYS: dict[str, Any] = {
    "small": np.arange(10, dtype=np.int32),
    "big-f8": np.linspace(0, 1, BIG // 8 * 2),
    "0-d": np.array(3.25),
    "0-d-big-dtype": np.zeros((), dtype=[("a", "f8", (BIG // 8,))]),
    "f-order": np.asfortranarray(np.arange(300 * 200, dtype=np.float64).reshape(300, 200)),
    "non-contiguous": np.arange(400 * 300, dtype=np.int64).reshape(400, 300)[::2, ::3],
    "big-endian": np.arange(BIG, dtype=">i4"),
    "bool": np.arange(BIG) % 3 == 0,
    "datetime": np.arange(BIG).astype("datetime64[s]"),
    "structured": np.zeros(BIG // 8, dtype=[("x", "f4"), ("y", "i4")]),
    "empty": np.zeros((0, 5)),
    "objects": np.array([{"a": 1}, None, "s"] * 5000, dtype=object),
    "3-d": np.arange(2 * 3 * 4000, dtype=np.float32).reshape(2, 3, 4000),
}


class StoreContract:
    """Behaviour every :class:`~incgraph.store.Store` must have, whatever holds its data."""

    # -- protocols --------------------------------------------------------------------

    def test_parts_satisfy_the_protocols(self, store: Store) -> None:
        """The store's index and blob store implement the Index and BlobStore protocols."""
        assert isinstance(store.index, Index)
        assert isinstance(store.blobs, BlobStore)

    # -- lookup -----------------------------------------------------------------------

    def test_lookup_of_absent_key_is_missing(self, store: Store) -> None:
        """A key never saved looks up as MISSING, and latest_for_node of an unknown node too."""
        assert store.lookup(dv(1)) is MISSING
        assert store.latest_for_node("nowhere") is MISSING
        assert store.lookup_many([dv(1), dv(2)]) == {}

    def test_record_round_trips_every_field(self, store: Store) -> None:
        """Every field of a saved record comes back from lookup unchanged, inputs in order."""
        inputs = {"z": dv(9), "a": dv(8), "m": dv(7)}
        rec = record(1, 2, node="GridFlow.Process[3]", inputs=inputs, duration=0.125)
        saved = store.save(rec, "value")
        found = store.lookup(rec.key)
        assert found == saved
        assert list(found.inputs) == ["z", "a", "m"]
        assert (found.node, found.processor, found.duration) == (rec.node, rec.processor, 0.125)
        assert (found.code_version, found.init_version) == (rec.code_version, rec.init_version)

    def test_lookup_version_gives_just_the_data_version(self, store: Store) -> None:
        """lookup_version returns the saved data version, or MISSING for an absent key."""
        store.save(record(1, 2), "value")
        assert store.lookup_version(dv(1)) == dv(2)
        assert store.lookup_version(dv(3)) is MISSING

    def test_latest_versions_gives_each_nodes_newest_key(self, store: Store) -> None:
        """latest_versions maps each node label with records to its newest (key, data version)."""
        store.save(record(1, 2, node="a", created=1.0), 1)
        store.save(record(3, 4, node="a", created=2.0), 2)
        store.save(record(5, 6, node="b", created=1.0), 3)
        found = store.latest_versions(["a", "b", "missing", "a"])
        assert found == {"a": (dv(3), dv(4)), "b": (dv(5), dv(6))}
        assert store.latest_versions([]) == {}

    def test_save_fills_size_and_created(self, store: Store) -> None:
        """save returns the record with its blob size and a creation time filled in."""
        saved = store.save(record(1, 2), list(range(100)))
        assert saved.size > 0 and saved.created > 0
        assert store.lookup(dv(1)) == saved

    def test_save_keeps_an_explicit_created_time(self, store: Store) -> None:
        """A record that already carries a creation time keeps it."""
        assert store.save(record(1, 2, created=123.5), 1).created == 123.5

    def test_lookup_many_returns_only_present_keys(self, store: Store) -> None:
        """lookup_many returns a dict of the present keys, handling repeats and long lists."""
        saved = store.save_many([(record(i, 1000 + i), i) for i in range(0, 1200, 2)])
        keys = [dv(i) for i in range(1200)] + [dv(0), dv(0)]
        found = store.lookup_many(keys)
        assert found == {rec.key: rec for rec in saved}
        assert store.lookup_many([]) == {}
        assert store.lookup_many(iter([dv(2)])) == {dv(2): saved[1]}

    def test_latest_for_node_is_the_newest_record(self, store: Store) -> None:
        """latest_for_node returns the node's record with the latest creation time."""
        store.save(record(1, 1, node="a", created=10.0), 1)
        store.save(record(2, 2, node="a", created=30.0), 2)
        store.save(record(3, 3, node="a", created=20.0), 3)
        store.save(record(4, 4, node="b", created=40.0), 4)
        assert store.latest_for_node("a").key == dv(2)
        assert store.latest_for_node("b").key == dv(4)

    def test_latest_for_node_breaks_ties_by_insertion(self, store: Store) -> None:
        """Of two records created at the same time, the one saved later is the latest."""
        store.save(record(1, 1, node="a", created=5.0), 1)
        store.save(record(2, 2, node="a", created=5.0), 2)
        assert store.latest_for_node("a").key == dv(2)

    # -- values -----------------------------------------------------------------------

    @pytest.mark.parametrize("name", sorted(VALUES))
    def test_value_round_trips(self, store: Store, name: str) -> None:
        """A saved Python value loads back equal and of the same type (None included)."""
        value = VALUES[name]
        saved = store.save(record(1, 2), value)
        assert_same(store.load(saved), value)
        assert_same(store.load(saved.data_version), value)

    @pytest.mark.parametrize("name", sorted(ARRAYS))
    def test_array_round_trips(self, store: Store, name: str) -> None:
        """A numpy array loads back with its dtype, shape and contents (any order or size)."""
        array = ARRAYS[name]
        loaded = store.load(store.save(record(1, 2), array))
        assert_same(loaded, array)
        assert type(loaded) is np.ndarray

    def test_pandas_frames_round_trip(self, store: Store) -> None:
        """Small and big pandas frames (numbers, strings, datetimes, an index) load back equal."""
        small = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
        big = big_frame()
        assert_same(store.load(store.save(record(1, 1), small)), small)
        assert_same(store.load(store.save(record(2, 2), big)), big)

    def test_containers_of_big_arrays_round_trip(self, store: Store) -> None:
        """A dict holding big arrays (and other values) loads back equal."""
        value = {"w": np.ones((200, 100)), "b": np.arange(BIG), "name": "layer", "n": None}
        assert_same(store.load(store.save(record(1, 1), value)), value)

    def test_saving_again_is_idempotent(self, store: Store) -> None:
        """Saving the same record and value twice leaves one record and one blob that load."""
        first = store.save(record(1, 2), blob_value(1))
        second = store.save(record(1, 2), blob_value(1))
        assert second.size == first.size
        assert list(store.blobs.data_versions()) == [dv(2)]
        assert [rec.key for rec in store.index.records()] == [dv(1)]
        assert store.load(second) == blob_value(1)

    def test_equal_results_share_one_blob(self, store: Store) -> None:
        """Two keys whose results have the same data version share one stored blob."""
        store.save(record(1, 7), np.arange(BIG))
        store.save(record(2, 7), np.arange(BIG))
        assert list(store.blobs.data_versions()) == [dv(7)]
        assert store.lookup(dv(1)).data_version == store.lookup(dv(2)).data_version

    def test_saved_value_is_a_copy(self, store: Store) -> None:
        """Mutating a value after saving it does not change what the store returns."""
        value = {"list": [1, 2], "array": np.arange(BIG)}
        saved = store.save(record(1, 2), value)
        value["list"].append(3)
        value["array"][:] = -1
        loaded = store.load(saved)
        assert loaded["list"] == [1, 2]
        assert loaded["array"][0] == 0

    @pytest.mark.parametrize("kind", ["list", "array", "big-array", "frame"])
    def test_loaded_value_is_a_copy(self, store: Store, kind: str) -> None:
        """Mutating a loaded result does not change the cache: the next load is pristine."""
        value: Any = {
            "list": [1, [2, 3]],
            "array": np.arange(10.0),
            "big-array": np.arange(300_000.0),
            "frame": big_frame(),
        }[kind]
        saved = store.save(record(1, 2), value)
        loaded = store.load(saved)
        if kind == "list":
            loaded[1].append(4)
        elif kind == "frame":
            loaded.iloc[0, 0] = -1.0
            loaded["s"] = "changed"
        else:
            loaded[:] = -1
        assert_same(store.load(saved), value)

    def test_unpicklable_value_raises_store_error(self, store: Store) -> None:
        """A value that cannot be pickled raises a StoreError naming its type; nothing is saved."""
        with pytest.raises(StoreError, match="lock"):
            store.save(record(1, 2), threading.Lock())
        assert store.lookup(dv(1)) is MISSING

    # -- save_many ----------------------------------------------------------------------

    def test_save_many_saves_everything_in_order(self, store: Store) -> None:
        """save_many returns the committed records in order; all look up and load."""
        items = [(record(i, 100 + i % 5), blob_value(i % 5)) for i in range(20)]
        items.append((record(99, 99), np.arange(BIG)))
        saved = store.save_many(items)
        assert [rec.key for rec in saved] == [rec.key for rec, _ in items]
        assert all(rec.size > 0 and rec.created > 0 for rec in saved)
        for rec, value in items:
            assert_same(store.load(store.lookup(rec.key)), value)
        assert len(list(store.blobs.data_versions())) == 6

    def test_save_many_of_nothing(self, store: Store) -> None:
        """save_many of an empty iterable saves nothing and returns an empty list."""
        assert store.save_many([]) == []
        assert list(store.index.records()) == []

    # -- index and blob operations ----------------------------------------------------------

    def test_index_put_replaces(self, store: Store) -> None:
        """Putting a record under an existing key replaces the old record."""
        store.index.put(record(1, 2))
        store.index.put(record(1, 3))
        assert store.lookup(dv(1)).data_version == dv(3)
        assert len(list(store.index.records())) == 1

    def test_records_are_listed_in_creation_order(self, store: Store) -> None:
        """records() lists every record by creation time, ties in insertion order."""
        times = [5.0, 1.0, 3.0, 3.0, 2.0]
        store.index.put_many([record(i, i, created=t) for i, t in enumerate(times)])
        assert [rec.key for rec in store.index.records()] == [dv(i) for i in (1, 4, 2, 3, 0)]

    def test_index_delete_removes_only_named_keys(self, store: Store) -> None:
        """Index.delete removes the named records and ignores absent keys."""
        store.index.put_many([record(i, i) for i in range(5)])
        store.index.delete([dv(1), dv(3), dv(77)])
        assert [rec.key for rec in store.index.records()] == [dv(0), dv(2), dv(4)]

    def test_blob_delete_and_contains(self, store: Store) -> None:
        """BlobStore.delete removes a blob (absent ones are ignored) and contains follows it."""
        store.blobs.put(dv(1), "small")
        store.blobs.put(dv(2), np.arange(BIG))
        assert store.blobs.contains(dv(1)) and store.blobs.contains(dv(2))
        store.blobs.delete(dv(1))
        store.blobs.delete(dv(2))
        store.blobs.delete(dv(3))
        assert not store.blobs.contains(dv(1)) and not store.blobs.contains(dv(2))
        assert list(store.blobs.data_versions()) == []
        with pytest.raises(KeyError):
            store.blobs.get(dv(1))

    def test_blob_put_of_a_present_version_is_a_no_op(self, store: Store) -> None:
        """Putting another value under a stored data version keeps the first value."""
        size = store.blobs.put(dv(1), "first")
        assert store.blobs.put(dv(1), "second, longer value") == size
        assert store.blobs.get(dv(1)) == "first"

    def test_load_of_a_missing_blob_drops_its_records(self, store: Store) -> None:
        """Loading a record whose blob is gone raises KeyError and its index rows are dropped."""
        saved = store.save(record(1, 5), blob_value("x"))
        store.save(record(2, 5), blob_value("x"))
        store.save(record(3, 6), blob_value("y"))
        store.blobs.delete(dv(5))
        with pytest.raises(KeyError):
            store.load(saved)
        assert store.lookup(dv(1)) is MISSING and store.lookup(dv(2)) is MISSING
        assert store.load(store.lookup(dv(3))) == blob_value("y")

    def test_load_of_an_unknown_data_version_raises_key_error(self, store: Store) -> None:
        """Loading a data version that was never stored raises KeyError."""
        with pytest.raises(KeyError):
            store.load(dv(404))

    def test_store_is_usable_after_close(self, store: Store) -> None:
        """close releases handles; using the store again reopens them and sees the data."""
        with store:
            saved = store.save(record(1, 2), [1])
        assert store.lookup(dv(1)) == saved
        assert store.load(saved) == [1]

    # -- concurrency ---------------------------------------------------------------------------

    def test_threads_share_one_store(self, store: Store) -> None:
        """Eight threads saving and loading overlapping results all succeed and all rows exist."""
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for i in range(40):
                    n = worker * 1000 + i
                    value = np.full(BIG // 8 if i % 4 == 0 else 3, i % 10)
                    saved = store.save(record(n, 5000 + i % 10 + 100 * (i % 4 == 0)), value)
                    assert_same(store.load(store.lookup(saved.key)), value)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(list(store.index.records())) == 8 * 40

    # -- properties ------------------------------------------------------------------------------

    # One contract runs on several subclasses (executors) on purpose, and the store
    # fixture is emptied of the example's key before each example.
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        key=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
        # PostgreSQL text holds no NUL and no lone surrogate: such a label is refused there
        node=st.text(
            st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
            min_size=1,
            max_size=20,
        ),
        inputs=st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=5),
        duration=st.floats(min_value=0, max_value=1e6, allow_nan=False),
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
            ),
            max_leaves=10,
        ),
    )
    def test_any_record_and_value_round_trip(
        self,
        store: Store,
        key: str,
        node: str,
        inputs: dict[str, str],
        duration: float,
        value: Any,
    ) -> None:
        """Any record fields and any plain value round-trip through save, lookup and load."""
        rec = Record(key, key[::-1], node, "p", "c" * 32, "i" * 32, inputs, 0.0, duration)
        store.index.delete([key])
        store.blobs.delete(key[::-1])
        saved = store.save(rec, value)
        assert store.lookup(key) == saved
        assert store.load(saved) == value
        assert store.latest_for_node(node).key == key

    # -- bulk versions and key prefixes ------------------------------------------------------------

    def test_lookup_versions_gives_stored_keys_only(self, store: Store) -> None:
        """lookup_versions maps each stored key to its data version and leaves absent keys out."""
        store.save_many([(record(i, 100 + i), i) for i in range(3)])
        found = store.lookup_versions([dv(0), dv(2), dv(9), dv(0)])
        assert found == {dv(0): dv(100), dv(2): dv(102)}
        assert store.lookup_versions([]) == {}

    def test_resolve_finds_a_unique_prefix(self, store: Store) -> None:
        """resolve returns the one key a prefix starts, and refuses unknown or ambiguous ones."""
        store.save(record("abc1", 1), 1)
        store.save(record("abc2", 2), 2)
        full = record("abc1", 1).key
        assert store.resolve(full) == full
        assert store.resolve(full[:8]) == full
        with pytest.raises(ValueError, match="ambiguous"):
            store.resolve(full[:5])
        with pytest.raises(KeyError):
            store.resolve("ffff")

    # -- garbage collection ------------------------------------------------------------------------

    def _three_runs(self, store: Store) -> list[Record]:
        """Results 1-6 (old), then runs that use {1, 2}, {3}, {4}; returns the records."""
        saved = store.save_many(
            [(record(i, 100 + i, created=float(i)), blob_value(i)) for i in range(1, 7)]
        )
        for keys in ([dv(1), dv(2)], [dv(3)], [dv(4)]):
            with store.run_log() as log:
                log.hit_many(keys)
        return saved

    def test_gc_keeps_what_the_last_runs_used(self, store: Store) -> None:
        """keep_runs=2 keeps the keys of the last two runs and drops the rest, listing them."""
        self._three_runs(store)
        report = store.gc(keep_runs=2, grace=0)
        assert sorted(rec.key for rec in report.removed) == [dv(1), dv(2), dv(5), dv(6)]
        assert sorted(rec.key for rec in store.index.records()) == [dv(3), dv(4)]
        assert sorted(report.blobs_removed) == [dv(101), dv(102), dv(105), dv(106)]
        assert sorted(store.blobs.data_versions()) == [dv(103), dv(104)]
        assert report.kept == 2 and report.bytes_freed > 0 and not report.dry_run

    def test_gc_with_more_runs_than_logged_keeps_everything(self, store: Store) -> None:
        """With fewer logged runs than keep_runs, the window reaches back: nothing is dropped."""
        self._three_runs(store)
        assert store.gc(keep_runs=5, grace=0).removed == []
        assert store.gc(grace=0).removed == []  # keep_runs=None keeps every result
        assert len(store.index) == 6

    def test_gc_keeps_pinned_and_recent_results(self, store: Store) -> None:
        """Pinned keys, keys pinned for one gc, and results younger than grace are kept."""
        self._three_runs(store)
        store.pin(dv(5))
        store.save(record(7, 107), 7)  # created now
        report = store.gc(keep_runs=1, pins=[dv(6)], grace=3600)
        assert sorted(rec.key for rec in report.removed) == [dv(1), dv(2), dv(3)]
        assert sorted(rec.key for rec in store.index.records()) == [dv(4), dv(5), dv(6), dv(7)]
        assert dv(5) in report.pinned and dv(6) in report.pinned

    def test_gc_keeps_results_created_inside_the_window(self, store: Store) -> None:
        """A result written after the oldest kept run started, by no logged run, is kept."""
        self._three_runs(store)
        started = store.runs()[-1].started
        store.save(record(8, 108, created=started + 1e-3), 8)  # e.g. by a killed batch
        kept = {rec.key for rec in store.index.records()} - {
            rec.key for rec in store.gc(keep_runs=1, grace=0).removed
        }
        assert kept == {dv(4), dv(8)}

    def test_gc_keeps_what_a_running_announced_run_wrote(self, store: Store) -> None:
        """Results created after a live announced run started are kept whatever keep_runs says."""
        self._three_runs(store)
        batch = store.run_log("batch", announce=True)
        store.save(record(9, 109), 9)
        with store.run_log() as log:
            log.hit_many([dv(4)])
        report = store.gc(keep_runs=1, grace=0)
        assert dv(9) not in {rec.key for rec in report.removed}
        batch.close()

    def test_gc_dry_run_deletes_nothing(self, store: Store) -> None:
        """dry_run reports what would go and leaves every row and blob in place."""
        self._three_runs(store)
        report = store.gc(keep_runs=1, grace=0, dry_run=True)
        assert len(report.removed) == 5 and report.dry_run
        assert len(store.index) == 6 and len(list(store.blobs.data_versions())) == 6

    def test_gc_byte_budget_drops_least_recently_used_first(self, store: Store) -> None:
        """max_bytes drops unpinned results, least recently used first, until the blobs fit."""
        values = {i: np.full(BIG // 8, i, dtype=np.int64) for i in range(1, 5)}
        store.save_many([(record(i, 100 + i, created=float(i)), values[i]) for i in values])
        for key in (dv(2), dv(1)):  # 1 is used last, then 2; 3 and 4 only created
            with store.run_log() as log:
                log.hit_many([key])
        store.pin(dv(3))
        size = store.lookup(dv(1)).size
        report = store.gc(max_bytes=2 * size, grace=0)
        assert [rec.key for rec in report.removed] == [dv(2), dv(4)]
        assert sorted(rec.key for rec in store.index.records()) == [dv(1), dv(3)]
        assert not report.over_budget
        assert store.gc(max_bytes=size // 2, grace=0).over_budget  # the pin cannot go

    def test_gc_counts_a_shared_blob_once_and_frees_it_with_its_last_key(
        self, store: Store
    ) -> None:
        """Two keys sharing a blob: dropping one keeps the blob; dropping both frees it."""
        store.save(record(1, 50, created=1.0), np.arange(BIG))
        store.save(record(2, 50, created=2.0), np.arange(BIG))
        with store.run_log() as log:
            log.hit_many([dv(2)])
        report = store.gc(keep_runs=1, grace=0)
        assert [rec.key for rec in report.removed] == [dv(1)] and report.blobs_removed == []
        assert_same(store.load(store.lookup(dv(2))), np.arange(BIG))

    def test_gc_reclaims_orphan_blobs(self, store: Store) -> None:
        """A blob no record references (a crash between blob and row) is removed by gc."""
        store.blobs.put(dv(77), "orphan")
        store.save(record(1, 11), "kept")
        assert store.gc(grace=3600).orphan_blobs == []  # too young
        report = store.gc(grace=0)
        assert report.orphan_blobs == [dv(77)] and report.removed == []
        assert not store.blobs.contains(dv(77)) and store.load(store.lookup(dv(1))) == "kept"

    def test_gc_trims_the_run_log(self, store: Store) -> None:
        """The run log keeps the newest max(keep_runs, run_log_limit) runs."""
        store.settings = store.settings.replace(run_log_limit=2)
        for _ in range(4):
            store.run_log().close()
        ids = [run.id for run in store.runs()]
        assert store.gc(grace=0).runs_trimmed == 2
        assert [run.id for run in store.runs()] == ids[2:]
        assert store.gc(keep_runs=5, grace=0).runs_trimmed == 0

    def test_gc_refuses_negative_arguments(self, store: Store) -> None:
        """Negative keep_runs or max_bytes are errors, not silent no-ops."""
        with pytest.raises(ValueError, match="keep_runs"):
            store.gc(keep_runs=-1)
        with pytest.raises(ValueError, match="max_bytes"):
            store.gc(max_bytes=-1)

    # -- verify, stats, listing, lineage, clear ------------------------------------------------

    def test_verify_passes_a_sound_store(self, store: Store) -> None:
        """A store of sound results verifies with no problems and counts them all."""
        items = [
            (record(i, 100 + i), VALUES["big-bytes"] if i else blob_value(1)) for i in range(3)
        ]
        store.save_many(items)
        report = store.verify()
        assert report.ok and (report.blobs, report.results) == (3, 3)

    def test_verify_reports_a_row_whose_blob_is_gone(self, store: Store) -> None:
        """An index row naming a missing blob is a problem, and quarantining drops the row."""
        store.save(record(1, 11), "x")
        store.index.put(record(2, 99))  # no blob
        report = store.verify(quarantine=False)
        assert [(p.kind, p.name) for p in report.problems] == [("index", dv(2))]
        assert "missing" in report.problems[0].reason and store.lookup(dv(2)) is not MISSING
        assert not store.verify().ok
        assert store.lookup(dv(2)) is MISSING and store.verify().ok

    def test_stats_count_results_bytes_and_hit_rates(self, store: Store) -> None:
        """stats counts results, nodes, blob bytes once each, runs, hits and the hit rate."""
        store.save(record(1, 50, node="a"), VALUES["big-bytes"])
        store.save(record(2, 50, node="b"), VALUES["big-bytes"])
        store.save(record(3, 51, node="b"), blob_value(1))
        with store.run_log() as log:
            log.wrote_many([dv(1)])
            log.hit_many([dv(2), dv(3), dv(2)])
        stats = store.stats()
        assert (stats.results, stats.nodes, stats.blobs, stats.runs) == (3, 2, 2, 1)
        assert stats.bytes == store.lookup(dv(1)).size + store.lookup(dv(3)).size
        assert (stats.hits, stats.computed, stats.hit_rate) == (2, 1, 2 / 3)
        per_node = {n.node: n for n in stats.per_node}
        assert (per_node["b"].results, per_node["b"].hits, per_node["a"].computed) == (2, 2, 1)

    def test_listing_counts_hits_per_run_and_filters(self, store: Store) -> None:
        """list_results gives hit counts from the run log, newest first, filtered by glob."""
        from incgraph.store.usage import list_results

        store.save(record(1, 11, node="grid/1", created=1.0), 1)
        store.save(record(2, 12, node="grid/2", created=2.0), 2)
        store.save(record(3, 13, node="other", created=3.0), 3)
        for _ in range(3):
            with store.run_log() as log:
                log.hit_many([dv(1), dv(1)])
        found = list_results(store)
        assert [info.record.key for info in found] == [dv(3), dv(2), dv(1)]
        assert [info.hits for info in found] == [0, 0, 3]
        assert [i.record.node for i in list_results(store, node="grid/*")] == ["grid/2", "grid/1"]
        assert list_results(store, processor="nope.*") == []

    def test_lineage_follows_inputs_to_their_producers(self, store: Store) -> None:
        """lineage leads from a result through each input's data version to what produced it."""
        from incgraph.store.lineage import lineage

        store.save(record(1, 11, node="load", inputs={"n": dv(500)}), 1)
        store.save(record(2, 12, node="scale", inputs={"data": dv(11), "k": dv(501)}), 2)
        store.save(record(3, 13, node="sum", inputs={"a": dv(12), "b": dv(11)}), 3)
        tree = lineage(store, dv(3))
        assert [n.record.node for n in tree.walk()] == ["sum", "scale", "load", "load"]
        a, b = tree.inputs
        assert (a.name, a.data_version, b.producers[0].seen) == ("a", dv(12), True)
        assert [i.producers for i in a.producers[0].inputs if i.name == "k"] == [[]]
        shallow = lineage(store, dv(3), depth=1)
        assert all(p.truncated for i in shallow.inputs for p in i.producers if not p.seen)
        with pytest.raises(KeyError):
            lineage(store, dv(404))

    def test_clear_deletes_results_blobs_runs_and_pins(self, store: Store) -> None:
        """clear empties the store and reports what it deleted; the store stays usable."""
        store.save_many([(record(i, 100 + i), VALUES["big-list"]) for i in range(3)])
        store.pin(dv(1))
        store.run_log().close()
        report = store.clear()
        assert (report.results, report.blobs, report.runs, report.pins) == (3, 3, 1, 1)
        assert list(store.index.records()) == [] and list(store.blobs.data_versions()) == []
        assert store.runs() == [] and store.pins() == []
        assert store.load(store.save(record(5, 5), "again")) == "again"


class RunLogContract:
    """The run log (`incgraph.store.runlog.RunLog`) over every ledger: one row per run."""

    def test_a_run_log_is_one_row_with_its_distinct_keys(self, store: Store) -> None:
        """A closed run log is one run with its distinct hits and writes, in order of runs."""
        with store.run_log("run", "first") as log:
            log.hits += [dv(1), dv(2), dv(1)]
            log.wrote_many([dv(3), dv(3)])
        with store.run_log("batch", "second") as log:
            log.hit_many([dv(3)])
        first, second = store.runs()
        assert (first.kind, first.label, first.hits, first.computed) == ("run", "first", 2, 1)
        assert (first.status, second.kind, second.hits) == ("ok", "batch", 1)
        assert second.id > first.id and first.finished is not None
        keys = store.ledger.run_keys([first.id, second.id])
        assert keys[first.id] == ([dv(1), dv(2)], [dv(3)])
        assert keys[second.id] == ([dv(3)], [])

    def test_a_key_written_is_not_also_counted_as_a_hit(self, store: Store) -> None:
        """A run that wrote a key and later hit it logs it once, as written."""
        with store.run_log() as log:
            log.wrote_many([dv(1)])
            log.hit_many([dv(1), dv(2)])
        assert store.ledger.run_keys([store.runs()[0].id])[store.runs()[0].id] == (
            [dv(2)],
            [dv(1)],
        )

    def test_a_failed_run_is_logged_as_failed(self, store: Store) -> None:
        """A run log closed by an exception records status "failed" and keeps its keys."""
        with pytest.raises(RuntimeError), store.run_log() as log:
            log.wrote_many([dv(1)])
            raise RuntimeError("boom")
        assert [(run.status, run.computed) for run in store.runs()] == [("failed", 1)]

    def test_an_announced_run_is_visible_while_it_runs(self, store: Store) -> None:
        """announce=True logs the run as "running" at once, then completes that same row."""
        log = store.run_log("batch", "long", announce=True)
        (running,) = store.runs()
        assert (running.status, running.finished) == ("running", None)
        log.wrote_many([dv(1)])
        assert log.close() == running.id
        assert log.close() == running.id  # closing twice writes nothing more
        (done,) = store.runs()
        assert (done.id, done.status, done.computed) == (running.id, "ok", 1)

    def test_keys_that_are_not_hex_round_trip_through_the_log(self, store: Store) -> None:
        """Keys of any text survive the run log's packing."""
        odd = ["short", "é" * 32, "A" * 32]
        with store.run_log() as log:
            log.hit_many(odd)
        run_id = store.runs()[0].id
        assert store.ledger.run_keys([run_id])[run_id] == (odd, [])


class LedgerContract:
    """Pins and leases of every `incgraph.store.Ledger`, through the store and directly."""

    # -- pins ----------------------------------------------------------------------------------

    def test_pins_are_kept_by_prefix_and_removed(self, store: Store) -> None:
        """pin accepts a unique prefix and returns the key; unpin removes it; pins lists them."""
        store.save(record("aa", 1), 1)
        store.save(record("bb", 2), 2)
        key = store.pin(record("aa", 1).key[:6])
        assert key == record("aa", 1).key and store.pins() == [key]
        store.pin(key)  # pinning twice keeps one pin
        assert store.pins() == [key]
        assert store.unpin(key[:5]) == key and store.pins() == []
        assert store.unpin(key) is None
        with pytest.raises(KeyError):
            store.pin("ffff")

    # -- leases --------------------------------------------------------------------------------

    def test_a_claim_is_mine_theirs_or_done(self, store: Store) -> None:
        """The first claimant gets a key, a second sees it as theirs, a stored key is done."""
        store.save(record(1, 11), 1)
        a, b = store.lessee(), store.lessee()
        try:
            mine = a.claim_many([dv(1), dv(2), dv(3)])
            assert mine.mine == [dv(2), dv(3)] and mine.done == {dv(1): dv(11)}
            theirs = b.claim_many([dv(2), dv(4)])
            assert theirs.mine == [dv(4)] and theirs.theirs == [dv(2)]
            assert store.ledger.lease_states([dv(2)])[dv(2)].owner == a.owner
        finally:
            a.close()
            b.close()

    def test_a_claim_after_the_result_is_stored_is_done(self, store: Store) -> None:
        """Once the holder saves and releases, a waiting claimant's poll sees the result."""
        a, b = store.lessee(), store.lessee()
        try:
            assert a.claim_many([dv(1)]).mine == [dv(1)]
            assert b.poll([dv(1)]).theirs == [dv(1)]
            store.save(record(1, 11), "x")
            a.release([dv(1)])
            assert b.poll([dv(1)]).done == {dv(1): dv(11)}
            assert b.wait([dv(1)]).done == {dv(1): dv(11)}
        finally:
            a.close()
            b.close()

    def test_a_released_lease_without_a_result_is_taken_over(self, store: Store) -> None:
        """A holder that fails releases its lease; the waiter then claims the key itself."""
        a, b = store.lessee(), store.lessee()
        try:
            a.claim_many([dv(1)])
            a.release([dv(1)])
            assert b.wait([dv(1)]).mine == [dv(1)]
            assert store.ledger.lease_states()[dv(1)].owner == b.owner
        finally:
            a.close()
            b.close()

    def test_an_expired_lease_is_taken_over(self, store: Store) -> None:
        """A lease whose holder stopped renewing it is free once it expires."""
        ledger = store.ledger
        ledger.claim([dv(1)], "dead", expires=100.0, now=50.0)
        assert list(ledger.claim([dv(1)], "me", expires=200.0, now=99.0).theirs) == [dv(1)]
        assert ledger.claim([dv(1)], "me", expires=200.0, now=101.0).mine == [dv(1)]
        assert ledger.lease_states([dv(1)])[dv(1)].owner == "me"

    def test_a_lease_of_an_exited_process_here_is_taken_over_before_expiry(
        self, store: Store
    ) -> None:
        """poll() takes over an unexpired lease whose holder is a process on this host that exited."""
        import socket
        import subprocess
        import sys
        import time

        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        dead_owner = f"{socket.gethostname()}:{child.stdout.strip()}:1:deadbeef0000"
        store.ledger.claim([dv(1), dv(2)], dead_owner, expires=time.time() + 3600, now=time.time())
        live_owner = f"{socket.gethostname()}:{os.getpid()}:1:alive0000000"
        store.ledger.claim([dv(3)], live_owner, expires=time.time() + 3600, now=time.time())
        lessee = store.lessee()
        try:
            claims = lessee.poll([dv(1), dv(2), dv(3)])
            assert sorted(claims.mine) == sorted([dv(1), dv(2)])
            assert claims.theirs == [dv(3)]
        finally:
            lessee.close()

    def test_renewal_pushes_the_expiry_of_own_leases_only(self, store: Store) -> None:
        """renew extends the claimant's own leases; release drops only its own."""
        ledger = store.ledger
        ledger.claim([dv(1)], "me", expires=100.0, now=0.0)
        ledger.claim([dv(2)], "you", expires=100.0, now=0.0)
        ledger.renew("me", [dv(1), dv(2)], expires=500.0)
        ledger.release("me", [dv(2)])
        states = ledger.lease_states()
        assert states[dv(1)].expires == 500.0 and states[dv(2)].expires == 100.0
        assert ledger.drop_expired(now=200.0) == 1
        assert list(ledger.lease_states()) == [dv(1)]

    def test_a_lessee_renews_when_a_third_of_its_ttl_has_passed(self, store: Store) -> None:
        """renew_due renews every held lease once ttl/3 has passed since the last renewal."""
        lessee = store.lessee(ttl=30.0)
        try:
            lessee.claim_many([dv(1)])
            first = store.ledger.lease_states()[dv(1)].expires
            lessee.renew_due(lessee.renewed + 1.0)  # too early: nothing written
            assert store.ledger.lease_states()[dv(1)].expires == first
            lessee.renew_due(lessee.renewed + 11.0)
            assert store.ledger.lease_states()[dv(1)].expires >= first + 10.0
        finally:
            lessee.close()
        assert store.ledger.lease_states() == {}

    def test_a_session_logs_claims_saves_and_releases(self, store: Store) -> None:
        """A session claims, logs what was saved, releases its leases, and logs one run."""
        with store.session("batch", "items") as session:
            assert session.claim([dv(1), dv(2)]).mine == [dv(1), dv(2)]
            store.save(record(1, 11), 1)
            session.saved([dv(1)])
            session.hits.append(dv(7))
            assert list(store.ledger.lease_states()) == [dv(2)]
        assert store.ledger.lease_states() == {}
        (run,) = store.runs()
        assert (run.kind, run.label, run.hits, run.computed) == ("batch", "items", 1, 1)

    def test_acquire_returns_a_stored_version_or_none(self, store: Store) -> None:
        """acquire gives the data version of a stored key, and None when the key is ours."""
        store.save(record(1, 11), 1)
        with store.session() as session:
            assert session.acquire(dv(1)) == dv(11)
            assert session.acquire(dv(2)) is None

    def test_ledger_runs_are_added_started_finished_and_deleted(self, store: Store) -> None:
        """add_run and start_run give increasing ids, finish_run completes, delete_runs removes."""
        ledger = store.ledger
        first = ledger.add_run(_entry("a", "ok", hits=[dv(1)], written=[dv(2)]))
        second = ledger.start_run(_entry("b", "running"))
        assert second > first
        assert [(r.label, r.status) for r in ledger.runs()] == [("a", "ok"), ("b", "running")]
        ledger.finish_run(second, _entry("b", "failed", written=[dv(3)]))
        assert [(r.id, r.status, r.computed) for r in ledger.runs()][1] == (second, "failed", 1)
        assert ledger.run_keys([first, second, 999]) == {
            first: ([dv(1)], [dv(2)]),
            second: ([], [dv(3)]),
        }
        ledger.delete_runs([first, 999])
        assert [r.id for r in ledger.runs()] == [second]

    @pytest.mark.parametrize("started", [False, True])
    def test_end_run_releases_the_owners_leases_and_logs_the_run(
        self, store: Store, started: bool
    ) -> None:
        """end_run drops the owner's leases (not others') and adds or completes the run."""
        ledger = store.ledger
        ledger.claim([dv(1), dv(2)], "me", expires=2e9, now=1e9)
        ledger.claim([dv(3)], "you", expires=2e9, now=1e9)
        run_id = ledger.start_run(_entry("r", "running")) if started else None
        ended = ledger.end_run(_entry("r", "ok", written=[dv(1)]), run_id, "me", [dv(1), dv(3)])
        assert run_id is None or ended == run_id
        assert sorted(ledger.lease_states()) == [dv(2), dv(3)]
        (run,) = ledger.runs()
        assert (run.id, run.status, ledger.run_keys([ended])[ended]) == (ended, "ok", ([], [dv(1)]))

    def test_ledger_pins_keep_their_first_time_and_clear_forgets_everything(
        self, store: Store
    ) -> None:
        """pin keeps the first pin time; unpin ignores absent keys; clear empties the ledger."""
        ledger = store.ledger
        ledger.pin([dv(1)], 10.0)
        ledger.pin([dv(1), dv(2)], 20.0)
        assert ledger.pins() == {dv(1): 10.0, dv(2): 20.0}
        ledger.unpin([dv(2), dv(9)])
        assert ledger.pins() == {dv(1): 10.0}
        ledger.claim([dv(5)], "me", expires=2e9, now=1e9)
        ledger.add_run(_entry("x", "ok"))
        ledger.clear()
        assert (ledger.pins(), ledger.lease_states(), ledger.runs()) == ({}, {}, [])

    def test_a_ledger_survives_end_thread_and_close(self, store: Store) -> None:
        """end_thread and close release handles only: the ledger keeps working after both."""
        ledger = store.ledger
        ledger.pin([dv(1)], 1.0)
        ledger.end_thread()
        ledger.close()
        assert ledger.pins() == {dv(1): 1.0}


def _entry(
    label: str,
    status: str,
    *,
    hits: list[str] = (),
    written: list[str] = (),  # type: ignore[assignment]
) -> RunEntry:
    """A run-log entry of ``label`` with ``status`` and these keys."""
    finished = None if status == "running" else 2.0
    hits, written = list(hits), list(written)
    return RunEntry(
        "run", label, "tester", 1.0, finished, status, len(hits), len(written),
        pack_keys(hits), pack_keys(written),
    )  # fmt: skip


class Pointer(dict):  # type: ignore[type-arg]
    """A value that names another blob it needs (as a Flow manifest does)."""

    def __incgraph_refs__(self) -> list[str]:
        return [dv(11)]


class IndexContract:
    """Every `incgraph.store.Index`, called directly (``store.index``)."""

    def test_put_get_and_bulk_reads_agree(self, store: Store) -> None:
        """put, put_many, get, get_many, data_version_of and data_versions_of see the same rows."""
        index = store.index
        index.put(record(1, 11, created=1.0))
        index.put_many([record(2, 12, created=2.0), record(3, 13, created=3.0)])
        assert index.get(dv(1)) == record(1, 11, created=1.0) and index.get(dv(9)) is MISSING
        assert sorted(index.get_many([dv(1), dv(3), dv(9)])) == [dv(1), dv(3)]
        assert (index.data_version_of(dv(2)), index.data_version_of(dv(9))) == (dv(12), MISSING)
        assert index.data_versions_of([dv(1), dv(9), dv(3)]) == {dv(1): dv(11), dv(3): dv(13)}

    def test_latest_entries_give_key_version_and_duration(self, store: Store) -> None:
        """latest_entries and latest_versions give each node's newest record, in bulk."""
        index = store.index
        index.put_many(
            [
                record(1, 11, node="a", created=1.0, duration=0.5),
                record(2, 12, node="a", created=2.0, duration=0.25),
                record(3, 13, node="b", created=1.0),
            ]
        )
        assert index.latest_entries(["a", "b", "z"]) == {
            "a": (dv(2), dv(12), 0.25),
            "b": (dv(3), dv(13), 0.0),
        }
        assert index.latest_versions(["a"]) == {"a": (dv(2), dv(12))}
        assert index.latest_for_node("a") == record(2, 12, node="a", created=2.0, duration=0.25)

    def test_keys_by_prefix_and_by_data_version(self, store: Store) -> None:
        """keys_with_prefix lists keys in order up to a limit; keys_for_data_version the producers."""
        index = store.index
        index.put_many([record("ab1", 11), record("ab2", 11), record("cd", 12)])
        prefix = record("ab1", 11).key[:3]
        assert index.keys_with_prefix(prefix) == sorted([dv("ab1"), dv("ab2")])
        assert len(index.keys_with_prefix(prefix, limit=1)) == 1
        assert sorted(index.keys_for_data_version(dv(11))) == sorted([dv("ab1"), dv("ab2")])
        assert index.keys_for_data_version(dv(99)) == []

    def test_delete_unchanged_spares_a_record_written_again(self, store: Store) -> None:
        """delete_unchanged removes a record only if it is still stored as it was read."""
        index = store.index
        old = record(1, 11, created=1.0)
        index.put_many([old, record(2, 12, created=1.0)])
        index.put(record(1, 11, created=5.0))  # rewritten since it was read
        index.delete_unchanged([old, record(2, 12, created=1.0)])
        assert index.get(dv(1)) == record(1, 11, created=5.0) and index.get(dv(2)) is MISSING

    def test_raw_rows_name_rows_that_delete_raw_removes(self, store: Store) -> None:
        """raw_rows gives each row with its data version second; delete_raw drops rows by ref."""
        index = store.index
        index.put_many([record(1, 11), record(2, 12)])
        rows = list(index.raw_rows())
        assert sorted(row[1] for _, row in rows) == [dv(11), dv(12)]
        index.delete_raw([ref for ref, row in rows if row[1] == dv(11)])
        assert [rec.key for rec in index.records()] == [dv(2)]

    def test_refs_are_recorded_found_and_dropped_with_their_results(self, store: Store) -> None:
        """put_refs records references; referencing finds results; drop_unused_refs forgets."""
        index = store.index
        index.put_many([record(1, 11), record(2, 12)])
        index.put_refs([(dv(11), dv(50)), (dv(12), dv(50)), (dv(12), dv(51))])
        assert index.refs() == {dv(11): {dv(50)}, dv(12): {dv(50), dv(51)}}
        assert sorted(index.referencing(dv(50))) == [dv(1), dv(2)]
        index.delete([dv(2)])
        index.drop_unused_refs()
        assert index.refs() == {dv(11): {dv(50)}}

    def test_put_sharing_data_gives_a_second_key_a_loadable_row(self, store: Store) -> None:
        """A second key put with put_sharing_data loads the value after the first key is gone."""
        first = store.save(record(1, 11), {"small": 1})
        store.index.put_sharing_data([record(2, 11, created=first.created)])
        store.index.delete([dv(1)])
        assert store.load(store.lookup(dv(2))) == {"small": 1}

    def test_save_with_commits_blobs_then_rows(self, store: Store) -> None:
        """save_with stores every value and row, fills size, keeps a given time, records refs."""
        items = [(record(1, 11), blob_value(1)), (record(2, 12, created=3.0), Pointer(a=1))]
        saved = store.index.save_with(store.blobs, items, 7.0)
        assert [(rec.created, rec.size > 0) for rec in saved] == [(7.0, True), (3.0, True)]
        assert [store.index.get(rec.key) for rec in saved] == saved
        assert store.load(saved[0]) == blob_value(1) and store.index.refs() == {dv(12): {dv(11)}}

    def test_rows_that_hold_bytes_agree_with_each_other(self, store: Store) -> None:
        """row_value, row_data, row_bytes and holds_data describe the same rows (maybe none)."""
        store.save(record(1, 11), {"small": 1})
        store.save(record(2, 12), VALUES["big-bytes"])
        index = store.index
        held = index.row_bytes()
        assert set(held) <= {dv(1)} and not index.holds_data(dv(2))
        assert index.holds_data(dv(1)) == (dv(1) in held)
        assert [key for _, key, *_ in index.row_data()] == list(held)
        assert index.row_value(dv(12)) is MISSING
        if held:
            assert index.row_value(dv(11)) == {"small": 1}
        else:
            assert index.row_value(dv(11)) is MISSING

    def test_snapshot_and_locked_run_reads_and_writes(self, store: Store) -> None:
        """Reads inside snapshot see the rows; writes inside locked commit with the lock held."""
        index = store.index
        index.put(record(1, 11))
        with index.snapshot():
            assert index.data_version_of(dv(1)) == dv(11)
        assert index.locked(lambda: index.delete([dv(1)]) or "done") == "done"
        assert index.get(dv(1)) is MISSING

    def test_a_sound_index_has_no_integrity_problem_and_counts_its_bytes(
        self, store: Store
    ) -> None:
        """integrity_problem is None for a sound index; disk_bytes counts whole bytes (0 for an
        index with no local file)."""
        store.save(record(1, 11), 1)
        assert store.index.integrity_problem() is None
        size = store.index.disk_bytes()
        assert isinstance(size, int) and size >= 0
        assert (size > 0) == isinstance(store.index, SqliteIndex)

    def test_make_ledger_decides_claims_against_this_index(self, store: Store) -> None:
        """A ledger made by the index sees its stored keys as done."""
        store.save(record(1, 11), 1)
        ledger = store.index.make_ledger()
        assert ledger.claim([dv(1), dv(2)], "me", expires=2e9, now=1e9).done == {dv(1): dv(11)}
        ledger.release("me", [dv(2)])


class BlobStoreContract:
    """Every `incgraph.store.BlobStore`, called directly (``store.blobs``)."""

    @pytest.mark.parametrize("name", ["int", "big-bytes", "dict", "big-list"])
    def test_put_many_round_trips_and_reports_sizes(self, store: Store, name: str) -> None:
        """put_many stores each value once and returns each one's size, in order."""
        blobs = store.blobs
        sizes = blobs.put_many([(dv(1), VALUES[name]), (dv(2), blob_value(2)), (dv(1), 0)])
        assert len(sizes) == 3 and sizes[0] == sizes[2] > 0
        assert_same(blobs.get(dv(1)), VALUES[name])
        assert blobs.contains(dv(2)) and not blobs.contains(dv(3))

    def test_a_captured_value_stores_its_bytes(self, store: Store) -> None:
        """put of a captured value stores the value as captured, not as mutated since."""
        value = [1, 2]
        captured = store.capture(value)
        value.append(3)
        store.blobs.put(dv(1), captured)
        assert store.blobs.get(dv(1)) == [1, 2]

    def test_entries_and_data_versions_list_every_blob(self, store: Store) -> None:
        """entries gives each blob's size and time; data_versions the same keys."""
        store.blobs.put_many([(dv(1), blob_value(1)), (dv(2), VALUES["big-bytes"])])
        entries = {entry.data_version: entry for entry in store.blobs.entries()}
        assert sorted(entries) == sorted(store.blobs.data_versions()) == [dv(1), dv(2)]
        assert all(entry.size > 0 and entry.created > 0 for entry in entries.values())

    def test_delete_many_counts_what_was_stored(self, store: Store) -> None:
        """delete_many removes the blobs and counts only those that were stored."""
        store.blobs.put_many([(dv(1), 1), (dv(2), 2)])
        assert store.blobs.delete_many([dv(1), dv(9)]) == 1
        store.blobs.delete(dv(2))
        store.blobs.delete(dv(2))  # absent: ignored
        assert list(store.blobs.data_versions()) == []
        with pytest.raises(KeyError):
            store.blobs.get(dv(1))

    def test_check_passes_a_sound_blob(self, store: Store) -> None:
        """check is None for a sound blob and gives a reason for one not stored."""
        store.blobs.put(dv(1), VALUES["big-bytes"])
        assert store.blobs.check(dv(1)) is None
        assert isinstance(store.blobs.check(dv(2)), str)

    def test_quarantine_never_loses_the_bytes(self, store: Store, tmp_path: Path) -> None:
        """quarantine leaves the bytes somewhere: in the file it returns, or still stored (a
        store in memory has no folder; an object store keeps sound bytes)."""
        store.blobs.put(dv(1), VALUES["big-bytes"])
        moved = store.blobs.quarantine(dv(1), tmp_path / "quarantined")
        assert (
            (moved is not None and moved.is_file())
            or store.blobs.contains(dv(1))
            or (store.path is None)
        )
        assert store.blobs.quarantine(dv(9), tmp_path / "quarantined") is None

    def test_a_fresh_store_has_no_orphan_or_temporary_files(self, store: Store) -> None:
        """A store that only completed its writes has no orphan or stale temporary files."""
        store.blobs.put_many([(dv(1), VALUES["big-bytes"]), (dv(2), 2)])
        assert store.blobs.orphan_files(0.0) == [] and store.blobs.stale_temp_files(0.0) == []
        assert store.blobs.remove_files([]) == []

    def test_path_of_names_a_file_only_for_a_blob_kept_in_one(self, store: Store) -> None:
        """path_of gives an existing file holding the bytes, or None."""
        store.blobs.put(dv(1), VALUES["big-bytes"])
        path = store.blobs.path_of(dv(1))
        assert path is None or path.is_file()
        assert store.blobs.path_of(dv(9)) is None

    def test_signed_and_inline_limit_are_declared(self, store: Store) -> None:
        """signed is a bool and inline_limit a positive int, what capture and load go by."""
        assert isinstance(store.blobs.signed, bool) and store.blobs.inline_limit > 0
