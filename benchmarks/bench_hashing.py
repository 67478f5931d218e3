"""Hashing benchmark: incgraph.hashing.data_version against joblib.hash and a bare xxh3 pass.

Run::

    python benchmarks/bench_hashing.py                  # every section
    python benchmarks/bench_hashing.py torch polars     # some: small arrays frame torch polars

The torch and polars sections run when the library is installed.

Prints one JSON line per measurement (``{"bench": ..., "unit": ..., "incgraph": ...,
"peer": ..., "peer_name": ..., "ratio": ...}``; ratio = incgraph / peer, so for
seconds lower is better and for GB/s higher is better), then a markdown table.
Takes about a minute, most of it joblib hashing the DataFrame once.

Measurements
------------
* ``array_c``: a 256 MB C-contiguous float64 array, in GB/s, against
  ``joblib.hash`` and against one bare ``xxhash.xxh3_128(memoryview(a))`` pass
  (the ceiling: incgraph adds the dtype/shape header and nothing else).
* ``array_f``: the same values in Fortran order (hashed equal to the C array, so
  copied to C order in blocks), against ``joblib.hash`` of that array.
* ``frame``: a 5M-row DataFrame with one float64 and one string column, in
  seconds, against ``joblib.hash`` (timed once: it takes ~8 s).
* ``torch_f32``, ``torch_bf16``: a 256 MB CPU tensor (float32, bfloat16), in GB/s,
  against one bare xxh3_128 pass over the same memory (torch's own bytes, no copy).
* ``polars_num``: a 16M-row polars DataFrame with a float64 and an int64 column
  (256 MB), in GB/s, against bare xxh3_128 passes over the two column buffers.
* ``small_int``, ``small_str``, ``node_key``: microseconds per call for
  ``data_version(42)``, ``data_version("abc")`` and a 3-input ``node_key``,
  against ``joblib.hash`` of the same small value.

Every figure is the fastest of several passes, incgraph's and the peer's passes
interleaved, because the machine may be shared; joblib's array and frame figures
are the fastest of two passes and one pass.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import xxhash
from rows import emit

from incgraph.hashing import data_version, node_key

GB = 1e9


def best_times(runs: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Fastest wall time of each run, the runs interleaved so that load bursts hit all alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def best_time(run: Callable[[], Any], repeat: int) -> float:
    """Fastest wall time of ``run()`` over ``repeat`` calls."""
    return best_times([run], repeat)[0]


def per_call_us(runs: list[Callable[[], Any]], numbers: list[int], repeat: int = 7) -> list[float]:
    """Microseconds per call of each run: the fastest of ``repeat`` interleaved timeit passes."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, (run, number) in enumerate(zip(runs, numbers, strict=True)):
            best[i] = min(best[i], timeit.timeit(run, number=number) / number * 1e6)
    return best


def bench_arrays(rows: list[dict[str, Any]]) -> None:
    a = np.random.default_rng(0).random(256 * 1024 * 1024 // 8)
    mine, bare = best_times(
        [lambda: data_version(a), lambda: xxhash.xxh3_128(memoryview(a)).hexdigest()], 7
    )
    peer = best_time(lambda: joblib.hash(a), 2)
    emit(rows, "array_c", "GB/s", a.nbytes / mine / GB, a.nbytes / peer / GB, "joblib.hash")
    emit(rows, "array_c", "GB/s", a.nbytes / mine / GB, a.nbytes / bare / GB, "bare xxh3_128 pass")
    f = np.asfortranarray(a.reshape(8192, -1))
    assert data_version(f) == data_version(np.ascontiguousarray(f))
    mine_f, peer_f = best_times([lambda: data_version(f), lambda: joblib.hash(f)], 2)
    emit(rows, "array_f", "GB/s", f.nbytes / mine_f / GB, f.nbytes / peer_f / GB, "joblib.hash")


def bench_frame(rows: list[dict[str, Any]]) -> None:
    n = 5_000_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.random(n), "s": [f"item-{i:08d}" for i in range(n)]})
    mine = best_time(lambda: data_version(df), 5)
    peer = best_time(lambda: joblib.hash(df), 1)
    emit(rows, "frame", "s", mine, peer, "joblib.hash")


def bench_small(rows: list[dict[str, Any]]) -> None:
    inputs = {"a": data_version(1), "b": data_version(2), "c": data_version(3)}
    code, init = data_version("code"), data_version({})
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("small_int", lambda: data_version(42), lambda: joblib.hash(42)),
        ("small_str", lambda: data_version("abc"), lambda: joblib.hash("abc")),
        (
            "node_key",
            lambda: node_key(code, init, inputs),
            lambda: joblib.hash((code, init, inputs)),
        ),
    ]
    for bench, mine, peer in cases:
        mine_us, peer_us = per_call_us([mine, peer], [20_000, 2_000])
        emit(rows, bench, "us/call", mine_us, peer_us, "joblib.hash")


def bench_torch(rows: list[dict[str, Any]]) -> None:
    import torch

    for name, dtype in (("torch_f32", torch.float32), ("torch_bf16", torch.bfloat16)):
        n = 256 * 1024 * 1024 // torch.empty(0, dtype=dtype).element_size()
        t = torch.rand(n).to(dtype)
        raw = memoryview(t.view(torch.uint8).numpy())  # the same memory, as bytes
        runs: list[Callable[[], Any]] = [
            lambda t=t: data_version(t),
            lambda raw=raw: xxhash.xxh3_128(raw).digest(),
        ]
        mine, bare = best_times(runs, 9)
        nbytes = raw.nbytes
        emit(rows, name, "GB/s", nbytes / mine / GB, nbytes / bare / GB, "bare xxh3_128 pass")


def bench_polars(rows: list[dict[str, Any]]) -> None:
    import polars as pl

    n = 16 * 1024 * 1024
    rng = np.random.default_rng(2)
    df = pl.DataFrame({"x": rng.random(n), "i": rng.integers(0, 1 << 40, n)})
    buffers = [memoryview(df[name].to_numpy()) for name in df.columns]

    def bare() -> None:
        for buffer in buffers:
            xxhash.xxh3_128(buffer).digest()

    mine, peer = best_times([lambda: data_version(df), bare], 9)
    nbytes = sum(b.nbytes for b in buffers)
    emit(rows, "polars_num", "GB/s", nbytes / mine / GB, nbytes / peer / GB, "bare xxh3_128 passes")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| measurement | unit | incgraph | peer | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['bench']} | {row['unit']} | {row['incgraph']} | "
            f"{row['peer']} ({row['peer_name']}) | {row['ratio']} |"
        )
    return "\n".join(lines)


def main() -> None:
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"joblib {joblib.__version__}, xxhash {xxhash.VERSION}",
        flush=True,
    )
    sections = {
        "small": bench_small,
        "arrays": bench_arrays,
        "frame": bench_frame,
        "torch": bench_torch,
        "polars": bench_polars,
    }
    chosen = sys.argv[1:] or list(sections)
    rows: list[dict[str, Any]] = []
    for name in chosen:
        if name in ("torch", "polars") and importlib.util.find_spec(name) is None:
            print(f"# {name} is not installed: section skipped", flush=True)
            continue
        sections[name](rows)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
