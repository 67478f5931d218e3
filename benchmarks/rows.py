"""What the micro-benchmarks print: one JSON line per measurement, kept for the table.

Shared by ``bench_hashing.py`` and ``bench_store.py`` (run as scripts, this folder is
on ``sys.path``).
"""

from __future__ import annotations

import json
from typing import Any


def emit(
    rows: list[dict[str, Any]], bench: str, unit: str, mine: float, peer: float, peer_name: str
) -> None:
    """Record one incgraph-vs-peer measurement (``ratio`` = incgraph / peer) and print it."""
    row = {
        "bench": bench,
        "unit": unit,
        "incgraph": round(mine, 4),
        "peer": round(peer, 4),
        "peer_name": peer_name,
        "ratio": round(mine / peer, 3),
    }
    rows.append(row)
    print(json.dumps(row), flush=True)
