"""Blobs in object storage (S3 and anything fsspec reaches), one object per data version.

Design note
-----------
An `ObjectBlobStore` keeps each blob as the object ``<prefix>/blobs/<dv[:2]>/<dv>``
of a bucket (``s3://bucket/prefix``) or of a local folder (``file:///path``),
through `fsspec <https://filesystem-spec.readthedocs.io>`_ (``s3fs`` for S3).
Credentials come only from the client's standard configuration (``AWS_*``
environment variables, ``~/.aws``, an instance role); nothing about them is
written anywhere.

**Self-describing objects.** An object is a 64-byte-aligned header (magic,
then JSON: data version, codec, checksum, payload size, HMAC tag) followed by
the payload a codec wrote (`incgraph.store.codecs`). No index row is needed to
check it: every load verifies the magic, the data version, the size, the
xxh3-64 checksum and, when signing, the tag, before a byte is decoded.

**Create-only writes.** A blob is content-addressed, so writing it twice is
writing the same value twice. Writes never replace an object: S3 gets
``If-None-Match: *`` (a conditional PUT; a lost race answers "exists", which
is a success), a local folder gets a temporary file ``os.link``-ed to the
final name (which fails if the name exists) and then unlinked. An S3 PUT is
atomic: a partial upload is never visible under the final name; locally the
temporary name is never listed as a blob.

**Signature failures are not misses.** A checksum failure (torn or damaged
bytes) raises `StoreCorruptError` and removes the object, so the result is
recomputed. A missing or wrong HMAC tag raises `SignatureError`, which the
engine does not treat as a miss, and the object is left alone: the usual
cause is a process holding another key than the store's writers, and deleting
a team's results because of it would be wrong.

**Read-through cache.** With a `incgraph.store.blob_cache.BlobCache`, a
download is kept locally and later loads read (or memory-map) the local copy,
checked like a download.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

from incgraph.errors import (
    ExtraNotInstalledError,
    ReadOnlyStoreError,
    SignatureError,
    StoreCorruptError,
    StoreError,
)
from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store.blob_cache import BlobCache
from incgraph.store.codecs import CODECS, Captured, Encoded, checksum, decode, encode
from incgraph.store.diskio import write_all
from incgraph.store.file_blobs import ResultsElsewhere
from incgraph.store.names import (
    DATA_VERSION,
    parse_temp_file,
    temp_file_is_live,
    temp_file_name,
)
from incgraph.store.protocols import BlobEntry
from incgraph.store.signing import HMAC_ENV_VAR, Signer

__all__ = ["ObjectBlobStore", "is_object_url", "pack_blob"]

MAGIC = b"incgraph-blob\x001\n"
"""The first bytes of every blob object (format version 1)."""

_ALIGN = 64
_PARALLEL = 16  # concurrent transfers in put_many / get_many
_LOCAL_PROTOCOLS = {"file", "local"}
_DATABASE_SCHEMES = {"postgresql", "postgres"}


def is_object_url(location: object) -> bool:
    """Whether ``location`` is a URL naming object storage (``scheme://...``, not a database).

    Examples
    --------
    >>> is_object_url("s3://bucket/prefix"), is_object_url("/tmp/store"), is_object_url(3)
    (True, False, False)
    >>> is_object_url("postgresql://me@db/cache")
    False
    """
    if not isinstance(location, str) or location.startswith("/"):
        return False
    scheme, found, _ = location.partition("://")
    return bool(found) and scheme.lower() not in _DATABASE_SCHEMES


def pack_blob(
    data_version: str, encoded: Encoded, signer: Signer | None
) -> tuple[bytes, dict[str, Any]]:
    """The object bytes of a blob (header, then payload) and its header.

    Examples
    --------
    >>> from incgraph.store.codecs import encode
    >>> data, header = pack_blob("ab" * 8, encode([1], inline_limit=1 << 20), None)
    >>> data.startswith(MAGIC), len(data) % 64 == header["size"] % 64, header["codec"]
    (True, True, 'pickle')
    """
    header = {
        "data_version": data_version,
        "codec": encoded.codec,
        "checksum": encoded.checksum(),
        "size": encoded.size,
        "tag": None if signer is None else signer.tag(data_version, encoded.codec, encoded.parts),
    }
    text = json.dumps(header, sort_keys=True).encode()
    used = len(MAGIC) + 4 + len(text)
    text += b" " * (-used % _ALIGN)
    return b"".join([MAGIC, struct.pack("<I", len(text)), text, *encoded.parts]), header


def _unpack(data_version: str, buffer: Any) -> tuple[dict[str, Any], memoryview]:
    """The header and payload of an object's bytes; `StoreCorruptError` if malformed."""
    view = memoryview(buffer)
    start = len(MAGIC) + 4
    if len(view) < start or bytes(view[: len(MAGIC)]) != MAGIC:
        raise _corrupt(data_version, "it does not start with incgraph's blob header")
    (length,) = struct.unpack("<I", view[len(MAGIC) : start])
    try:
        header = json.loads(bytes(view[start : start + length]))
    except ValueError as exc:
        raise _corrupt(data_version, f"its header is not JSON ({exc})") from exc
    payload = view[start + length :]
    if not isinstance(header, dict) or header.get("data_version") != data_version:
        raise _corrupt(data_version, "its header names another data version")
    if header.get("codec") not in CODECS or header.get("size") != len(payload):
        raise _corrupt(data_version, "its header's codec or size does not match its bytes")
    return header, payload


def _corrupt(data_version: str, reason: str) -> StoreCorruptError:
    return StoreCorruptError(f"blob {data_version} is corrupt: {reason}")


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem and root path of ``url``; a clear error if a library is missing."""
    try:
        import fsspec
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f'object-storage blobs ({url}) need fsspec: pip install "incgraph[s3]"'
        ) from exc
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"the blob store {url} needs a library that is not installed ({exc}); "
            'for S3: pip install "incgraph[s3]"'
        ) from exc
    except ValueError as exc:
        raise StoreError(f"cannot open the blob store {url}: {exc}") from exc
    return fs, root.rstrip("/")


class ObjectBlobStore:
    """A `BlobStore` in object storage: ``s3://bucket/prefix`` or ``file:///folder``.

    Parameters
    ----------
    url : str
        Where the blobs go; any URL fsspec understands (``s3://`` needs
        ``pip install "incgraph[s3]"``).
    signer : Signer, optional
        Sign every blob written; refuse (with `SignatureError`) blobs whose tag
        is missing or wrong.
    cache : BlobCache, optional
        Keep downloaded blobs locally (a read-through cache).
    read_only : bool
        Refuse writes and deletions.
    storage_options : dict, optional
        Passed to the fsspec filesystem (e.g. ``{"endpoint_url": ...}``). Never
        put secrets here in code you commit: use the client's configuration.
    file_mode : int
        Permissions of the objects in a ``file://`` folder (0600; 0660 when
        group-shared).
    settings : Settings
        ``blob_inline_limit_bytes``: values encoding to less are pickled whole;
        larger arrays and frames get the ``npy`` / ``pickle5`` codecs, which
        load without an unpickling copy (`incgraph.settings`).

    Examples
    --------
    >>> import tempfile
    >>> blobs = ObjectBlobStore("file://" + tempfile.mkdtemp())
    >>> blobs.put("ab" * 16, {"a": [1, 2]}) > 0
    True
    >>> blobs.get("ab" * 16), blobs.contains("cd" * 16)
    ({'a': [1, 2]}, False)
    """

    def __init__(
        self,
        url: str,
        *,
        signer: Signer | None = None,
        cache: BlobCache | None = None,
        read_only: bool = False,
        storage_options: dict[str, Any] | None = None,
        file_mode: int = 0o600,
        settings: Settings = DEFAULT_SETTINGS,
    ) -> None:
        self.url = url
        self.signer = signer
        self.cache = cache
        self.read_only = read_only
        self.inline_limit = settings.blob_inline_limit_bytes
        self.file_mode = file_mode
        options = {"use_listings_cache": False, **(storage_options or {})}
        self.fs, root = _filesystem(url, options)
        self.local = bool(_LOCAL_PROTOCOLS & set(_protocols(self.fs)))
        self.root = f"{root}/blobs"
        self.elsewhere: ResultsElsewhere | None = None
        """An index in a database (PostgreSQL) that garbage collection asks, holding its
        lock, before deleting a blob; None when the caller checked (a local index)."""

    def __repr__(self) -> str:
        return f"ObjectBlobStore({self.url!r})"

    @property
    def signed(self) -> bool:
        """Whether blobs are signed and checked (a key was given)."""
        return self.signer is not None

    def path_of(self, data_version: str) -> Path | None:
        """The local cached copy of ``data_version``, or None (the bytes are remote)."""
        if self.cache is None:
            return None
        path = self.cache.path(data_version)
        return path if path.is_file() else None

    def _path(self, data_version: str) -> str:
        _check(data_version)
        return f"{self.root}/{data_version[:2]}/{data_version}"

    # -- reading ------------------------------------------------------------------------

    def contains(self, data_version: str) -> bool:
        """Whether an object for ``data_version`` is stored (cached copies count)."""
        if self.cache is not None and self.cache.path(data_version).is_file():
            return True
        try:
            return bool(self.fs.exists(self._path(data_version)))
        except OSError as exc:
            raise self._error(exc, data_version) from exc

    def get(self, data_version: str) -> Any:
        """Load the value; ``KeyError`` if absent, `StoreCorruptError` or `SignatureError`
        if it fails its checks (nothing is decoded then)."""
        header, payload = self._verified(data_version)
        try:
            return decode(header["codec"], payload)
        except ExtraNotInstalledError:
            raise
        except Exception as exc:
            self._discard(data_version)
            raise _corrupt(data_version, f"it cannot be decoded ({exc!r})") from exc

    def _verified(self, data_version: str) -> tuple[dict[str, Any], memoryview]:
        """Header and payload of the blob, checked; a bad cached copy is fetched again."""
        cache = self.cache
        if cache is not None:
            buffer = cache.read(data_version)
            if buffer is not None:
                try:
                    return self._checked(data_version, buffer)
                except (StoreCorruptError, SignatureError):
                    cache.drop(data_version)  # a damaged copy: the remote one decides
        data = self._download(data_version)
        # the buffer values are decoded from must be writable: loaded values are the caller's
        buffer = bytearray(data) if cache is None else cache.fill(data_version, data)
        try:
            return self._checked(data_version, buffer)
        except StoreCorruptError:
            self._discard(data_version)
            raise

    def _download(self, data_version: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(data_version)))
        except FileNotFoundError:
            raise KeyError(data_version) from None
        except OSError as exc:
            raise self._error(exc, data_version) from exc

    def _checked(self, data_version: str, buffer: Any) -> tuple[dict[str, Any], memoryview]:
        header, payload = _unpack(data_version, buffer)
        problem = self._problem(data_version, header, payload)
        if problem is None:
            return header, payload
        if problem.startswith("its bytes"):
            raise _corrupt(data_version, problem)
        raise SignatureError(
            f"blob {data_version} in {self.url} is refused: {problem}. Set {HMAC_ENV_VAR} "
            "(or open_store(..., hmac_key=...)) to the key the store's writers use; "
            "nothing was unpickled"
        )

    def _problem(self, data_version: str, header: dict[str, Any], payload: Any) -> str | None:
        if checksum([payload]) != header.get("checksum"):
            return "its bytes do not match their checksum"
        tag = header.get("tag")
        signer = self.signer
        if signer is not None and not signer.check(data_version, header["codec"], [payload], tag):
            if not tag:
                return "it has no HMAC signature (written without a key)"
            return "its HMAC signature does not match (signed with another key, or tampered)"
        return None

    def get_raw(self, data_version: str) -> bytes:
        """The object's bytes as stored, checked first: what `put_raw` copies elsewhere."""
        buffer = None if self.cache is None else self.cache.read(data_version)
        if buffer is None:
            buffer = self._download(data_version)
        self._checked(data_version, buffer)
        return bytes(buffer)

    def data_versions(self) -> Iterator[str]:
        """Every stored data version (listing the bucket)."""
        return (entry.data_version for entry in self.entries())

    def entries(self) -> Iterator[BlobEntry]:
        """Every stored blob's size and upload time (no ``path``: the bytes are remote)."""
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return iter([])
        except OSError as exc:
            raise self._error(exc, self.root) from exc
        entries = []
        for name, info in sorted(found.items()):
            data_version = name.rsplit("/", 1)[-1]
            if DATA_VERSION.fullmatch(data_version) and info.get("type", "file") == "file":
                entries.append(BlobEntry(data_version, int(info["size"]), _mtime(info), False))
        return iter(entries)

    def check(self, data_version: str) -> str | None:
        """Why the blob must not be served (downloaded in full), or None if sound."""
        try:
            data = self._download(data_version)
        except KeyError:
            return "it is not stored"
        try:
            header, payload = _unpack(data_version, data)
        except StoreCorruptError as exc:
            return str(exc)
        return self._problem(data_version, header, payload)

    # -- writing ------------------------------------------------------------------------

    def put(self, data_version: str, value: Any) -> int:
        """Store ``value`` under ``data_version`` (a no-op if present); return its size."""
        return self.put_many([(data_version, value)])[0]

    def put_many(self, items: Iterable[tuple[str, Any]]) -> list[int]:
        """Store many values, uploads running concurrently; return each one's stored size."""
        self._check_writable()
        items = list(items)
        unique: dict[str, Any] = {}
        for data_version, value in items:
            unique.setdefault(data_version, value)  # the first of a repeated version, as on disk
        for data_version in unique:
            _check(data_version)
        sizes = dict(zip(unique, self._each(self._put_one, list(unique.items())), strict=True))
        return [sizes[data_version] for data_version, _ in items]

    def _put_one(self, item: tuple[str, Any]) -> int:
        data_version, value = item
        if type(value) is Captured:
            found = value.encoded_for(self.inline_limit)
            if isinstance(found, Encoded):
                encoded = found
            else:
                encoded = Encoded("pickle", (found,), len(found))
        else:
            encoded = encode(value, inline_limit=self.inline_limit)
        data, _ = pack_blob(data_version, encoded, self.signer)
        if self.put_raw(data_version, data):
            return len(data)
        try:  # stored already (maybe another pickle of the value): its size
            return int(self.fs.size(self._path(data_version)))
        except OSError as exc:
            raise self._error(exc, data_version) from exc

    def put_raw(self, data_version: str, data: bytes) -> bool:
        """Write an object's bytes (as `pack_blob` or `get_raw` gave them) unless one is
        stored; return whether this call wrote it."""
        self._check_writable()
        path = self._path(data_version)
        try:
            if self.local:
                return self._put_local(path, data_version, data)
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._error(exc, data_version) from exc
        return True

    def _put_local(self, path: str, data_version: str, data: bytes) -> bool:
        """Create-only in a folder: a temporary file, hard-linked to the final name."""
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700 if self.file_mode == 0o600 else 0o2770, exist_ok=True)
        temp = os.path.join(folder, temp_file_name(data_version))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
        try:
            try:
                if self.file_mode != 0o600:
                    os.fchmod(fd, self.file_mode)
                write_all(fd, data)
            finally:
                os.close(fd)
            os.link(temp, path)
        finally:
            with suppress(OSError):
                os.unlink(temp)
        return True

    def delete(self, data_version: str) -> None:
        """Remove the blob (absent blobs are ignored)."""
        self.delete_many([data_version])

    def delete_many(self, data_versions: Iterable[str], *, unreferenced: bool = False) -> int:
        """Remove blobs; return how many there were.

        ``unreferenced`` with an index in a database (`elsewhere`): only those
        no result there names, asked while it holds its lock, so that no result
        naming one commits until the deletion has. Otherwise the caller checked.
        """
        self._check_writable()
        wanted = list(dict.fromkeys(data_versions))
        elsewhere = self.elsewhere
        if not unreferenced or elsewhere is None:
            return self._delete(wanted)

        def delete_unnamed() -> int:
            named = elsewhere.names(wanted)
            return self._delete([dv for dv in wanted if dv not in named])

        return elsewhere.hold(delete_unnamed)

    def _delete(self, data_versions: list[str]) -> int:
        if not self.local:  # a bucket deletes an absent key without a word: count what is there
            stored = self.present(data_versions)
            data_versions = [dv for dv in data_versions if dv in stored]
        gone = 0
        for data_version in data_versions:
            if self.cache is not None:
                self.cache.drop(data_version)
            try:
                self.fs.rm_file(self._path(data_version))
                gone += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(exc, data_version) from exc
        return gone

    def present(self, data_versions: Iterable[str]) -> set[str]:
        """Which of ``data_versions`` are stored (concurrent HEAD requests)."""
        wanted = list(dict.fromkeys(data_versions))
        found = self._each(lambda dv: int(self.contains(dv)), wanted)
        return {dv for dv, here in zip(wanted, found, strict=True) if here}

    def quarantine(self, data_version: str, folder: Path | None) -> Path | None:
        """Download the blob's bytes into ``folder``; delete the object if they are damaged.

        An object whose bytes are sound but whose signature fails is copied and
        kept: the usual cause is this process's key, and a team's result is
        not deleted over it (remove it with the bucket's own tools once the key
        is known to be right).
        """
        self._check_writable()
        if folder is None:
            raise ValueError(f"a folder is needed to quarantine blob {data_version}")
        try:
            data = self._download(data_version)
        except KeyError:
            return None
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = folder / f"{data_version}.{time.strftime('%Y%m%dT%H%M%S')}.blob"
        target.write_bytes(data)
        if self.cache is not None:
            self.cache.drop(data_version)
        if not self._sound(data_version, data):
            self.delete_many([data_version])
        return target

    def _sound(self, data_version: str, data: bytes) -> bool:
        """Whether ``data`` is a whole, undamaged object (its signature aside)."""
        try:
            header, payload = _unpack(data_version, data)
        except StoreCorruptError:
            return False
        return checksum([payload]) == header.get("checksum")

    def _discard(self, data_version: str) -> None:
        """Remove a blob that failed its checksum (unless read-only)."""
        if self.cache is not None:
            self.cache.drop(data_version)
        if not self.read_only:
            with suppress(StoreError):
                self.delete_many([data_version])

    # -- files of interrupted writes (local folders only) --------------------------------

    def orphan_files(self, older_than: float = 3600.0) -> list[Path]:
        """None: every object is a blob (there is no row to be missing)."""
        return []

    def stale_temp_files(self, older_than: float = 3600.0) -> list[Path]:
        """Temporary files of killed writers in a local folder, older than ``older_than`` s.

        S3 needs none: an unfinished upload is never an object.
        """
        if not self.local:
            return []
        cutoff = time.time() - older_than
        stale = []
        for folder in sorted(Path(self.root).glob("??")):
            for path in folder.iterdir():
                temp = parse_temp_file(path.name, folder.name)
                with suppress(OSError):
                    if temp and path.stat().st_mtime < cutoff and not temp_file_is_live(temp):
                        stale.append(path)
        return stale

    def remove_files(self, paths: Iterable[Path]) -> list[Path]:
        """Delete those listed stale temporary files that still are; return them."""
        listed = set(self.stale_temp_files(0.0))
        removed = []
        for path in paths:
            if path in listed:
                with suppress(OSError):
                    path.unlink()
                    removed.append(path)
        return removed

    def close(self) -> None:
        """Nothing to release: connections are the client's."""

    # -- helpers ------------------------------------------------------------------------

    def _each(self, work: Callable[[Any], int], items: list[Any]) -> list[int]:
        """``work`` over ``items``, concurrently when there are several (network-bound)."""
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(min(_PARALLEL, len(items))) as pool:
            return list(pool.map(work, items))

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"the blob store {self.url} was opened read-only; open the store with "
                "read_only=False to save or delete results"
            )

    def _error(self, exc: OSError, what: str) -> StoreError:
        return StoreError(f"the blob store {self.url} failed on {what}: {exc}")


def _check(data_version: str) -> None:
    if not isinstance(data_version, str) or not DATA_VERSION.fullmatch(data_version):
        raise ValueError(
            f"data version {data_version!r} is not a hash string (2-128 characters of "
            "[0-9A-Za-z_-]); pass the value's data version from incgraph.hashing"
        )


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _mtime(info: dict[str, Any]) -> float:
    """An fsspec listing entry's modification time, in Unix seconds (0.0 when unknown)."""
    found = info.get("LastModified", info.get("mtime", info.get("created", 0.0)))
    if hasattr(found, "timestamp"):
        return float(found.timestamp())
    return float(found or 0.0)
