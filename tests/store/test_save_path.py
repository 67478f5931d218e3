"""The save hot path: small values skip the look-up and store the very bytes they always did."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import FileBlobStore, SqliteFile, SqliteIndex, Store, file_blobs, open_store
from incgraph.store.codecs import Encoded, checksum, checksum_of, dumps, encode, encode_small
from incgraph.store.file_blobs import _check_data_versions

from .contract import BIG, blob_value, dv, record

LIMIT = 1024
ALL_FILES = DEFAULT_SETTINGS.replace(blob_inline_limit_bytes=1)
"""Every blob in a file of its own."""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = open_store(tmp_path / "store")
    yield made
    made.close()


def blob_row(path: Path, data_version: str) -> tuple[Any, ...]:
    """The raw ``blobs`` row of ``data_version``, with SQLite's type of its data column."""
    conn = sqlite3.connect(path / "index.sqlite")
    try:
        return conn.execute(
            "SELECT codec, checksum, size, data, typeof(data), tag FROM blobs "
            "WHERE data_version = ?",
            (data_version,),
        ).fetchone()
    finally:
        conn.close()


def reference_encode(value: Any, inline_limit: int) -> Encoded:
    """How encode chose and built the bytes before the fast path (the oracle for equal bytes)."""
    if type(value) is bytes and len(value) >= inline_limit:
        return Encoded("raw", (value,), len(value))
    if type(value) is np.ndarray and not value.dtype.hasobject and value.nbytes >= inline_limit:
        return encode(value, inline_limit=inline_limit)  # npy: untouched by the fast path
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return Encoded("pickle", (data,), len(data))
    try:
        raws = [buffer.raw() for buffer in buffers]
    except BufferError:
        raws = None
    if raws is None or len(data) + sum(raw.nbytes for raw in raws) < inline_limit:
        data = pickle.dumps(value, protocol=5)
        return Encoded("pickle", (data,), len(data))
    return encode(value, inline_limit=inline_limit)  # pickle5: untouched by the fast path


VALUES = [
    {"y": ("v", 1), "index": 1},
    None,
    b"x" * 10,
    b"x" * (LIMIT - 40),
    b"x" * LIMIT,
    "s" * (LIMIT - 30),
    list(range(LIMIT)),
    np.arange(4),
    np.arange(LIMIT),
    np.arange(40.0).reshape(5, 8)[:, ::2],  # non-contiguous
    {"a": np.arange(4)},
    {"a": np.arange(LIMIT)},
    {"a": np.arange(40.0).reshape(5, 8)[:, ::2]},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_encode_small_gives_the_bytes_encode_always_gave(value: Any) -> None:
    """encode_small returns bare bytes exactly when encode gives one inline pickle, same bytes."""
    expected = reference_encode(value, LIMIT)
    found = encode_small(value, inline_limit=LIMIT)
    encoded = encode(value, inline_limit=LIMIT)
    assert (encoded.codec, encoded.join(), encoded.size) == (
        expected.codec,
        expected.join(),
        expected.size,
    )
    if expected.codec == "pickle" and expected.size < LIMIT:
        assert found == expected.join() and type(found) is bytes
    else:
        assert isinstance(found, Encoded) and found.join() == expected.join()


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=7))
def test_one_shot_checksum_equals_the_streamed_one(data: bytes, pieces: int) -> None:
    """checksum_of(data) is checksum() of data in any number of parts (xxh3 one-shot = stream)."""
    step = max(1, len(data) // pieces)
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    assert checksum_of(data) == checksum(parts) == checksum([data])


@pytest.mark.parametrize("size", [0, 1, 16, 17, 128, 129, 240, 241, 1024, 1025, 5000])
def test_one_shot_checksum_at_xxh3_length_boundaries(size: int) -> None:
    """At every length where xxh3 switches strategy, the one-shot digest is the streamed one."""
    data = bytes(range(256)) * (size // 256 + 1)
    assert checksum_of(data[:size]) == checksum([data[: size // 2], data[size // 2 : size]])


def test_a_small_value_is_stored_as_before(store: Store) -> None:
    """An inline row holds codec 'pickle', the checksum and size of the pickle, a BLOB, no tag."""
    value = blob_value(3)  # above the 1 KiB kept in the result's own row
    saved = store.save(record(1, 2), value)
    data = dumps(value)
    assert blob_row(store.path, dv(2)) == (
        "pickle",
        checksum([data]),
        len(data),
        data,
        "blob",
        None,
    )
    assert saved.size == len(data)
    assert store.load(saved) == value


def test_a_signed_small_value_carries_its_tag(tmp_path: Path) -> None:
    """In a signed store an inline row carries the HMAC tag of its bytes, and loads."""
    with open_store(tmp_path, hmac_key="k") as signed:
        saved = signed.save(record(1, 2), {"a": 1})
        tag = blob_row(tmp_path, dv(2))[5]
        assert tag == signed.blobs.signer.tag(dv(2), "pickle", [dumps({"a": 1})])
        assert signed.load(saved) == {"a": 1}


def test_a_signed_store_rewrites_an_unsigned_small_blob(tmp_path: Path) -> None:
    """Saving under a key a data version whose inline row is unsigned replaces that row."""
    with open_store(tmp_path) as plain:
        plain.save(record(1, 2), blob_value("same"))
    with open_store(tmp_path, hmac_key="k") as signed:
        saved = signed.save(record(3, 2), blob_value("same"))
        assert blob_row(tmp_path, dv(2))[5] is not None
        assert signed.load(saved) == blob_value("same") and signed.verify().ok


def test_an_existing_small_blob_wins_and_gives_its_size(store: Store) -> None:
    """Saving other bytes under a stored data version keeps the stored row; its size is returned."""
    first = store.save(record(1, 2), blob_value("first"))
    new = blob_value("new")
    second = store.save_many([(record(3, 2), blob_value("second, longer")), (record(4, 5), new)])
    assert [rec.size for rec in second] == [first.size, len(dumps(new))]
    assert store.load(store.lookup(dv(3))) == blob_value("first")
    assert store.load(store.lookup(dv(4))) == new


def test_a_small_value_replaces_a_file_row_whose_file_is_gone(tmp_path: Path) -> None:
    """A file row whose file vanished is rewritten by an inline save of its data version."""
    db = SqliteFile(tmp_path / "index.sqlite")
    all_files = Store(
        SqliteIndex(db), FileBlobStore(tmp_path / "blobs", db, settings=ALL_FILES), path=tmp_path
    )
    value, other = blob_value("value"), blob_value("other")
    all_files.save(record(1, 2), value)
    all_files.blobs.path_of(dv(2)).unlink()
    all_files.close()
    with open_store(tmp_path) as store:  # the same folder, the default inline limit
        saved = store.save_many([(record(3, 2), value), (record(4, 5), other)])
        assert blob_row(tmp_path, dv(2))[4] == "blob"  # inline now
        assert [store.load(rec) for rec in saved] == [value, other]
        assert saved[0].size == len(dumps(value))
        assert store.verify().ok


def test_a_small_value_keeps_a_complete_file_row(tmp_path: Path) -> None:
    """A file row whose file is there stays (first row wins) when the value would be inline."""
    db = SqliteFile(tmp_path / "index.sqlite")
    all_files = Store(
        SqliteIndex(db), FileBlobStore(tmp_path / "blobs", db, settings=ALL_FILES), path=tmp_path
    )
    first = all_files.save(record(1, 2), "value")
    path = all_files.blobs.path_of(dv(2))
    all_files.close()
    with open_store(tmp_path) as store:
        again = store.save(record(3, 2), "value")
        assert store.blobs.path_of(dv(2)) == path and again.size == first.size
        assert store.load(again) == "value"


def test_a_mixed_batch_saves_in_order_and_skips_stored_files(store: Store) -> None:
    """Inline and file values, repeats and an already stored file: sizes in order, no rewrite."""
    big = store.save(record(1, 2), np.arange(BIG))
    path = store.blobs.path_of(dv(2))
    before = path.stat().st_mtime_ns
    items = [
        (record(3, 4), {"small": 1}),
        (record(5, 2), np.arange(BIG)),
        (record(6, 7), np.ones(BIG)),
        (record(8, 4), {"small": 1}),
    ]
    saved = store.save_many(items)
    assert [rec.key for rec in saved] == [dv(3), dv(5), dv(6), dv(8)]
    assert saved[1].size == big.size and saved[0].size == saved[3].size == len(dumps({"small": 1}))
    assert path.stat().st_mtime_ns == before
    assert sorted(p.name for p in path.parent.parent.glob("*/*")) == sorted(
        [path.name, store.blobs.path_of(dv(7)).name]
    )
    np.testing.assert_array_equal(store.load(saved[2]), np.ones(BIG))
    assert store.load(saved[3]) == {"small": 1}


def test_data_versions_are_checked_together_and_one_by_one(store: Store) -> None:
    """A bad data version among good ones is refused by name, however it hides."""
    _check_data_versions([dv(1), dv(2)])
    for bad in ["ab\ncd", "a", "x" * 129, "no/slash", 7]:
        with pytest.raises(ValueError, match="is not a hash string"):
            _check_data_versions([dv(1), bad, dv(2)])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="is not a hash string"):
            store.blobs.put_many([(dv(1), 1), (bad, 2)])  # type: ignore[list-item]
    assert list(store.blobs.data_versions()) == []


def test_stored_bytes_and_arrays_are_looked_up_before_encoding(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving again a stored big array or big bytes encodes nothing; a small dict is encoded."""
    store.save_many([(record(1, 2), np.arange(BIG)), (record(3, 4), b"b" * BIG)])
    encoded: list[object] = []
    real = file_blobs.encode_small

    def counting(value: Any, *, inline_limit: int) -> Any:
        encoded.append(value)
        return real(value, inline_limit=inline_limit)

    monkeypatch.setattr(file_blobs, "encode_small", counting)
    saved = store.save_many(
        [(record(5, 2), np.arange(BIG)), (record(6, 4), b"b" * BIG), (record(7, 8), {"s": 1})]
    )
    assert encoded == [{"s": 1}]
    assert store.load(saved[1]) == b"b" * BIG and store.load(saved[2]) == {"s": 1}
    small = store.save(record(9, 10), b"tiny")  # small bytes: looked up, then inline
    assert blob_row(store.path, dv(10))[4] == "blob" and store.load(small) == b"tiny"


def test_a_batch_that_met_stored_blobs_makes_the_next_look_up_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small values skip the look-up until a batch finds 1 in 8 stored; then the next one
    looks every data version up and encodes only the missing ones, until a batch finds none."""
    looked_up: list[list[str]] = []
    encoded: list[object] = []
    real_rows, real_encode = FileBlobStore._rows, file_blobs.encode_small

    def rows(self: FileBlobStore, data_versions: list[str]) -> Any:
        looked_up.append(list(data_versions))
        return real_rows(self, data_versions)

    def encode(value: Any, *, inline_limit: int) -> Any:
        encoded.append(value)
        return real_encode(value, inline_limit=inline_limit)

    monkeypatch.setattr(FileBlobStore, "_rows", rows)
    monkeypatch.setattr(file_blobs, "encode_small", encode)
    v = blob_value  # kept as blobs: a value kept in its row has no blob row to meet
    store.save_many([(record(i, i), v(i)) for i in range(8)])  # all new: no look-up
    store.save_many([(record(10, 0), v(0))] + [(record(i, i), v(i)) for i in range(20, 27)])
    assert looked_up == [] and len(encoded) == 16  # 1 in 8 met a stored blob (an insert missed)
    encoded.clear()
    saved = store.save_many([(record(30, 1), v(1)), (record(31, 2), v(2)), (record(32, 40), v(40))])
    assert looked_up == [[dv(1), dv(2), dv(40)]] and encoded == [v(40)]
    assert [store.load(rec) for rec in saved] == [v(1), v(2), v(40)]
    store.save_many([(record(50, 50), v(50))])  # after a batch that found 2 in 3: looked up, new
    store.save_many([(record(51, 51), v(51))])  # after a batch that found none: no look-up
    assert looked_up[1:] == [[dv(50)]]
    assert store.load(store.lookup(dv(51))) == v(51)
