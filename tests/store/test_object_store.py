"""Blobs in object storage: create-only writes, signing, the read-through cache and store URLs
(the contract suites run over S3 (an emulator) and a local folder in test_contracts.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from incgraph import ProcessGraph, Processor
from incgraph.errors import ConfigurationError, SignatureError, StoreCorruptError
from incgraph.store import open_store
from incgraph.store.blob_cache import BlobCache
from incgraph.store.object_blobs import MAGIC, ObjectBlobStore
from incgraph.store.signing import Signer

from .contract import dv, record

KEY = "team-secret"


def test_remote_store_without_a_key_is_refused(tmp_path: Path, s3_bucket: str) -> None:
    """Opening a store with blobs in a bucket and no key raises, naming the variable and the opt-out."""
    with pytest.raises(ConfigurationError, match=r"INCGRAPH_HMAC_KEY.*signing=False"):
        open_store(tmp_path / "store", blobs=s3_bucket)
    assert not (tmp_path / "store").exists()  # refused before anything was created


def test_explicit_opt_out_stores_unsigned_blobs(tmp_path: Path, s3_bucket: str) -> None:
    """signing=False opens without a key; a signed reader then refuses those blobs."""
    with open_store(tmp_path / "a", blobs=s3_bucket, signing=False) as store:
        store.save(record(1, 10), {"x": 1})
    reader = open_store(tmp_path / "b", blobs=s3_bucket, hmac_key=KEY)
    with reader, pytest.raises(SignatureError, match="no HMAC signature"):
        reader.load(dv(10))


def test_wrong_key_raises_and_never_unpickles(tmp_path: Path, s3_bucket: str) -> None:
    """A blob signed with another key raises SignatureError (not a miss) and stays stored."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"x": 1})
    with open_store(tmp_path / "b", blobs=s3_bucket, hmac_key="not-the-key") as other:
        with pytest.raises(SignatureError, match="another key"):
            other.load(dv(10))
        assert other.blobs.contains(dv(10))  # a team's result is not deleted over a bad key


def test_hmac_key_from_environment(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$INCGRAPH_HMAC_KEY is the key when hmac_key is not given."""
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", KEY)
    with open_store(tmp_path / "a", blobs=s3_bucket) as store:
        store.save(record(1, 10), [1, 2])
    monkeypatch.delenv("INCGRAPH_HMAC_KEY")
    with open_store(tmp_path / "b", blobs=s3_bucket, hmac_key=KEY) as reader:
        assert reader.load(dv(10)) == [1, 2]


def test_writes_are_create_only(tmp_path: Path, s3_bucket: str) -> None:
    """A second write of a data version leaves the first object in place (If-None-Match: *)."""
    blobs = ObjectBlobStore(s3_bucket, signer=Signer(KEY))
    assert blobs.put_raw(dv(1), _packed(dv(1), [1])) is True
    first = blobs.fs.cat_file(blobs._path(dv(1)))
    assert blobs.put_raw(dv(1), _packed(dv(1), [1, "other pickle"])) is False
    assert blobs.fs.cat_file(blobs._path(dv(1))) == first


def test_local_writes_are_create_only_and_leave_no_temp_files(tmp_path: Path) -> None:
    """In a local folder the second write of a data version keeps the first file and no temporary."""
    blobs = ObjectBlobStore(f"file://{tmp_path}", signer=Signer(KEY))
    assert blobs.put_raw(dv(1), _packed(dv(1), [1])) is True
    assert blobs.put_raw(dv(1), _packed(dv(1), [2])) is False
    assert blobs.get(dv(1)) == [1]
    assert [p.name for p in (tmp_path / "blobs").rglob("*")] == ["00", dv(1)]


def _packed(data_version: str, value: object) -> bytes:
    from incgraph.store.codecs import encode
    from incgraph.store.object_blobs import pack_blob

    return pack_blob(data_version, encode(value, inline_limit=1 << 20), Signer(KEY))[0]


def test_torn_object_is_corrupt_and_removed(tmp_path: Path, s3_bucket: str) -> None:
    """An object whose bytes fail the checksum raises StoreCorruptError and is deleted."""
    blobs = ObjectBlobStore(s3_bucket, signer=Signer(KEY))
    blobs.put(dv(1), list(range(100)))
    data = bytearray(blobs.fs.cat_file(blobs._path(dv(1))))
    data[-3] ^= 0xFF
    blobs.fs.pipe_file(blobs._path(dv(1)), bytes(data))
    with pytest.raises(StoreCorruptError, match="checksum"):
        blobs.get(dv(1))
    assert not blobs.contains(dv(1))


def test_object_not_written_by_incgraph_is_refused(tmp_path: Path, s3_bucket: str) -> None:
    """Bytes without incgraph's header under a blob's name are corrupt, never unpickled."""
    blobs = ObjectBlobStore(s3_bucket, signer=Signer(KEY))
    blobs.fs.pipe_file(blobs._path(dv(1)), b"\x80\x04K\x01.")
    with pytest.raises(StoreCorruptError, match="header"):
        blobs.get(dv(1))


def test_objects_start_with_the_header(tmp_path: Path, s3_bucket: str) -> None:
    """Every object begins with incgraph's magic and keeps the payload 64-byte aligned."""
    blobs = ObjectBlobStore(s3_bucket, signer=Signer(KEY))
    blobs.put(dv(1), np.arange(50_000.0))
    data = blobs.fs.cat_file(blobs._path(dv(1)))
    assert data.startswith(MAGIC) and (len(data) - 400_000) % 64 == 0


def test_read_through_cache_serves_later_loads(tmp_path: Path, s3_bucket: str) -> None:
    """A loaded blob is copied into the cache; later loads read the copy, not the bucket."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"x": 1})
        assert store.load(dv(10)) == {"x": 1}
        assert (tmp_path / "a" / "cache" / dv(10)[:2] / dv(10)).is_file()
        assert isinstance(store.blobs, ObjectBlobStore)
        store.blobs.fs.rm_file(store.blobs._path(dv(10)))  # gone remotely: the copy serves
        assert store.load(dv(10)) == {"x": 1}


def test_damaged_cache_copy_is_fetched_again(tmp_path: Path, s3_bucket: str) -> None:
    """A cached copy that fails its checksum is dropped and the bucket's object is served."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), list(range(50)))
        store.load(dv(10))
        copy = tmp_path / "a" / "cache" / dv(10)[:2] / dv(10)
        data = bytearray(copy.read_bytes())
        data[-2] ^= 0xFF
        copy.write_bytes(bytes(data))
        assert store.load(dv(10)) == list(range(50))


def test_big_arrays_are_memory_mapped_from_the_cache(tmp_path: Path, s3_bucket: str) -> None:
    """A large array loads as a copy-on-write view of its cached copy; writing to it changes nothing stored."""
    array = np.arange(300_000, dtype=np.float64)
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), array)
        first = store.load(dv(10))
        loaded = store.load(dv(10))
        assert loaded.base is not None and not loaded.flags.owndata
        loaded[0] = -1.0
        np.testing.assert_array_equal(store.load(dv(10)), array)
        np.testing.assert_array_equal(first, array)


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    """Past its limit the cache deletes the copies used least recently, keeping the recent ones."""
    cache = BlobCache(tmp_path / "cache", max_bytes=350)
    for n in range(3):
        cache.fill(dv(n), bytes(100))
        os.utime(cache.path(dv(n)), (1000 + n, 1000 + n))
    cache.read(dv(0))  # used now: the most recent
    cache.fill(dv(3), bytes(100))
    kept = [n for n in range(4) if cache.path(dv(n)).exists()]
    assert kept == [0, 2, 3] and cache.size() <= 350


def test_cache_limit_from_open_store(tmp_path: Path, s3_bucket: str) -> None:
    """cache_bytes bounds the read-through cache of the store."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY, cache_bytes=2000) as store:
        for n in range(10):
            store.save(record(n, 100 + n), {"pad": "x" * 600, "n": n})
            store.load(dv(100 + n))
        assert isinstance(store.blobs, ObjectBlobStore) and store.blobs.cache is not None
        assert 0 < store.blobs.cache.size() <= 2000


def test_s3_url_opens_a_store_with_a_local_index(tmp_path: Path, s3_bucket: str) -> None:
    """open_store("s3://bucket/prefix") keeps blobs in the bucket and the index in a local folder."""
    with open_store(s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"x": 1})
        assert (
            store.path is not None and Path(os.environ["INCGRAPH_INDEX_HOME"]) in store.path.parents
        )
        assert store.blobs.contains(dv(10))
    with open_store(s3_bucket, hmac_key=KEY) as again:
        assert again.load(again.lookup(dv(1))) == {"x": 1}


def test_folder_remembers_its_bucket(tmp_path: Path, s3_bucket: str) -> None:
    """A folder opened with blobs=URL keeps using it when reopened without, and refuses another URL."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"x": 1})
    with open_store(tmp_path / "a", hmac_key=KEY) as again:
        assert isinstance(again.blobs, ObjectBlobStore)
        assert again.load(again.lookup(dv(1))) == {"x": 1}
    with pytest.raises(ConfigurationError, match="keeps its blobs at"):
        open_store(tmp_path / "a", blobs=s3_bucket + "-other", hmac_key=KEY)


def test_missing_s3_library_names_the_extra(tmp_path: Path) -> None:
    """Without s3fs, an s3:// store raises an error naming pip install "incgraph[s3]"."""
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from incgraph.store.object_blobs import ObjectBlobStore\n"
        "try:\n    ObjectBlobStore('s3://bucket/prefix')\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "ExtraNotInstalledError" in out.stdout and "incgraph[s3]" in out.stdout


def test_credentials_are_not_written_to_the_store(tmp_path: Path, s3_bucket: str) -> None:
    """Nothing in the store folder holds the AWS secret or the HMAC key."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"x": 1})
        store.load(dv(10))
    for path in (tmp_path / "a").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"testing" not in data and KEY.encode() not in data


class Halve(Processor):
    def process(self, x: int) -> list[int]:
        return list(range(x // 2))


def test_graph_run_with_the_wrong_key_raises(tmp_path: Path, s3_bucket: str) -> None:
    """A cached graph rerun with another key stops with SignatureError instead of unpickling or recomputing."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        graph = ProcessGraph(store=store)
        node = graph.add_node("halve", Halve, {"x": 5000})
        assert graph.run_upto(node) == list(range(2500))
    with open_store(tmp_path / "a", hmac_key="wrong", cache_bytes=0) as store:
        graph = ProcessGraph(store=store)
        node = graph.add_node("halve", Halve, {"x": 5000})
        with pytest.raises(SignatureError, match="INCGRAPH_HMAC_KEY"):
            graph.run_upto(node)


def test_verify_with_the_wrong_key_deletes_no_object(tmp_path: Path, s3_bucket: str) -> None:
    """verify under another key reports the blobs and copies them aside, but leaves the bucket's objects."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY) as store:
        store.save(record(1, 10), {"pad": "x" * 2000})
    with open_store(tmp_path / "a", hmac_key="wrong") as store:
        report = store.verify()
        assert [problem.reason for problem in report.problems] == [
            "its HMAC signature does not match (signed with another key, or tampered)"
        ]
        assert store.blobs.contains(dv(10))


def test_verify_removes_a_damaged_object(tmp_path: Path, s3_bucket: str) -> None:
    """verify quarantines an object whose bytes fail their checksum and deletes it from the bucket."""
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY, cache_bytes=0) as store:
        store.save(record(1, 10), {"pad": "x" * 2000})
        blobs = store.blobs
        assert isinstance(blobs, ObjectBlobStore)
        data = bytearray(blobs.fs.cat_file(blobs._path(dv(10))))
        data[-5] ^= 0xFF
        blobs.fs.pipe_file(blobs._path(dv(10)), bytes(data))
        report = store.verify()
        assert len(report.problems) == 1 and report.problems[0].moved_to is not None
        assert not blobs.contains(dv(10))


def test_cache_limit_from_settings(tmp_path: Path, s3_bucket: str) -> None:
    """Without cache_bytes, the read-through cache's limit is the store's settings.blob_cache_bytes."""
    from incgraph.settings import Settings

    settings = Settings(blob_cache_bytes=1500)
    with open_store(tmp_path / "a", blobs=s3_bucket, hmac_key=KEY, settings=settings) as store:
        assert isinstance(store.blobs, ObjectBlobStore) and store.blobs.cache is not None
        assert store.blobs.cache.max_bytes == 1500
        assert store.blobs.inline_limit == settings.blob_inline_limit_bytes


def test_signed_and_path_of(tmp_path: Path) -> None:
    """signed says whether a key checks blobs; path_of names the cached copy once there is one."""
    cache = BlobCache(tmp_path / "cache")
    blobs = ObjectBlobStore(f"file://{tmp_path / 'bucket'}", signer=Signer(KEY), cache=cache)
    assert blobs.signed and not ObjectBlobStore(f"file://{tmp_path / 'b2'}").signed
    blobs.put(dv(1), [1])
    assert blobs.path_of(dv(1)) is None
    blobs.get(dv(1))
    assert blobs.path_of(dv(1)) == cache.path(dv(1))


def test_incgraph_store_variable_may_be_a_bucket_url(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$INCGRAPH_STORE=s3://... makes the default store (and a graph's) keep its blobs in that bucket."""
    monkeypatch.setenv("INCGRAPH_STORE", s3_bucket)
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", KEY)
    with open_store() as store:
        assert isinstance(store.blobs, ObjectBlobStore) and store.blobs.url == s3_bucket
    graph = ProcessGraph()
    node = graph.add_node("halve", Halve, {"x": 10})
    assert graph.run_upto(node) == [0, 1, 2, 3, 4]
    with open_store() as store:
        assert store.blobs.contains(store.latest_for_node("halve").data_version)  # type: ignore[union-attr]
