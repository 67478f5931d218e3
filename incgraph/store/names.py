"""The names of the files incgraph makes in a store folder, and how it opens and removes them.

Design note
-----------
A store folder may be shared with other programs and may hold files an
attacker wrote (a crafted ``index.sqlite`` row is enough). So no path is ever
built from text read back from the index as it is: every name is rebuilt from
fields that were checked first.

* A **blob file** is ``blobs/<dv[:2]>/<dv>.<checksum>.<suffix>``: ``dv`` is a
  data version (2-128 characters of ``[0-9A-Za-z_-]``), ``checksum`` is 16
  lowercase hex digits (xxh3-64) and ``suffix`` is the codec's
  (``pkl``, ``npy``, ``pk5``, ``bin``). A row whose fields do not fit
  (`blob_file_name` raises `BadName`) is corrupt: it is
  reported, never joined into a path.
* A **temporary file** is ``blobs/<dv[:2]>/<dv>.<32 hex>-<host>-<pid>-<tid>.tmp``
  (`temp_file_name`): ``host`` is 8 hex digits of a hash of the host
  name, so a collector can tell a live writer's file (its process still runs
  on this host: `temp_file_is_live`) from a dead one's, and keeps it
  whatever its age.
* Files are opened and removed relative to a folder opened with
  ``O_NOFOLLOW`` (`open_folder`), and opened themselves with
  ``O_NOFOLLOW``: a symlinked ``blobs`` folder, sub-folder or file is never
  followed out of the store.

Maintenance lists only names that match these patterns
(`is_blob_file`, `parse_temp_file`); a user's own
``blobs/raw/photo.png`` matches neither and is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from incgraph.store.codecs import SUFFIXES

__all__ = [
    "BadName",
    "TempFile",
    "blob_file_name",
    "is_blob_file",
    "open_folder",
    "parse_temp_file",
    "temp_file_is_live",
    "temp_file_name",
]

_DV = r"[0-9A-Za-z_\-]{2,128}"
DATA_VERSION = re.compile(_DV)
CHECKSUM = re.compile(r"[0-9a-f]{16}")
_SUFFIXES = "|".join(sorted(set(SUFFIXES.values())))
_BLOB_FILE = re.compile(rf"({_DV})\.([0-9a-f]{{16}})\.(?:{_SUFFIXES})")
_TEMP_FILE = re.compile(
    rf"({_DV})\.[0-9a-f]{{32}}-(?:([0-9a-f]{{8}})-)?([0-9]{{1,10}})-[0-9]+\.tmp"
)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class BadName(ValueError):
    """A field read from the index cannot be part of one of incgraph's file names."""


def host_tag() -> str:
    """8 hex digits naming this host in temporary file names.

    Examples
    --------
    >>> len(host_tag()), host_tag() == host_tag()
    (8, True)
    """
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def blob_file_name(data_version: object, checksum: object, codec: object) -> str:
    """The file name of a blob, from checked fields only.

    Raises
    ------
    BadName
        A field does not fit incgraph's rules (a crafted or damaged row).

    Examples
    --------
    >>> blob_file_name("ab" * 16, "0123456789abcdef", "pickle")
    'abababababababababababababababab.0123456789abcdef.pkl'
    >>> blob_file_name("ab" * 16, "x/../../etc", "pickle")
    Traceback (most recent call last):
    ...
    incgraph.store.names.BadName: its checksum 'x/../../etc' is not 16 hex digits
    """
    if not isinstance(data_version, str) or not DATA_VERSION.fullmatch(data_version):
        raise BadName(f"its data version {data_version!r} is not a hash string")
    if not isinstance(checksum, str) or not CHECKSUM.fullmatch(checksum):
        raise BadName(f"its checksum {checksum!r} is not 16 hex digits")
    if not isinstance(codec, str) or codec not in SUFFIXES:
        raise BadName(f"its row names an unknown codec {codec!r}")
    return f"{data_version}.{checksum}.{SUFFIXES[codec]}"


def is_blob_file(name: str, folder_name: str) -> bool:
    """Whether ``name`` in the sub-folder ``folder_name`` is a blob file incgraph would make.

    Examples
    --------
    >>> is_blob_file("abab.0123456789abcdef.pkl", "ab"), is_blob_file("photo.png", "ab")
    (True, False)
    """
    found = _BLOB_FILE.fullmatch(name)
    return found is not None and found.group(1)[:2] == folder_name


def temp_file_name(data_version: str) -> str:
    """A fresh temporary name for a blob file being written by this process and thread.

    Examples
    --------
    >>> found = parse_temp_file(temp_file_name("ab" * 16), "ab")
    >>> found is not None and found.pid == os.getpid()
    True
    """
    tag = uuid.uuid4().hex
    return f"{data_version}.{tag}-{host_tag()}-{os.getpid()}-{threading.get_ident()}.tmp"


class TempFile(NamedTuple):
    """What a temporary file's name says about its writer (``host`` is None in old names)."""

    host: str | None
    pid: int


def parse_temp_file(name: str, folder_name: str) -> TempFile | None:
    """The writer named by a temporary file's name, or None if incgraph would not make it."""
    found = _TEMP_FILE.fullmatch(name)
    if found is None or found.group(1)[:2] != folder_name:
        return None
    return TempFile(found.group(2), int(found.group(3)))


def temp_file_is_live(temp: TempFile) -> bool | None:
    """Whether the writer of a temporary file still runs: True, False, or None if unknown.

    Unknown for a writer on another host (or an old name without a host).

    Examples
    --------
    >>> temp_file_is_live(TempFile(host_tag(), os.getpid()))
    True
    """
    if temp.host != host_tag():
        return None
    try:
        os.kill(temp.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@contextmanager
def open_folder(path: Path) -> Iterator[int]:
    """A descriptor of the folder ``path``, refusing a symlink in its last component.

    Raises ``OSError`` (``ELOOP`` or ``ENOTDIR``) for a symlink or a non-folder.
    """
    fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(folder_fd: int, name: str) -> int:
    """Open the regular file ``name`` in a folder for reading, never through a symlink."""
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=folder_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(f"{name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_real_folder(path: Path) -> None:
    """Create the folder ``path`` (mode 0700) if missing; refuse one that is a symlink.

    Raises ``NotADirectoryError`` when ``path`` is a symlink or not a folder.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not is_real_folder(path):
        raise NotADirectoryError(
            f"{path} is a symlink or not a folder; incgraph writes only into real folders "
            "of the store: remove it and rerun"
        )


def is_real_folder(path: Path) -> bool:
    """Whether ``path`` is a folder and not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
