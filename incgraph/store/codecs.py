"""How values become bytes in the blob store, and back.

Design note
-----------
Every codec turns a value into a short list of *parts* (bytes-like objects that
are written one after another, never joined for large values) and reads a value
back from one buffer: ``bytes`` from SQLite for small values, a ``bytearray``
or a copy-on-write ``mmap`` for files. A buffer that is writable yields values
that are writable and private to the caller, so mutating a loaded result can
never change the cache.

==========  =====================================================  ===========
codec       used for                                               file suffix
==========  =====================================================  ===========
``pickle``  everything small, and large values with no big buffers  ``.pkl``
``npy``     a large plain ``numpy.ndarray`` (no object dtype):      ``.npy``
            an ``.npy`` file (``numpy.load`` can open it) whose
            data is loaded without an unpickling copy
``pickle5`` a large value holding big buffers (pandas frames,       ``.pk5``
            dicts of arrays): pickle protocol 5 with the buffers
            stored out of band, each 64-byte aligned
``raw``     a large ``bytes`` value, stored as is                   ``.bin``
==========  =====================================================  ===========

"Large" means at least ``inline_limit`` bytes; below it the plain ``pickle``
codec is always used, so values kept inline in SQLite are single ``bytes``.
The checksum of a blob is the xxh3-64 digest of its parts, as 16 hex digits.

`capture` takes a value's bytes *now*: a `Captured` holds its encoding in
owned ``bytes`` (never views of the value's memory), so whatever is done to
the value afterwards (a consumer appending to a list, ``x -= 1`` on an array)
changes neither what the store saves from it nor the private copies
`Captured.value` decodes. The engine captures each result right after it is
computed; the blob stores save a captured value's bytes as they are.

`encode_small` is `encode` for the save hot path: a small value's
pickle comes back as bare ``bytes`` (no `Encoded` around it) and
`checksum_of` digests it in one call; the bytes and the digest are the
ones `encode` and `checksum` give.

numpy is never imported here: an array can only reach `encode` if the
caller already imported numpy, and a blob can only be ``npy`` if numpy wrote it.
"""

from __future__ import annotations

import importlib
import io
import pickle
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import xxhash

from incgraph.errors import ExtraNotInstalledError, UnstorableResultError
from incgraph.store.picklability import unpicklable_part

__all__ = [
    "CODECS",
    "SUFFIXES",
    "Captured",
    "Encoded",
    "capture",
    "checksum",
    "checksum_of",
    "decode",
    "dumps",
    "encode",
    "encode_small",
    "unstorable",
]

SUFFIXES = {"pickle": "pkl", "npy": "npy", "pickle5": "pk5", "raw": "bin"}
"""File suffix of each codec."""

CODECS = tuple(SUFFIXES)
"""The codec names a blob row may hold."""

EXTRAS = {"numpy": "numpy", "pandas": "pandas", "polars": "polars", "torch": "torch"}
"""Library -> the extra that installs it: a stored value needing a missing one says so.

Loading such a value raises `ExtraNotInstalledError`
(an ``ImportError``), never a corruption error: the bytes are fine, and the
result must not be dropped because this environment lacks a library.
"""

_ALIGN = 64
_PK5_MAGIC = b"IGPK5\x00\x00\x01"
_U64 = struct.Struct("<Q")
_pickle_dumps = pickle.dumps
_xxh3_hexdigest = xxhash.xxh3_64_hexdigest

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class Encoded:
    """A value as a codec name plus the parts of its bytes."""

    codec: str
    parts: tuple[Buffer, ...]
    size: int

    def checksum(self) -> str:
        """xxh3-64 of the concatenated parts, as 16 hex digits."""
        return checksum(self.parts)

    def join(self) -> bytes:
        """The parts as one ``bytes`` object (meant for small values)."""
        if len(self.parts) == 1 and type(self.parts[0]) is bytes:
            return self.parts[0]
        return b"".join(self.parts)


def checksum(parts: Iterable[Buffer]) -> str:
    """xxh3-64 of the concatenation of ``parts``, as 16 hex digits.

    Examples
    --------
    >>> checksum([b"ab", b"c"]) == checksum([b"abc"])
    True
    """
    digest = xxhash.xxh3_64()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def checksum_of(data: Buffer) -> str:
    """`checksum` of one buffer (the same digest, in one call).

    Examples
    --------
    >>> checksum_of(b"abc") == checksum([b"ab", b"c"])
    True
    """
    return _xxh3_hexdigest(data)


def dumps(value: Any) -> bytes:
    """Pickle ``value`` in band (protocol 5); unpicklable values raise a clear StoreError.

    Examples
    --------
    >>> pickle.loads(dumps({"a": None}))
    {'a': None}
    """
    try:
        return pickle.dumps(value, protocol=5)
    except Exception as exc:
        raise _unpicklable(value, exc) from exc


def _unpicklable(value: Any, exc: Exception) -> UnstorableResultError:
    return unstorable(unpicklable_part(value), exc)


def unstorable(
    part: str, exc: Exception, *, fix: str = "or mark the node cache=False"
) -> UnstorableResultError:
    """The error saying that ``part`` (a path and a type) of a result cannot be pickled.

    Examples
    --------
    >>> str(unstorable("result[0]: _thread.lock", TypeError("cannot pickle")))  # doctest: +ELLIPSIS
    'cannot store result[0]: _thread.lock: it cannot be pickled (TypeError: cannot pickle); ...'
    """
    return UnstorableResultError(
        f"cannot store {part}: it cannot be pickled ({type(exc).__name__}: {exc}); "
        "return a picklable value "
        f"(keep paths or settings instead of open files, locks and connections) {fix}",
        part,
    )


def encode(value: Any, *, inline_limit: int) -> Encoded:
    """Choose a codec for ``value`` and encode it.

    Examples
    --------
    >>> encode(b"x" * 10, inline_limit=32).codec, encode(b"x" * 64, inline_limit=32).codec
    ('pickle', 'raw')
    """
    found = encode_small(value, inline_limit=inline_limit)
    if type(found) is bytes:
        return Encoded("pickle", (found,), len(found))
    return found  # type: ignore[return-value]


def encode_small(value: Any, *, inline_limit: int) -> bytes | Encoded:
    """`encode`, with a small value's bytes returned bare: the hot path of a save.

    Returns the bytes themselves when `encode` would give one ``pickle`` part
    smaller than ``inline_limit`` (what the blob store keeps inline), else the
    `Encoded` that `encode` gives. The bytes are the same either way;
    only the wrapping object and its calls are saved.

    Examples
    --------
    >>> encode_small({"y": 1}, inline_limit=64) == dumps({"y": 1})
    True
    >>> encode_small(b"x" * 64, inline_limit=32).codec
    'raw'
    """
    cls = type(value)
    if cls is bytes and len(value) >= inline_limit:
        return Encoded("raw", (value,), len(value))
    if cls.__name__ == "ndarray" and _is_plain_array(value) and value.nbytes >= inline_limit:
        return _encode_npy(value)
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = _pickle_dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        raise _unpicklable(value, exc) from exc
    if buffers:
        try:
            raws = [buffer.raw() for buffer in buffers]
        except BufferError:  # a non-contiguous buffer: fall back to in-band
            raws = None
        if raws is not None and len(data) + sum(raw.nbytes for raw in raws) >= inline_limit:
            return _encode_pickle5(data, raws)
        data = dumps(value)
    if len(data) < inline_limit:
        return data
    return Encoded("pickle", (data,), len(data))


def decode(codec: str, buffer: Buffer | Any) -> Any:
    """The value encoded in ``buffer`` by ``codec``.

    ``ValueError`` if the buffer does not hold what the codec expects.

    Examples
    --------
    >>> decode("pickle", dumps([1, None]))
    [1, None]
    """
    try:
        if codec == "pickle":
            return pickle.loads(buffer)
        if codec == "npy":
            return _decode_npy(memoryview(buffer))
        if codec == "pickle5":
            return _decode_pickle5(memoryview(buffer))
    except ModuleNotFoundError as exc:
        library = (exc.name or "").partition(".")[0]
        if library not in EXTRAS:
            raise
        raise ExtraNotInstalledError(
            f"the stored value holds {library} objects, and loading it needs {library}: "
            f"pip install 'incgraph[{EXTRAS[library]}]'"
        ) from exc
    if codec == "raw":
        return bytes(buffer)
    raise ValueError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}")


class Captured:
    """A value's bytes, taken when incgraph took the value: what is saved, what copies come from.

    ``encoding`` is what `encode_small` gives (the bare pickle of a small
    value, else an `Encoded`) with every part owned ``bytes``;
    ``maybe_file`` says the value was ``bytes`` or a numpy array (the blob stores
    look those up before writing them); ``refs`` are the blobs the value names
    (its type's ``__incgraph_refs__()``, kept for the store's reference rows).
    Make one with `capture`.

    Examples
    --------
    >>> value = [1, 2]
    >>> captured = capture(value, inline_limit=1024)
    >>> value.append(3)  # changes neither the bytes nor the copies
    >>> captured.value(), captured.value() is captured.value()
    ([1, 2], False)
    """

    __slots__ = ("encoding", "maybe_file", "refs")

    def __init__(
        self, encoding: bytes | Encoded, maybe_file: bool, refs: tuple[str, ...] = ()
    ) -> None:
        self.encoding = encoding
        self.maybe_file = maybe_file
        self.refs = refs

    def __incgraph_refs__(self) -> list[str]:
        """The blobs the value named when it was captured (its ``__incgraph_refs__()``)."""
        return list(self.refs)

    def __repr__(self) -> str:
        return f"<Captured {self.size} bytes>"

    @property
    def size(self) -> int:
        """The encoded size in bytes."""
        encoding = self.encoding
        return len(encoding) if type(encoding) is bytes else encoding.size  # type: ignore[union-attr]

    def value(self) -> Any:
        """A new copy of the value: writable, and shared with no one."""
        encoding = self.encoding
        if type(encoding) is bytes:
            return pickle.loads(encoding)
        assert isinstance(encoding, Encoded)
        if encoding.codec == "raw":
            return encoding.parts[0]  # bytes: immutable, nothing to copy
        return decode(encoding.codec, bytearray().join(encoding.parts))

    def encoded_for(self, inline_limit: int) -> bytes | Encoded:
        """The encoding as a blob store with ``inline_limit`` keeps it (bare bytes: inline)."""
        encoding = self.encoding
        if type(encoding) is bytes:
            if len(encoding) < inline_limit:
                return encoding
            return Encoded("pickle", (encoding,), len(encoding))
        assert isinstance(encoding, Encoded)
        if encoding.codec == "pickle" and encoding.size < inline_limit:
            return encoding.join()
        return encoding


def capture(value: Any, *, inline_limit: int) -> Captured:
    """Encode ``value`` now, into bytes no later change to ``value`` can reach.

    Large buffers that `encode` would write straight from the value's
    memory (an array's data, a frame's columns) are copied once here.

    Raises
    ------
    StoreError
        ``value`` cannot be pickled.

    Examples
    --------
    >>> capture({"a": 1}, inline_limit=1024).size == len(dumps({"a": 1}))
    True
    """
    found = encode_small(value, inline_limit=inline_limit)
    if type(found) is not bytes:
        assert isinstance(found, Encoded)
        parts = tuple(part if type(part) is bytes else bytes(part) for part in found.parts)
        found = Encoded(found.codec, parts, found.size)
    cls = type(value)
    names = getattr(cls, "__incgraph_refs__", None)
    refs = () if names is None else tuple(names(value))
    return Captured(found, cls is bytes or cls.__name__ == "ndarray", refs)


# -- npy ---------------------------------------------------------------------------


def _is_plain_array(value: Any) -> bool:
    cls = type(value)
    if cls.__name__ != "ndarray" or cls.__module__ != "numpy":
        return False
    return not value.dtype.hasobject and value.dtype.itemsize > 0


def _encode_npy(array: Any) -> Encoded:
    np = sys.modules["numpy"]
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    fields = np.lib.format.header_data_from_array_1_0(array)
    header = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(header, fields)
    except ValueError:  # header longer than version 1.0 allows
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, fields)
    try:
        data: Buffer = pickle.PickleBuffer(array).raw()
    except (BufferError, ValueError, TypeError):  # dtypes without buffer support (datetime64)
        data = array.tobytes(order="F" if fields["fortran_order"] else "C")
    head = header.getvalue()
    return Encoded("npy", (head, data), len(head) + memoryview(data).nbytes)


class _Reader:
    """The ``read`` that ``numpy.lib.format`` needs, over a memoryview, without copying it."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.pos = 0

    def read(self, size: int) -> bytes:
        chunk = self.view[self.pos : self.pos + size].tobytes()
        self.pos += len(chunk)
        return chunk


def _decode_npy(view: memoryview) -> Any:
    np = importlib.import_module("numpy")
    reader = _Reader(view)
    version = np.lib.format.read_magic(reader)
    if version == (1, 0):
        read_header = np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        read_header = np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f"unsupported .npy version {version}")
    shape, fortran_order, dtype = read_header(reader, max_header_size=1 << 24)
    array = np.ndarray(
        shape, dtype=dtype, buffer=view, offset=reader.pos, order="F" if fortran_order else "C"
    )
    return array if array.flags.writeable else array.copy()


# -- pickle5: protocol 5 with out-of-band buffers --------------------------------------


def _padding(size: int) -> bytes:
    return b"\x00" * (-size % _ALIGN)


def _encode_pickle5(data: bytes, raws: list[memoryview]) -> Encoded:
    """Layout: magic, pickle length, buffer count, buffer lengths; then each piece 64-aligned."""
    head = _PK5_MAGIC + _U64.pack(len(data)) + _U64.pack(len(raws))
    head += b"".join(_U64.pack(raw.nbytes) for raw in raws)
    parts: list[Buffer] = [head, _padding(len(head)), data, _padding(len(data))]
    for raw in raws:
        parts += [raw, _padding(raw.nbytes)]
    return Encoded("pickle5", tuple(parts), sum(memoryview(p).nbytes for p in parts))


def _decode_pickle5(view: memoryview) -> Any:
    if view[: len(_PK5_MAGIC)].tobytes() != _PK5_MAGIC:
        raise ValueError("not a pickle5 blob: bad magic bytes")
    pos = len(_PK5_MAGIC)
    (data_size,) = _U64.unpack_from(view, pos)
    (count,) = _U64.unpack_from(view, pos + 8)
    sizes = struct.unpack_from(f"<{count}Q", view, pos + 16)
    pos += 16 + 8 * count
    pos += -pos % _ALIGN
    data = view[pos : pos + data_size]
    pos += data_size + (-data_size % _ALIGN)
    buffers = []
    for size in sizes:
        buffers.append(view[pos : pos + size])
        pos += size + (-size % _ALIGN)
    if pos > len(view):
        raise ValueError("pickle5 blob is shorter than its header says")
    return pickle.loads(data, buffers=buffers)
