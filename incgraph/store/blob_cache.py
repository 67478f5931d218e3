"""A local read-through cache of remote blobs, bounded in bytes, least recently used out.

Design note
-----------
An object-storage blob store (`incgraph.store.object_blobs`) keeps a copy of
every blob it downloads in a local folder, so a rerun that loads the same
inputs again reads local files, and large arrays are memory-mapped from them
exactly as from a local store.

* **Names.** A copy is ``<folder>/<dv[:2]>/<dv>``: the remote object's bytes
  as they are (header and payload), so every load checks them again (checksum,
  and HMAC tag when signing) exactly as a download is checked; a copy that
  fails is dropped and fetched again.
* **Atomic fills.** A copy is written to a temporary name in its final folder
  and ``os.replace``-d into place: a reader sees a whole copy or none. Several
  processes may fill the same copy at once; the last rename wins, with equal
  content.
* **Eviction.** Each load touches its copy's modification time; when a fill
  takes the folder past ``max_bytes``, the copies touched least recently are
  deleted until it is under the limit again. A copy deleted while another
  process maps it stays readable for that process (POSIX unlink semantics).
* **Mapped loads.** Copies of at least ``mmap_threshold`` bytes are mapped
  copy-on-write: writing to a loaded array changes only the caller's pages.
"""

from __future__ import annotations

import mmap
import os
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store.diskio import write_all
from incgraph.store.failure import store_error
from incgraph.store.names import DATA_VERSION, parse_temp_file, temp_file_name

__all__ = ["BlobCache"]


class BlobCache:
    """Local copies of remote blobs in ``folder``, at most ``max_bytes`` of them.

    Parameters
    ----------
    folder : str or os.PathLike
        Where the copies live (created with mode 0700, or ``folder_mode``).
    max_bytes : int
        Size limit; the least recently used copies go first when it is passed
        (``open_store`` passes ``settings.blob_cache_bytes`` unless told).
    mmap_threshold : int
        Copies at least this big are loaded through a copy-on-write memory map
        (``settings.blob_mmap_threshold_bytes``).
    file_mode, folder_mode : int
        Permissions of new copies and folders (group-shared stores widen them).

    Examples
    --------
    >>> import tempfile
    >>> cache = BlobCache(tempfile.mkdtemp(), max_bytes=10)
    >>> bytes(cache.fill("ab" * 8, b"12345678"))
    b'12345678'
    >>> bytes(cache.read("ab" * 8))
    b'12345678'
    >>> _ = cache.fill("cd" * 8, b"12345678")  # 16 bytes > 10: the older copy goes
    >>> cache.read("ab" * 8) is None
    True
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        max_bytes: int = DEFAULT_SETTINGS.blob_cache_bytes,
        *,
        mmap_threshold: int = DEFAULT_SETTINGS.blob_mmap_threshold_bytes,
        file_mode: int = 0o600,
        folder_mode: int = 0o700,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"the cache size limit must be 0 or more bytes, got {max_bytes}")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.mmap_threshold = mmap_threshold
        self.file_mode = file_mode
        self.folder_mode = folder_mode
        self._lock = threading.Lock()
        self._bytes: int | None = None  # bytes held, counted on the first fill

    def __repr__(self) -> str:
        return f"BlobCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    def path(self, data_version: str) -> Path:
        """Where the copy of ``data_version`` lives."""
        if not DATA_VERSION.fullmatch(data_version):
            raise ValueError(f"data version {data_version!r} is not a hash string")
        return self.folder / data_version[:2] / data_version

    def read(self, data_version: str) -> Any:
        """The copy's bytes (mapped when big), touched as used now; None when not cached."""
        path = self.path(data_version)
        try:
            with open(path, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                if size >= self.mmap_threshold and size > 0:
                    buffer: Any = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
                else:
                    buffer = bytearray(size)
                    handle.readinto(buffer)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with suppress(OSError):
            os.utime(path)
        return buffer

    def fill(self, data_version: str, data: bytes) -> Any:
        """Keep a copy of ``data`` (atomically), evict if over the limit; return it as `read`
        would (from the copy when it was kept, else ``data`` itself)."""
        if len(data) > self.max_bytes:
            return bytearray(data)
        path = self.path(data_version)
        self._make_folder(path.parent)
        temp = path.parent / temp_file_name(data_version)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
            try:
                if self.file_mode != 0o600:
                    os.fchmod(fd, self.file_mode)
                write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temp)
            raise store_error(exc, path) from exc
        self._added(len(data))
        found = self.read(data_version)
        return bytearray(data) if found is None else found

    def drop(self, data_version: str) -> None:
        """Forget the copy of ``data_version`` (absent copies are ignored)."""
        with suppress(OSError):
            os.unlink(self.path(data_version))
        with self._lock:
            self._bytes = None

    def size(self) -> int:
        """Bytes the copies take now."""
        return sum(stats.st_size for _, stats in self._copies())

    def _make_folder(self, folder: Path) -> None:
        for made in (self.folder, folder):
            if made.is_dir():
                continue
            try:
                made.mkdir(mode=self.folder_mode, parents=True, exist_ok=True)
                if self.folder_mode != 0o700:
                    os.chmod(made, self.folder_mode)
            except OSError as exc:
                raise store_error(exc, made) from exc

    def _added(self, size: int) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = self.size()
            else:
                self._bytes += size
            if self._bytes <= self.max_bytes:
                return
            self._bytes = self._evict()

    def _evict(self) -> int:
        """Delete the least recently used copies until under the limit; return bytes kept."""
        copies = sorted(self._copies(), key=lambda found: found[1].st_mtime)
        held = sum(stats.st_size for _, stats in copies)
        for path, stats in copies:
            if held <= self.max_bytes:
                break
            with suppress(OSError):
                os.unlink(path)
                held -= stats.st_size
        return held

    def _copies(self) -> list[tuple[Path, os.stat_result]]:
        """Every copy (and stale temporary file) with its stats."""
        found = []
        with suppress(FileNotFoundError):
            for folder in os.scandir(self.folder):
                if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(folder.path):
                    own = DATA_VERSION.fullmatch(entry.name) or parse_temp_file(
                        entry.name, folder.name
                    )
                    with suppress(FileNotFoundError):
                        if own and entry.is_file(follow_symlinks=False):
                            found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
        return found
