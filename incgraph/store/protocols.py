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

Every implementation has every method of its protocol: no caller asks an
implementation what it supports (``getattr``/``hasattr``/``isinstance``). Where a
backend lacks a feature, its method says so with an empty answer (an index that
keeps no result bytes in its rows returns ``MISSING`` from `Index.row_value` and
nothing from `Index.row_data`; an index with no file has no `Index.integrity_problem`).

Every implementation passes the contract suites in ``tests/store/contract.py``
(docs/store.md, "Writing a store backend").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from incgraph.sentinels import MISSING, Missing
from incgraph.settings import Settings
from incgraph.store.ledger import Ledger
from incgraph.store.runlog import RunInfo

__all__ = [
    "BlobEntry",
    "BlobStore",
    "Index",
    "Record",
    "RowsWithoutData",
    "StoreView",
    "chunks",
    "refs_of",
    "save_apart",
]

T = TypeVar("T")


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

    def put_sharing_data(self, records: Iterable[Record]) -> None:
        """Insert records that name already stored results (a second key of a result).

        An index that keeps a small result's bytes in its row copies them into each
        new row, so the new row stays loadable when the first one is dropped; any
        other index inserts the records as `put_many` does.
        """
        ...

    def save_with(
        self, blobs: BlobStore, items: list[tuple[Record, Any]], now: float
    ) -> list[Record]:
        """Store results: blobs through ``blobs`` first, then the rows; return the rows committed.

        Each committed record carries its stored ``size``, and ``created`` is ``now``
        unless the record already had a time. The references of the values
        (`refs_of`) are recorded too. An index that shares one transaction with
        ``blobs`` (the SQLite index with the file blob store in its database)
        commits blob rows and result rows at once; any other calls `save_apart`.
        """
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

    def latest_entries(self, nodes: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Node label -> (key, data version, duration) of its latest record, in bulk.

        The duration is how long that result took (NaN when the index cannot say):
        the engine skips the lease of a node known to be cheap.
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

    # -- results kept in their rows (an index that keeps none answers empty) ---------------

    def row_value(self, data_version: str, *, signed: bool = False) -> Any:
        """The value a row holds for ``data_version``, or ``MISSING`` if no row holds one.

        ``signed``: the store signs its blobs, so bytes held in a row (never signed)
        are refused with `StoreCorruptError`, as are bytes failing their checksum.
        """
        ...

    def row_data(self, *, page: int = 1000) -> Iterator[tuple[Any, str, Any, Any, Any]]:
        """(reference, key, data version, checksum, bytes) of each row holding its bytes."""
        ...

    def row_bytes(self) -> dict[str, int]:
        """Key -> bytes of the result its row holds, for every row holding one."""
        ...

    def holds_data(self, key: str) -> bool:
        """Whether the row of ``key`` holds its result's bytes (False when there is no row)."""
        ...

    # -- transactions, files and the ledger ------------------------------------------------

    def snapshot(self) -> AbstractContextManager[None]:
        """A block inside which this thread's reads all see one state of the index."""
        ...

    def locked(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` holding the index's write lock; its writes join one transaction."""
        ...

    def integrity_problem(self) -> tuple[str, str] | None:
        """(where, what) when the index's own storage fails its consistency check, else None."""
        ...

    def disk_bytes(self) -> int:
        """Bytes the index's own files take (0 for an index not kept in files)."""
        ...

    def make_ledger(self) -> Ledger:
        """A ledger that decides claims atomically against this index (the default one)."""
        ...

    def close(self) -> None:
        """Release connections. The index may be reopened by using it again."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """Data version -> value. Writes are atomic; reads verify a checksum."""

    @property
    def signed(self) -> bool:
        """Whether blobs carry an HMAC signature (bytes without one are never served)."""
        ...

    @property
    def inline_limit(self) -> int:
        """Values whose encoding is smaller than this are pickled whole (`Store.capture`)."""
        ...

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

    def put_many(self, items: Iterable[tuple[str, Any]]) -> list[int]:
        """Store many (data version, value) pairs as `put` does; return their sizes, in order."""
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

    def path_of(self, data_version: str) -> Path | None:
        """The file holding the blob's bytes, or None (not stored, inline, or not a file)."""
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


class StoreView(Protocol):
    """What maintenance (gc, verify, stats, clear, the byte budget) sees of a store.

    Its three parts and the rules that span them. `incgraph.store.Store` is one;
    the maintenance modules are typed against this protocol, never against the
    store class, so the store depends on maintenance and not the other way round.
    """

    @property
    def index(self) -> Index:
        """Cache key -> record."""
        ...

    @property
    def blobs(self) -> BlobStore:
        """Data version -> value."""
        ...

    @property
    def ledger(self) -> Ledger:
        """Run log, pins and leases."""
        ...

    @property
    def path(self) -> Path | None:
        """The store's folder, None for a store in memory."""
        ...

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        ...

    @property
    def max_bytes(self) -> int | None:
        """The byte budget, None for none."""
        ...

    @property
    def settings(self) -> Settings:
        """The tuning maintenance follows (grace period, run-log limit, stale-run age)."""
        ...

    @property
    def quarantine_folder(self) -> Path | None:
        """Where ``verify`` moves bad blobs (None for a store in memory)."""
        ...

    def resolve(self, prefix: str) -> str:
        """The one stored cache key that starts with ``prefix``."""
        ...

    def runs(self) -> list[RunInfo]:
        """Every logged run, oldest first (dead runners' runs ``"abandoned"``)."""
        ...

    def pins(self) -> list[str]:
        """The pinned keys, oldest pin first."""
        ...

    def check_marked(self, action: str) -> None:
        """Refuse ``action`` in a folder not marked as a store."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A block inside which this thread's reads see one state of the store."""
        ...

    def locked(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` holding the store's write lock."""
        ...


def refs_of(items: Iterable[tuple[Record, Any]]) -> list[tuple[str, str]]:
    """(result data version, referenced blob) pairs of the values that name other blobs.

    A value names them through its type's ``__incgraph_refs__()`` (data versions).

    Examples
    --------
    >>> class Pointer:
    ...     def __incgraph_refs__(self):
    ...         return ["cd" * 16]
    >>> pointer = (Record("k", "ab" * 16, "n", "p", "c", "i"), Pointer())
    >>> refs_of([pointer]) == [("ab" * 16, "cd" * 16)]
    True
    """
    pairs = []
    for record, value in items:
        names = getattr(type(value), "__incgraph_refs__", None)  # a user type's hook
        if names is not None:
            pairs += [(record.data_version, ref) for ref in names(value)]
    return pairs


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (one statement each).

    Examples
    --------
    >>> list(chunks(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def save_apart(
    index: Index,
    blobs: BlobStore,
    items: list[tuple[Record, Any]],
    now: float,
    *,
    commit: Callable[[list[Record]], None] | None = None,
) -> list[Record]:
    """`Index.save_with` for an index and a blob store that share no transaction.

    References first, then every blob, then the rows in one `Index.put_many` (or
    ``commit``, an index's own way to commit rows whose blobs it checks): a crash
    in between leaves orphan blobs (and references of no result), never a row
    naming missing bytes.

    Examples
    --------
    >>> from incgraph.store.memory import MemoryBlobStore, MemoryIndex
    >>> index, blobs = MemoryIndex(), MemoryBlobStore()
    >>> [saved] = save_apart(index, blobs, [(Record("k", "ab" * 16, "n", "p", "c", "i"), 7)], 5.0)
    >>> saved.created, blobs.get("ab" * 16), index.get("k") == saved
    (5.0, 7, True)
    """
    index.put_refs(refs_of(items))
    sizes = blobs.put_many([(record.data_version, value) for record, value in items])
    saved = [
        with_size(record, size, record.created or now)
        for (record, _), size in zip(items, sizes, strict=True)
    ]
    (index.put_many if commit is None else commit)(saved)
    return saved


class RowsWithoutData:
    """The `Index` members about result bytes in rows, for an index whose rows hold none.

    An index that keeps every result in the blob store (memory, PostgreSQL)
    inherits these answers instead of writing them out again.

    Examples
    --------
    >>> RowsWithoutData().row_bytes(), RowsWithoutData().holds_data("k")
    ({}, False)
    """

    def row_value(self, data_version: str, *, signed: bool = False) -> Any:
        """``MISSING``: rows of this index hold no result bytes."""
        return MISSING

    def row_data(self, *, page: int = 1000) -> Iterator[tuple[Any, str, Any, Any, Any]]:
        """Nothing: rows of this index hold no result bytes."""
        return iter(())

    def row_bytes(self) -> dict[str, int]:
        """Empty: rows of this index hold no result bytes."""
        return {}

    def holds_data(self, key: str) -> bool:
        """False: rows of this index hold no result bytes."""
        return False
