"""DataPath benchmark: re-checking an unchanged 1 GB file against reading it in full.

Run::

    python benchmarks/bench_paths.py             # a 1 GiB file in a temporary folder
    python benchmarks/bench_paths.py --mib 256   # another size

Writes a file of pseudo-random bytes (a 1 MiB random block repeated) in a
temporary folder, waits until it is past the racy window (a file modified in
the last ``RACY_SECONDS`` is always read), hashes it once, then times:

* ``recheck_memory``: ``data_version(DataPath(f))`` of the unchanged file in the
  same process (stat + the in-process digest memo);
* ``recheck_table``: the same in a process that has not seen the file yet (the
  in-process memo emptied first: stat + one query of the digest table);
* ``full_read``: what a content hash without the stat shortcut costs, reading
  and hashing the whole file (xxh3-128, 1 MiB chunks), from the page cache
  (warm: the fastest a full read can be; a cold read from disk is slower);
* ``plain_read``: reading the file without hashing, the floor of any full read.

Prints one JSON line per measurement (``{"bench": "paths", "case": ...,
"seconds": ..., "full_read_over_this": ...}``), then a markdown table. The file
is deleted at the end. Each figure is the fastest of several passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from incgraph import DataPath, data_version
from incgraph.hashing import _paths


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _write(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)


def _plain_read(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


def _table_recheck(path: Path) -> str:
    _paths._MEMO.known.clear()  # as a new process: only the digest table knows the file
    return data_version(DataPath(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1024)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="incgraph-bench-paths-"))
    os.environ.setdefault("INCGRAPH_DIGESTS", str(folder / "digests.sqlite"))
    try:
        data = folder / "data.bin"
        _write(data, args.mib)
        time.sleep(_paths.RACY_SECONDS + 0.2)  # past the racy window: the stat can vouch
        first = data_version(DataPath(data))
        assert data_version(DataPath(data)) == first
        cases = {
            "recheck_memory": _best(lambda: data_version(DataPath(data)), 200),
            "recheck_table": _best(lambda: _table_recheck(data), 50),
            "full_read": _best(lambda: _paths._read_digest(data), 3),
            "plain_read": _best(lambda: _plain_read(data), 3),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    full = cases["full_read"]
    rows = []
    for case, seconds in cases.items():
        line = {
            "bench": "paths",
            "case": case,
            "mib": args.mib,
            "seconds": seconds,
            "full_read_over_this": full / seconds,
        }
        print(json.dumps(line), flush=True)
        rows.append(line)
    print()
    print(f"| {args.mib} MiB file, unchanged | time | full read / this |")
    print("|---|---|---|")
    for r in rows:
        ratio = float(r["full_read_over_this"])
        shown = f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
        print(f"| {r['case']} | {_fmt(float(r['seconds']))} | {shown} |")


def _fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


if __name__ == "__main__":
    main()
