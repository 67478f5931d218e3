"""How values are encoded for the blob store, and how failures are translated."""

from __future__ import annotations

import errno
import pickle
import sqlite3

import numpy as np
import pandas as pd
import pytest

from incgraph.errors import ReadOnlyStoreError, StoreCorruptError, StoreError, StoreFullError
from incgraph.store.codecs import checksum, decode, encode
from incgraph.store.failure import is_busy, store_error

LIMIT = 1024


def decoded(value: object) -> object:
    encoded = encode(value, inline_limit=LIMIT)
    return decode(encoded.codec, bytearray(encoded.join()))


@pytest.mark.parametrize(
    ("value", "codec"),
    [
        (b"x" * 10, "pickle"),
        (b"x" * LIMIT, "raw"),
        (np.arange(10), "pickle"),
        (np.arange(LIMIT), "npy"),
        (np.array([object()] * LIMIT), "pickle"),
        ({"a": np.arange(LIMIT)}, "pickle5"),
        ({"a": np.arange(4)}, "pickle"),
        (list(range(LIMIT)), "pickle"),
    ],
)
def test_codec_choice(value: object, codec: str) -> None:
    """Small values are pickled; big bytes, plain arrays and buffer holders get their own codec."""
    assert encode(value, inline_limit=LIMIT).codec == codec


def test_pickle5_keeps_big_buffers_out_of_band_and_aligned() -> None:
    """A pickle5 blob stores each big buffer once, 64-byte aligned, and decodes equal."""
    frame = pd.DataFrame({"x": np.arange(10_000.0), "y": np.arange(10_000)})
    encoded = encode(frame, inline_limit=LIMIT)
    assert encoded.codec == "pickle5"
    assert encoded.size % 64 == 0
    assert encoded.size < len(pickle.dumps(frame, protocol=5)) + 1024
    pd.testing.assert_frame_equal(decode("pickle5", bytearray(encoded.join())), frame)


def test_npy_blob_is_a_valid_npy_file(tmp_path: object) -> None:
    """An npy blob's bytes are exactly what numpy.load reads as the same array."""
    array = np.asfortranarray(np.arange(600.0).reshape(20, 30))
    encoded = encode(array, inline_limit=LIMIT)
    path = tmp_path / "a.npy"  # type: ignore[operator]
    path.write_bytes(encoded.join())
    loaded = np.load(path)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.f_contiguous


def test_decoded_arrays_from_writable_buffers_are_writable() -> None:
    """Arrays decoded from a writable buffer are writable (the caller owns a private copy)."""
    assert decoded(np.arange(LIMIT)).flags.writeable
    assert decoded({"a": np.arange(LIMIT)})["a"].flags.writeable


def test_decoding_from_read_only_bytes_still_gives_a_writable_array() -> None:
    """An npy blob decoded from immutable bytes is copied, so it is writable too."""
    encoded = encode(np.arange(LIMIT), inline_limit=LIMIT)
    assert decode("npy", encoded.join()).flags.writeable


@pytest.mark.parametrize(
    ("codec", "data"),
    [("pickle5", b"not pickle5 at all" * 10), ("npy", b"\x93NUMPY\x09\x00" + b"0" * 64)],
)
def test_malformed_blobs_raise_value_error(codec: str, data: bytes) -> None:
    """A blob that does not hold what its codec expects raises ValueError."""
    with pytest.raises(ValueError):
        decode(codec, bytearray(data))


def test_unknown_codec_raises_value_error() -> None:
    """An unknown codec name raises ValueError listing the known ones."""
    with pytest.raises(ValueError, match="pickle"):
        decode("zstd", b"")


def test_unpicklable_values_raise_store_error() -> None:
    """A value pickle refuses raises StoreError naming its type and the fix."""
    with pytest.raises(StoreError, match=r"'generator'.*cache=False"):
        encode((i for i in range(3)), inline_limit=LIMIT)


def test_checksum_depends_on_content_not_split() -> None:
    """The checksum is the same however the bytes are split, and changes with any byte."""
    assert checksum([b"abc", b"def"]) == checksum([b"abcdef"])
    assert checksum([b"abcdef"]) != checksum([b"abcdeg"])
    assert len(checksum([b""])) == 16


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_errnos_become_store_full(code: int) -> None:
    """ENOSPC and EDQUOT become StoreFullError (errno ENOSPC) naming the path."""
    error = store_error(OSError(code, "full"), "/s/blobs/x")
    assert isinstance(error, StoreFullError) and error.errno == errno.ENOSPC
    assert "/s/blobs/x" in str(error)


def test_other_os_errors_become_store_errors() -> None:
    """EROFS becomes ReadOnlyStoreError; other OS errors become StoreError naming the path."""
    assert isinstance(store_error(OSError(errno.EROFS, "ro"), "/s"), ReadOnlyStoreError)
    other = store_error(PermissionError(errno.EACCES, "denied"), "/s/index.sqlite")
    assert type(other) is StoreError and "/s/index.sqlite" in str(other)


def test_sqlite_errors_are_translated_by_code_or_message() -> None:
    """SQLite full/corrupt/readonly errors become the matching store errors."""
    assert isinstance(
        store_error(sqlite3.OperationalError("database or disk is full"), "i"), StoreFullError
    )
    assert isinstance(
        store_error(sqlite3.DatabaseError("database disk image is malformed"), "i"),
        StoreCorruptError,
    )
    assert isinstance(
        store_error(sqlite3.OperationalError("attempt to write a readonly database"), "i"),
        ReadOnlyStoreError,
    )
    coded = sqlite3.OperationalError("disk I/O error")
    coded.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL
    assert isinstance(store_error(coded, "i"), StoreFullError)
    error = StoreError("already translated")
    assert store_error(error, "i") is error


def test_busy_is_recognized_by_code_or_message() -> None:
    """SQLITE_BUSY/LOCKED (by code or message) are busy; other errors are not."""
    assert is_busy(sqlite3.OperationalError("database is locked"))
    coded = sqlite3.OperationalError("whatever")
    coded.sqlite_errorcode = 5 | (2 << 8)  # type: ignore[attr-defined]  # an extended SQLITE_BUSY
    assert is_busy(coded)
    assert not is_busy(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_busy(OSError("database is locked"))
