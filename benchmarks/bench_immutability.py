"""What keeping results immutable costs: capturing bytes at compute time vs private copies.

A computed result must not change once computed, whatever its consumers (or the
caller) do to it in place. Two ways to guarantee that:

* **capture** (what incgraph does): encode the result right after it is computed
  into bytes the store then saves as they are (the encoding the store would do
  anyway, plus copying large buffers it would otherwise write straight from the
  value's memory); the first consumer gets the object itself, each further one
  a copy decoded from the bytes;
* **private copies**: leave the store to encode later, and hand every consumer
  (and the caller) a ``copy.deepcopy`` of the result, so nobody touches the object the
  store encodes.

For each kind of value this prints, in microseconds, the encoding the store pays
either way, what capturing adds to it, one decoded copy, one ``deepcopy``, and
the total extra cost of each strategy for one and for three consumers
(capture: ``capture - encode + (k - 1) * decode``; copies: ``k * deepcopy``).

Prints one JSON line per value kind and a markdown table::

    python benchmarks/bench_immutability.py
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import memory_store
from incgraph.store.codecs import encode_small

INLINE_LIMIT = DEFAULT_SETTINGS.blob_inline_limit_bytes


def best_us(fn: Callable[[], Any], budget: float = 0.3) -> float:
    """The fastest call of ``fn`` in microseconds, over about ``budget`` seconds."""
    best = float("inf")
    deadline = time.perf_counter() + budget
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best * 1e6


def values() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "int": 12345,
        "small dict of lists (100 ints)": {f"k{i}": list(range(10)) for i in range(10)},
        "list of 10k floats": [float(i) for i in range(10_000)],
        "float64 array, 8 MB": rng.random(1_000_000),
        "DataFrame 100k x 4": pd.DataFrame(
            {f"c{i}": rng.random(100_000) for i in range(3)} | {"s": ["x"] * 100_000}
        ),
    }


def main() -> None:
    store = memory_store()
    rows = []
    for name, value in values().items():
        captured = store.capture(value)
        encode = best_us(lambda v=value: encode_small(v, inline_limit=INLINE_LIMIT))
        capture = best_us(lambda v=value: store.capture(v))
        decode = best_us(captured.value)
        deep = best_us(lambda v=value: copy.deepcopy(v))
        extra = max(capture - encode, 0.0)
        row = {
            "bench": "immutability",
            "value": name,
            "encode_us": round(encode, 1),
            "capture_us": round(capture, 1),
            "decode_us": round(decode, 1),
            "deepcopy_us": round(deep, 1),
            "capture_extra_1": round(extra, 1),
            "copies_extra_1": round(deep, 1),
            "capture_extra_3": round(extra + 2 * decode, 1),
            "copies_extra_3": round(3 * deep, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(
        "| value | encode (paid anyway) | capture adds | 1 consumer: capture / copies "
        "| 3 consumers: capture / copies |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['value']} | {r['encode_us']} µs | {r['capture_extra_1']} µs "
            f"| {r['capture_extra_1']} / {r['copies_extra_1']} µs "
            f"| {r['capture_extra_3']} / {r['copies_extra_3']} µs |"
        )


if __name__ == "__main__":
    main()
