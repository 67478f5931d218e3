"""Writing files for the store: every byte, and folder entries that survive a power cut.

Shared by the blob store (blob files) and the SQLite file (a new store's file written
whole from the schema image): both write to a temporary name, optionally fsync, and
rename or link it into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["fsync_folder", "write_all"]

_WRITE_CHUNK = 1 << 30  # os.write may write less than asked, and at most 2 GiB at once


def write_all(fd: int, data: Any) -> None:
    """Write every byte of the bytes-like ``data`` to the file descriptor ``fd``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     write_all(f.fileno(), b"abc")
    ...     _ = f.seek(0)
    ...     f.read()
    b'abc'
    """
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    written = 0
    while written < len(view):
        written += os.write(fd, view[written : written + _WRITE_CHUNK])


def fsync_folder(folder: Path) -> None:
    """fsync a folder so a name just renamed or linked in it survives a power cut.

    A no-op where folders cannot be opened or synced (some platforms and file systems).
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
