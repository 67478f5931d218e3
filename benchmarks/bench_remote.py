"""Object-storage benchmark: blob upload and download through incgraph vs the bare client.

Run::

    python benchmarks/bench_remote.py [--repeat N] [--mb SIZE]

Starts moto's S3 emulator as a separate process on localhost (an emulator: its
absolute figures say little about Amazon S3, the ratios say what incgraph adds),
makes a bucket, and prints one JSON line per measurement (``ratio`` = incgraph /
peer, lower is better) and then a markdown table.

Measurements (best of ``--repeat``)
-----------------------------------
* ``s3_upload_<N>MB``: `ObjectBlobStore.put` of a float64 array of N MB (encode,
  checksum, HMAC tag, conditional PUT with ``If-None-Match: *``), a fresh data
  version each time, against ``s3fs.S3FileSystem.pipe_file`` of the array's raw
  bytes (``tobytes()`` included).
* ``s3_download_<N>MB``: `ObjectBlobStore.get` with no cache (GET, header,
  checksum and HMAC check, decode to a writable array) against
  ``cat_file`` + ``numpy.frombuffer`` of the same bytes.
* ``s3_load_cached_<N>MB``: a load served by the read-through cache (a
  memory-mapped local copy, checked) against the bare download.
* ``s3_put_many_small_x200``: milliseconds per small result of one
  ``put_many`` of 200 small values (16 concurrent uploads) against 200
  sequential ``pipe_file`` calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rows import emit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from s3_server import make_bucket, start_s3_server

from incgraph.store.blob_cache import BlobCache
from incgraph.store.object_blobs import ObjectBlobStore
from incgraph.store.signing import Signer


def best(work: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` timings of ``work()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh() -> str:
    return uuid.uuid4().hex


def measure(url: str, repeat: int, mb: int, rows: list[dict[str, Any]]) -> None:
    array = np.random.default_rng(0).random(mb * 1024 * 1024 // 8)
    blobs = ObjectBlobStore(url, signer=Signer("bench-key"))
    fs, root = blobs.fs, blobs.root
    mine = best(lambda: blobs.put(fresh(), array), repeat)
    peer = best(lambda: fs.pipe_file(f"{root}/raw/{fresh()}", array.tobytes()), repeat)
    emit(rows, f"s3_upload_{mb}MB", "s", mine, peer, "s3fs.pipe_file")

    stored, raw = fresh(), f"{root}/raw/{fresh()}"
    blobs.put(stored, array)
    fs.pipe_file(raw, array.tobytes())
    mine = best(lambda: blobs.get(stored), repeat)
    peer = best(lambda: np.frombuffer(bytearray(fs.cat_file(raw))), repeat)
    emit(rows, f"s3_download_{mb}MB", "s", mine, peer, "s3fs.cat_file")

    with tempfile.TemporaryDirectory() as folder:
        cached = ObjectBlobStore(url, signer=Signer("bench-key"), cache=BlobCache(folder))
        cached.get(stored)  # fills the cache
        mine = best(lambda: cached.get(stored).sum(), repeat)
        emit(rows, f"s3_load_cached_{mb}MB", "s", mine, peer, "s3fs.cat_file")

    small = [(fresh(), {"n": i, "pad": "x" * 200}) for i in range(200)]
    start = time.perf_counter()
    blobs.put_many(small)
    mine = (time.perf_counter() - start) / len(small) * 1e3
    start = time.perf_counter()
    for data_version, _ in small:
        fs.pipe_file(f"{root}/raw/{data_version}", b"x" * 260)
    peer = (time.perf_counter() - start) / len(small) * 1e3
    emit(rows, "s3_put_many_small_x200", "ms", mine, peer, "s3fs.pipe_file loop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mb", type=int, default=64)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with start_s3_server() as endpoint:
        import os

        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
        )
        measure(make_bucket(endpoint), args.repeat, args.mb, rows)
    print("\n| bench | unit | incgraph | peer | ratio |\n|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['bench']} | {row['unit']} | {row['incgraph']} | "
            f"{row['peer']} ({row['peer_name']}) | {row['ratio']} |"
        )
    print(json.dumps({"rows": len(rows)}))


if __name__ == "__main__":
    main()
