"""Files and folders as inputs: `DataPath`, hashed by what the path holds.

Design note
-----------
A plain ``pathlib.Path`` is a name: it hashes by its text, never by the file
(an output path, a path not written yet, a path whose file is huge all hash
the same way). When the *contents* are the input, wrap the path:
``DataPath("data/train.csv")``. Its data version covers the path's text and
what it holds now:

* a **file**: its bytes (xxh3-128 over the file, read in 1 MiB chunks);
* a **folder**: every file and folder under it, by relative name (``/``
  separated, sorted) and content, so adding, removing, renaming or editing
  any file changes it; empty folders count too;
* **symbolic links** are followed (a link to a file hashes as that file's
  bytes, a link to a folder is walked); a link that points nowhere, or a
  folder that links back into itself, raises `HashingError` naming it.

Anything else (a missing path, a socket, an unreadable file) raises
`HashingError` naming the path; the engine adds the node and input.

The stat shortcut. Reading a 10 GB file on every run would make a rerun as
slow as the work it saves, so each file's digest is remembered with its
``stat`` signature (device, inode, size, ``mtime_ns``, ``ctime_ns``): while
the signature is unchanged the digest is reused without reading the file. An
edit (even one that keeps the size, or an editor replacing the file) changes
the signature and the file is read again; ``touch`` changes it too, and the
re-read gives the same digest, so the data version -- and the cache key -- stay
the same. A file modified less than `RACY_SECONDS` before it was hashed
is not remembered (a second write within the file system's timestamp
resolution could otherwise go unseen).

Digests are remembered in this process and in a small SQLite table shared by
every process of the user (`digest_table_path`: ``$INCGRAPH_DIGESTS``,
else ``incgraph/file-digests.sqlite`` under ``$XDG_CACHE_HOME`` or
``~/.cache``). It is a cache of facts about files, not a store of results:
deleting it costs one read of each file. If it cannot be opened the digests
are kept in memory only.

A run hashes a `DataPath` when it builds keys, so the graph re-checks
files at every run (a node's value memo lasts one run when it holds a path,
see `HASHED_PATHS`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from xxhash import xxh3_128

from incgraph.errors import HashingError
from incgraph.hashing._registry import register_hasher

__all__ = ["HASHED_PATHS", "RACY_SECONDS", "DataPath", "digest_table_path"]

RACY_SECONDS: Final = 2.0
"""A file modified this recently is re-read at the next check instead of trusted by stat."""

_CHUNK: Final = 1 << 20
_KNOWN_MAX: Final = 200_000
"""Digests kept in this process's memory at most (more files: looked up in the table)."""

Signature = tuple[int, int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) of a file."""


class DataPath(os.PathLike[str]):
    """A file or folder whose *contents* are an input: edits recompute, renames too.

    Pass it wherever a value goes (a constant, an inline input, a batch item
    set in ``prep_fn``, a queue item, a flow parameter). The processor gets
    the ``DataPath`` back: it is ``os.PathLike`` (``open(p)``,
    ``pandas.read_csv(p)``) and forwards path attributes (``p.name``,
    ``p.read_text()``, ``p.path`` is the `pathlib.Path`).

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder. It must exist when a run hashes it.

    Examples
    --------
    >>> import tempfile
    >>> from incgraph import data_version
    >>> folder = Path(tempfile.mkdtemp())
    >>> csv = folder / "x.csv"
    >>> _ = csv.write_text("a,b\\n1,2\\n")
    >>> before = data_version(DataPath(csv))
    >>> _ = csv.write_text("a,b\\n1,3\\n")
    >>> data_version(DataPath(csv)) == before
    False
    >>> DataPath(csv).name, data_version(DataPath(folder)) == data_version(DataPath(folder))
    ('x.csv', True)
    """

    __slots__ = ("path",)
    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path.path if isinstance(path, DataPath) else path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"DataPath({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPath) and other.path == self.path

    def __hash__(self) -> int:
        return hash(("DataPath", self.path))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.path, name)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        """A path inside this folder, as a plain `pathlib.Path` (the folder is the input)."""
        return self.path / other

    def __reduce__(self) -> tuple[Any, ...]:
        return (DataPath, (os.fspath(self.path),))


# -- the digest of what a path holds --------------------------------------------------------

HASHED_PATHS = [0]
"""``[n]``: how many `DataPath` values this process has hashed so far.

A value whose hashing moved this count holds a path: its data version is only
good until the files change, so memos of it must not outlive a run. (A list,
read directly: the engine checks it around every constant it hashes.)
"""


def _reduce(value: DataPath) -> object:
    HASHED_PATHS[0] += 1
    path = value.path
    return (str(path), _digest(path, set()))


register_hasher(DataPath, _reduce)


def _digest(path: Path, walking: set[tuple[int, int]]) -> tuple[str, str]:
    """``("file", digest)`` or ``("folder", digest)`` of what ``path`` holds."""
    try:
        st = path.stat()
    except FileNotFoundError:
        broken = path.is_symlink()
        what = "is a symbolic link to nothing" if broken else "does not exist"
        raise HashingError(
            f"DataPath {str(path)!r} {what}; create it before the run, or pass the "
            "path as a plain str/Path if only its name is the input"
        ) from None
    except OSError as exc:
        raise HashingError(f"DataPath {str(path)!r}: cannot stat it: {exc}") from exc
    if stat.S_ISREG(st.st_mode):
        return ("file", _file_digest(path, st))
    if stat.S_ISDIR(st.st_mode):
        return ("folder", _folder_digest(path, st, walking))
    mode = stat.filemode(st.st_mode)
    raise HashingError(
        f"DataPath {str(path)!r} is neither a file nor a folder (mode {mode}); "
        "only regular files and folders can be hashed by content"
    )


def _folder_digest(folder: Path, st: os.stat_result, walking: set[tuple[int, int]]) -> str:
    me = (st.st_dev, st.st_ino)
    if me in walking:
        raise HashingError(
            f"DataPath: folder {str(folder)!r} contains itself through a symbolic link; "
            "remove the link or hash a folder without cycles"
        )
    walking.add(me)
    h = xxh3_128()
    try:
        for name, child in _children(folder):
            kind, digest = _digest(child, walking)
            for part in (name, kind, digest):
                encoded = part.encode("utf-8", "surrogateescape")
                h.update(len(encoded).to_bytes(8, "little"))
                h.update(encoded)
    finally:
        walking.discard(me)
    return h.hexdigest()


def _children(folder: Path) -> Iterator[tuple[str, Path]]:
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise HashingError(f"DataPath: cannot list folder {str(folder)!r}: {exc}") from exc
    for name in names:
        yield name, folder / name


def _file_digest(path: Path, st: os.stat_result) -> str:
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9:
        return _read_digest(path)  # changed just now: its stat cannot vouch for it yet
    sig: Signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    where = os.path.abspath(path)
    known = _MEMO.get(where, sig)
    if known is None:
        known = _read_digest(path)
        _MEMO.put(where, sig, known)
    return known


def _read_digest(path: Path) -> str:
    """xxh3-128 of the file's bytes, read in chunks."""
    h = xxh3_128()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise HashingError(f"DataPath {str(path)!r}: cannot read it: {exc}") from exc
    return h.hexdigest()


# -- remembered digests -------------------------------------------------------------------


def digest_table_path() -> Path:
    """Where file digests are remembered across processes.

    ``$INCGRAPH_DIGESTS`` if set, else ``incgraph/file-digests.sqlite`` under
    ``$XDG_CACHE_HOME`` (default ``~/.cache``).

    Examples
    --------
    >>> digest_table_path().name.endswith(".sqlite")
    True
    """
    explicit = os.environ.get("INCGRAPH_DIGESTS")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "incgraph" / "file-digests.sqlite"


class _DigestMemo:
    """(absolute path, stat signature) -> digest: in memory, backed by the digest table."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known: dict[str, tuple[Signature, str]] = {}
        self.db: sqlite3.Connection | None = None
        self.db_where: tuple[int, Path] | None = None  # (pid, file) the connection is for

    def get(self, where: str, sig: Signature) -> str | None:
        with self.lock:
            hit = self.known.get(where)
            if hit is not None and hit[0] == sig:
                return hit[1]
            row = self._query(
                "SELECT digest FROM digests WHERE path = ? AND signature = ?",
                (where, _text(sig)),
            )
            if row is None:
                return None
            self._remember(where, sig, row[0])
            return str(row[0])

    def put(self, where: str, sig: Signature, digest: str) -> None:
        with self.lock:
            self._remember(where, sig, digest)
            self._query(
                "INSERT OR REPLACE INTO digests (path, signature, digest) VALUES (?, ?, ?)",
                (where, _text(sig), digest),
            )

    def _remember(self, where: str, sig: Signature, digest: str) -> None:
        if len(self.known) >= _KNOWN_MAX:  # bounded: the table still has them all
            self.known.clear()
        self.known[where] = (sig, digest)

    def _query(self, sql: str, args: tuple[str, ...]) -> Any:
        db = self._connection()
        if db is None:
            return None
        try:
            return db.execute(sql, args).fetchone()
        except sqlite3.Error:
            return None  # a cache: the file is read again

    def _connection(self) -> sqlite3.Connection | None:
        where = (os.getpid(), digest_table_path())
        if self.db_where != where:  # first use, after a fork, or another table chosen
            self.db, self.db_where = _open_table(where[1]), where
        return self.db


def _open_table(file: Path) -> sqlite3.Connection | None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(file, timeout=5.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS digests "
            "(path TEXT PRIMARY KEY, signature TEXT NOT NULL, digest TEXT NOT NULL)"
        )
    except (OSError, sqlite3.Error):
        return None  # no table: digests are remembered in this process only
    return db


def _text(sig: Signature) -> str:
    return ":".join(map(str, sig))


_MEMO = _DigestMemo()
