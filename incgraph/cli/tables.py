"""Terminal output: aligned plain-text tables and human-readable sizes, times and durations.

Design note
-----------
No dependency: a table is a header plus rows of strings, each column as wide
as its widest cell, numbers right-aligned, two spaces between columns, no
borders (so ``grep``, ``sort`` and ``awk`` still work on it). Every command
also has ``--json`` for scripts, which prints exact values (full keys, Unix
times, bytes) instead of these renderings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from incgraph.store.budget import parse_size

__all__ = ["ago", "duration", "parse_size", "size", "table", "timestamp"]

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> str:
    """Rows under a header, in columns as wide as their widest cell.

    ``right`` lists the columns to right-align (numbers).

    Examples
    --------
    >>> print(table(["NODE", "SIZE"], [["a", "1 B"], ["long-name", "10 KB"]], right=[1]))
    NODE        SIZE
    a            1 B
    long-name  10 KB
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def size(count: float) -> str:
    """Bytes in the largest unit that keeps the number at least 1 (decimal units).

    Examples
    --------
    >>> size(0), size(999), size(1500), size(2_500_000_000)
    ('0 B', '999 B', '1.5 KB', '2.5 GB')
    """
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """Seconds as ``"12 ms"``, ``"3.4 s"``, ``"2m05s"`` or ``"1h02m"``.

    Examples
    --------
    >>> duration(0.0123), duration(3.44), duration(125), duration(3720)
    ('12 ms', '3.4 s', '2m05s', '1h02m')
    """
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def timestamp(when: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS`` ("-" for None or 0)."""
    if not when or not math.isfinite(when):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def ago(when: float | None, now: float | None = None) -> str:
    """How long ago a Unix time was, e.g. ``"3 min ago"``.

    Examples
    --------
    >>> ago(100.0, now=100.5), ago(3600.0, now=10800.0), ago(None)
    ('just now', '2 h ago', '-')
    """
    if not when:
        return "-"
    elapsed = (time.time() if now is None else now) - when
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if elapsed >= length:
            return f"{int(elapsed // length)} {unit} ago"
    return "just now"
