"""What a store is: a metadata index beside a blob store.

Design note
-----------
The index maps a *cache key* (hash of code version, init-kwargs version and the
inputs' data versions) to a `Record`: the *data version* of the result plus
its lineage and timings. The blob store maps a data version to the result's bytes.
Keeping them apart (as Hamilton does) means

* a rerun decides hits from the index alone, loading no value;
* equal results made by different keys are stored once;
* a crash between "blob written" and "index row committed" leaves at worst an
  orphan blob, never an index row that points at missing or partial bytes.

Write order is therefore always: blob (temporary name, then atomic rename),
then the index row. A reader that finds a row can trust that the blob was
complete when the row was committed; blobs also carry a checksum that is
verified on load, so a torn or tampered blob raises
`StoreCorruptError` and is never served.

Every implementation passes the one contract suite in ``tests/store/contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from incgraph.sentinels import MISSING, Missing

__all__ = ["BlobEntry", "BlobStore", "Index", "Record"]


@dataclass(frozen=True, slots=True)
class Record:
    """One cached result: what made it (lineage) and where its bytes are (data version).

    Attributes
    ----------
    key : cache key, the hash of (code version, init version, input data versions).
    data_version : content hash of the result; the blob store's key.
    node : label of the node that produced it, e.g. ``"2"`` or ``"GridFlow.Process[3]"``.
    processor : qualified name of the processor (or task function).
    code_version : fingerprint of the processor's code and declared version.
    init_version : data version of the node's init kwargs.
    inputs : input name -> data version, the exact inputs that made this result.
    created : Unix time the record was committed.
    duration : seconds spent computing the result.
    size : bytes the blob takes in the store (0 when unknown).
    """

    key: str
    data_version: str
    node: str
    processor: str
    code_version: str
    init_version: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0
    duration: float = 0.0
    size: int = 0


# Record's __init__, faster. A frozen dataclass's generated __init__ assigns each field
# with ``object.__setattr__(self, name, value)``: a wrapper call that builds an argument
# tuple and looks the name up for every field (about 16k CPU instructions for Record's
# ten). Instead, the new Record briefly becomes a _Draft, a class with the very same
# slots and no frozen ``__setattr__``, whose slots take plain attribute stores, and then
# becomes a Record again (``__class__`` assignment between two classes of one layout:
# about 5k instructions in all). The engine builds a Record per computed node and the
# store another per saved result. Record stays the frozen, slotted dataclass above (same
# fields, defaults, eq, repr, pickling and ``dataclasses.replace``); a subclass of it is
# built field by field as before. tests/store/test_record.py checks the two agree.
_RECORD_FIELDS = (
    "key",
    "data_version",
    "node",
    "processor",
    "code_version",
    "init_version",
    "inputs",
    "created",
    "duration",
    "size",
)
if tuple(f.name for f in fields(Record)) != _RECORD_FIELDS:  # pragma: no cover - a guard
    raise RuntimeError("Record's fields changed: update _RECORD_FIELDS and _record_init")


class _Draft:
    """A Record under construction: Record's slots without its frozen ``__setattr__``."""

    __slots__ = _RECORD_FIELDS


_set_class = object.__dict__["__class__"].__set__
_new = object.__new__
_object_setattr = object.__setattr__


def _record_init(
    self: Record,
    key: str,
    data_version: str,
    node: str,
    processor: str,
    code_version: str,
    init_version: str,
    inputs: Mapping[str, str] | Missing = MISSING,
    created: float = 0.0,
    duration: float = 0.0,
    size: int = 0,
) -> None:
    if inputs is MISSING:  # default_factory=dict
        inputs = {}
    if type(self) is not Record:  # a subclass may have more slots: field by field
        values = (key, data_version, node, processor, code_version, init_version)
        rest = (inputs, created, duration, size)
        for name, value in zip(_RECORD_FIELDS, (*values, *rest), strict=True):
            _object_setattr(self, name, value)
        return
    draft: Any = self
    _set_class(draft, _Draft)
    draft.key = key
    draft.data_version = data_version
    draft.node = node
    draft.processor = processor
    draft.code_version = code_version
    draft.init_version = init_version
    draft.inputs = inputs
    draft.created = created
    draft.duration = duration
    draft.size = size
    draft.__class__ = Record


_record_init.__qualname__ = "Record.__init__"
_record_init.__doc__ = Record.__init__.__doc__
Record.__init__ = _record_init  # type: ignore[method-assign]


def with_size(record: Record, size: int, created: float) -> Record:
    """``record`` with another ``size`` and ``created``: what a save commits, built directly.

    Always a plain `Record` (the store's rows hold no more).

    Examples
    --------
    >>> with_size(Record("k", "dv", "n", "p", "c", "i"), 3, 1.5).size
    3
    """
    draft: Any = _new(_Draft)
    draft.key = record.key
    draft.data_version = record.data_version
    draft.node = record.node
    draft.processor = record.processor
    draft.code_version = record.code_version
    draft.init_version = record.init_version
    draft.inputs = record.inputs
    draft.created = created
    draft.duration = record.duration
    draft.size = size
    draft.__class__ = Record
    return draft  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """What a blob store knows about one stored blob, without reading it.

    Attributes
    ----------
    data_version : the blob's key.
    size : bytes stored.
    created : Unix time its row was committed.
    inline : kept inside the database rather than as a file.
    path : the file holding the bytes, or None when inline (or in memory).
    """

    data_version: str
    size: int
    created: float
    inline: bool = True
    path: Path | None = None


@runtime_checkable
class Index(Protocol):
    """Cache key -> `Record`. Thread-safe and safe to share between processes."""

    def get(self, key: str) -> Record | Missing:
        """The record stored under ``key``, or ``MISSING``."""
        ...

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """The records found for ``keys`` (absent keys are left out)."""
        ...

    def data_version_of(self, key: str) -> str | Missing:
        """Just the data version stored under ``key``, or ``MISSING``: the cache-hit hot path."""
        ...

    def put(self, record: Record) -> None:
        """Insert or replace the record under ``record.key``."""
        ...

    def put_many(self, records: Iterable[Record]) -> None:
        """Insert many records in one transaction."""
        ...

    def latest_for_node(self, node: str) -> Record | Missing:
        """The most recently created record of ``node``, or ``MISSING``."""
        ...

    def latest_versions(self, nodes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Node label -> (key, data version) of its latest record, for the labels that have one.

        One bulk read that lets a rerun with nothing changed confirm its hits without a
        query per node.
        """
        ...

    def records(self) -> Iterator[Record]:
        """Every record, in creation order."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under ``keys`` (absent keys are ignored)."""
        ...

    def delete_unchanged(self, records: Iterable[Record]) -> None:
        """Remove these records, each only if it is still stored as read (same ``created``)."""
        ...

    def data_versions_of(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> data version of the stored ``keys``, in bulk."""
        ...

    def keys_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` stored keys starting with ``prefix``, in key order."""
        ...

    def keys_for_data_version(self, data_version: str) -> list[str]:
        """The keys whose result is ``data_version`` (the producers of a value)."""
        ...

    def raw_rows(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """(reference, row) of every row as stored, unchecked (for ``verify``)."""
        ...

    def delete_raw(self, refs: Iterable[Any]) -> None:
        """Delete rows by the references `raw_rows` gave."""
        ...

    def put_refs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (result data version, blob it references besides its own) pairs."""
        ...

    def refs(self) -> dict[str, set[str]]:
        """Result data version -> the blobs it references besides its own."""
        ...

    def referencing(self, ref: str) -> list[str]:
        """The keys of the results that reference the blob ``ref``."""
        ...

    def drop_unused_refs(self) -> None:
        """Forget the references of data versions no result has any more."""
        ...

    def close(self) -> None:
        """Release connections. The index may be reopened by using it again."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """Data version -> value. Writes are atomic; reads verify a checksum."""

    def contains(self, data_version: str) -> bool:
        """Whether a complete blob for ``data_version`` is stored."""
        ...

    def put(self, data_version: str, value: Any) -> int:
        """Store ``value`` under ``data_version`` (a no-op if present); return its size in bytes.

        ``value`` may be a `incgraph.store.codecs.Captured`: then its
        bytes are what is stored (the value as it was when it was captured), and
        ``get`` returns the value, not the wrapper.
        """
        ...

    def get(self, data_version: str) -> Any:
        """Load the value; ``KeyError`` if absent, ``StoreCorruptError`` if its checksum fails."""
        ...

    def delete(self, data_version: str) -> None:
        """Remove the blob (absent blobs are ignored)."""
        ...

    def data_versions(self) -> Iterator[str]:
        """Every stored data version."""
        ...

    def delete_many(self, data_versions: Iterable[str], *, unreferenced: bool = False) -> int:
        """Remove blobs; return how many there were.

        ``unreferenced``: only those no result names or references at that moment.
        """
        ...

    def entries(self) -> Iterator[BlobEntry]:
        """Size, creation time and place of every stored blob."""
        ...

    def check(self, data_version: str) -> str | None:
        """Why the blob must not be served (its bytes read in full), or None if sound."""
        ...

    def quarantine(self, data_version: str, folder: Path | None) -> Path | None:
        """Move the blob's bytes into ``folder`` and drop it; return where they went."""
        ...

    def orphan_files(self, older_than: float = 3600.0) -> list[Path]:
        """Files no blob row names, older than ``older_than`` seconds."""
        ...

    def stale_temp_files(self, older_than: float = 3600.0) -> list[Path]:
        """Temporary files of interrupted writes, older than ``older_than`` seconds."""
        ...

    def remove_files(self, paths: Iterable[Path]) -> list[Path]:
        """Delete those listed orphan or stale temporary files that still are; return them."""
        ...

    def close(self) -> None:
        """Release any open handles."""
        ...
