"""How OS and SQLite failures become store errors.

Design note
-----------
Below the store, failures arrive in two dialects: ``OSError`` with an ``errno``
(blob files) and ``sqlite3.Error`` with an SQLite result code (the index). The
engine and the user should see one vocabulary instead, each with the file it is
about and what to do:

========================  ==========================================  ============================
cause                     becomes                                     the fix it names
========================  ==========================================  ============================
ENOSPC / EDQUOT,          `StoreFullError`    free space; nothing stored
``SQLITE_FULL``           (``errno`` is ENOSPC)                        was lost
``SQLITE_CORRUPT``,       `StoreCorruptError` move the file aside; results
``SQLITE_NOTADB``                                                      will be recomputed
``SQLITE_READONLY``,      `ReadOnlyStoreError` open the store writable
EROFS
anything else             `StoreError`        (the original message)
========================  ==========================================  ============================

``SQLITE_BUSY`` / ``SQLITE_LOCKED`` are not translated: `is_busy` lets the
caller retry them, so lock contention never reaches the user.

Python 3.11 exposes ``sqlite_errorcode`` on ``sqlite3.Error``; on older Pythons
the message text is matched instead.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from incgraph.errors import ReadOnlyStoreError, StoreCorruptError, StoreError, StoreFullError

__all__ = ["corrupt_index_error", "is_busy", "store_error"]

# Primary SQLite result codes (https://sqlite.org/rescode.html).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26

_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def _sqlite_code(exc: sqlite3.Error) -> int | None:
    """The primary result code of ``exc``, or None where Python does not expose it."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means "another connection holds the lock; try again".

    Examples
    --------
    >>> is_busy(sqlite3.OperationalError("database is locked"))
    True
    >>> is_busy(sqlite3.OperationalError("no such table: results"))
    False
    """
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = _sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def is_transient_io(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "disk I/O error", which WAL mode can raise transiently.

    When the last connection to a WAL database closes, SQLite checkpoints and may
    truncate the ``-wal``/``-shm`` files while another process is opening them; the
    opener then sees ``SQLITE_IOERR``. Retrying a few times gets past it; a real disk
    fault keeps failing and is reported after the retries.

    Examples
    --------
    >>> is_transient_io(sqlite3.OperationalError("disk I/O error"))
    True
    >>> is_transient_io(sqlite3.OperationalError("database is locked"))
    False
    """
    return isinstance(exc, sqlite3.OperationalError) and "disk I/O error" in str(exc)


def corrupt_index_error(path: os.PathLike[str] | str, detail: object) -> StoreCorruptError:
    """The error for an index file SQLite cannot read, naming the file and the fix.

    Examples
    --------
    >>> print(corrupt_index_error("/data/.incgraph/index.sqlite", "file is not a database"))
    /data/.incgraph/index.sqlite is not a readable incgraph index (file is not a database); \
move it aside (e.g. `mv /data/.incgraph/index.sqlite /data/.incgraph/index.sqlite.bad`) \
and rerun: results will be recomputed
    """
    return StoreCorruptError(
        f"{path} is not a readable incgraph index ({detail}); move it aside "
        f"(e.g. `mv {path} {path}.bad`) and rerun: results will be recomputed"
    )


def _full_error(path: os.PathLike[str] | str, detail: object) -> StoreFullError:
    return StoreFullError(
        errno.ENOSPC,
        f"the disk holding the store is full while writing {path} ({detail}); "
        "free some space and rerun: nothing already stored was lost",
    )


def store_error(exc: BaseException, path: os.PathLike[str] | str) -> StoreError:
    """Translate an ``OSError`` or ``sqlite3.Error`` about ``path`` into a store error.

    Store errors pass through unchanged.

    Examples
    --------
    >>> err = store_error(OSError(errno.ENOSPC, "No space left on device"), "/s/blobs/ab/x")
    >>> type(err).__name__, err.errno == errno.ENOSPC
    ('StoreFullError', True)
    >>> type(store_error(sqlite3.DatabaseError("file is not a database"), "/s/i.db")).__name__
    'StoreCorruptError'
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return _sqlite_store_error(exc, path)
    if isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            return _full_error(path, exc.strerror or exc)
        if exc.errno == errno.EROFS:
            return ReadOnlyStoreError(
                f"cannot write {path}: the file system is read-only; "
                "open the store with read_only=True or move it to a writable disk"
            )
        return StoreError(f"cannot access {path}: {exc}")
    return StoreError(f"{path}: {exc!r}")


def _sqlite_store_error(exc: sqlite3.Error, path: os.PathLike[str] | str) -> StoreError:
    code = _sqlite_code(exc)
    text = str(exc)
    if code == _SQLITE_FULL or "disk is full" in text:
        return _full_error(path, text)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        code is None and ("malformed" in text or "not a database" in text)
    ):
        return corrupt_index_error(path, text)
    if code == _SQLITE_READONLY or (code is None and "readonly" in text):
        return ReadOnlyStoreError(
            f"cannot write {path}: it is read-only ({text}); "
            "to save results, open the store with read_only=False where its folder can be "
            "written; to only read it, open it with read_only=True"
        )
    return StoreError(f"{path}: {text}")
