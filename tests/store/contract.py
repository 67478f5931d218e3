"""The one contract every store implementation passes.

A test module subclasses :class:`StoreContract` and implements ``make_store``;
pytest collects the subclass (``Test...``), never this module (its name does
not start with ``test_``) or this base class (its name does not start with
``Test``).
"""

from __future__ import annotations

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
from incgraph.store import BlobStore, Index, Record, Store

BIG = 64 * 1024  # bytes: above the 32 KiB inline limit


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

    def make_store(self, tmp_path: Path) -> Store:
        raise AssertionError("a StoreContract subclass must implement make_store")

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        made = self.make_store(tmp_path)
        yield made
        made.close()

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
        first = store.save(record(1, 2), {"x": 1})
        second = store.save(record(1, 2), {"x": 1})
        assert second.size == first.size
        assert list(store.blobs.data_versions()) == [dv(2)]
        assert [rec.key for rec in store.index.records()] == [dv(1)]
        assert store.load(second) == {"x": 1}

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
        items = [(record(i, 100 + i % 5), {"i": i % 5}) for i in range(20)]
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
        saved = store.save(record(1, 5), "x")
        store.save(record(2, 5), "x")
        store.save(record(3, 6), "y")
        store.blobs.delete(dv(5))
        with pytest.raises(KeyError):
            store.load(saved)
        assert store.lookup(dv(1)) is MISSING and store.lookup(dv(2)) is MISSING
        assert store.load(store.lookup(dv(3))) == "y"

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
        node=st.text(min_size=1, max_size=20),
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


__all__ = ["ARRAYS", "BIG", "VALUES", "StoreContract", "assert_same", "dv", "record"]
