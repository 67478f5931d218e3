"""``verify``: read every blob and index row, and put aside what is bad so it is never served.

Design note
-----------
Loads already check each blob as it is read (size, checksum, HMAC tag), and
a bad blob is dropped and recomputed. ``verify`` does the same for the whole
store at once, so damage is found before a run meets it, and reported:

1. the SQLite file itself (``PRAGMA quick_check``); a damaged file is
   reported with the fix (move it aside) and nothing else is attempted;
2. every blob: its row, its file (present, of the recorded size), its
   checksum, and its HMAC tag when signing is on. Nothing is unpickled:
   verifying runs no code from the store;
3. every index row: well-formed (hash-string key and data version, text
   node and processor, a JSON object of input name -> data version, numbers
   where numbers belong) and naming a blob that exists, unless it holds its
   result's bytes itself (schema version 3);
4. the bytes a row holds: checked against the row's checksum, as an inline
   blob's are. When signing is on they are never served (rows are never
   signed), so such a row needs a signed blob like any other row.

A bad blob is *quarantined*: the index rows that point at it (but hold no
sound bytes of their own) are deleted first (so no run can hit it any more),
then its bytes are moved to ``<store>/quarantine/`` (inline bytes are written
there as a file) and its row is dropped. A bad index row is appended to
``quarantine/index-rows.jsonl`` and deleted; so is a row whose own bytes are
bad (written there in hex, with their checksum); other rows of the same data
version carry their own copies and are checked on their own. Either way the
result is simply recomputed by the next run that needs it. With
``quarantine=False`` (or on a read-only store) problems are reported and
nothing is touched.

5. every reference a result makes to another blob (a Flow manifest's
   artifacts, schema version 4): the blob must exist, or the result is
   reported and dropped like a row whose blob is missing.

**A store in use.** Writers commit while ``verify`` reads. So it judges in
two steps: first everything from ONE read transaction (a consistent
snapshot: a row committed after it began is not seen, so it cannot be
judged "blob missing" because its blob was read earlier), without taking
the write lock; then, only if that found problems and quarantining is on,
the suspects alone are judged again while holding the write lock (no writer
can commit meanwhile), and only what is still bad is quarantined, in that
same transaction. A healthy store is never locked against writers, and a
result committed during the check is never touched.

Orphans (blob files or rows no result uses) and temporary files of
interrupted writes are counted but are not problems: ``gc`` reclaims them.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from incgraph.store.codecs import checksum_of
from incgraph.store.failure import store_error
from incgraph.store.names import make_real_folder
from incgraph.store.protocols import StoreView

__all__ = ["Problem", "VerifyReport", "verify_store"]

_HASH = re.compile(r"[0-9A-Za-z_\-]{2,128}")
_ROWS_FILE = "index-rows.jsonl"
_NOT_STORED = "it is not stored"


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong.

    Attributes
    ----------
    kind : ``"file"`` (the SQLite file), ``"blob"`` or ``"index"`` (an index row).
    name : the data version of a blob, the key of an index row, or the file's path.
    reason : what is wrong, in words.
    keys : the index rows removed because of it.
    moved_to : where the bad bytes or row went (None if not quarantined).
    """

    kind: Literal["file", "blob", "index"]
    name: str
    reason: str
    keys: tuple[str, ...] = ()
    moved_to: str | None = None


@dataclass
class VerifyReport:
    """What ``verify`` checked and found.

    ``ok`` is true when no problem was found. ``quarantined`` says whether the
    problems were acted on (moved aside) or only reported.
    """

    blobs: int = 0
    results: int = 0
    problems: list[Problem] = field(default_factory=list)
    quarantined: bool = False
    orphan_blobs: int = 0
    orphan_files: int = 0
    temp_files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def verify_store(store: StoreView, *, quarantine: bool = True) -> VerifyReport:
    """Check every blob and index row of ``store``; quarantine what is bad (see module note).

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> _ = store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i"), [1])
    >>> report = store.verify()
    >>> report.ok, report.blobs, report.results
    (True, 1, 1)
    """
    if quarantine:
        store.check_marked("quarantine what verify finds")
    started = time.perf_counter()
    report = VerifyReport(quarantined=quarantine)
    problem = _file_problem(store)
    if problem is not None:
        report.problems.append(problem)
        report.seconds = time.perf_counter() - started
        return report
    with store.snapshot():
        _judge(store, report, quarantine=False)
    if quarantine and report.problems:
        suspects: _Suspects = {(str(p.kind), p.name) for p in report.problems}
        again = VerifyReport(quarantined=True)
        store.locked(lambda: _judge(store, again, quarantine=True, only=suspects))
        report.problems = again.problems
    report.orphan_files = len(store.blobs.orphan_files(0.0))
    report.temp_files = len(store.blobs.stale_temp_files(0.0))
    report.seconds = time.perf_counter() - started
    return report


_Suspects = set[tuple[str, str]]


def _judge(
    store: StoreView, report: VerifyReport, *, quarantine: bool, only: _Suspects | None = None
) -> None:
    """Check rows' bytes, blobs, then rows (and their references); act when ``quarantine``.

    ``only`` limits the checks to those (kind, name) pairs: the suspects a first,
    read-only pass found, judged again under the write lock.
    """
    held = _check_row_data(store, report, quarantine, only)
    bad_blobs = _check_blobs(store, report, quarantine, held, only)
    _check_rows(store, report, quarantine, bad_blobs, held, only)


def _file_problem(store: StoreView) -> Problem | None:
    """A problem if the index's own storage fails its consistency check."""
    found = store.index.integrity_problem()
    return None if found is None else Problem("file", *found)


def _check_blobs(
    store: StoreView, report: VerifyReport, quarantine: bool, held: _Held, only: _Suspects | None
) -> set[str]:
    """Check every blob; quarantine the bad ones; return the bad data versions.

    The rows dropped with a bad blob are those that do not hold sound bytes of
    their own (``held``): a row that does stays, and loads from itself.
    """
    bad: set[str] = set()
    referenced = _referenced(store)
    for entry in list(store.blobs.entries()):
        report.blobs += 1
        dv = entry.data_version
        if dv not in referenced:
            report.orphan_blobs += 1
        if only is not None and ("blob", dv) not in only:
            continue
        reason = store.blobs.check(dv)
        if reason is None or reason == _NOT_STORED:  # gone since it was listed: not ours
            continue
        bad.add(dv)
        keys = tuple(key for key in _keys_for(store, dv) if key not in held.keys)
        moved = None
        if quarantine:
            store.index.delete(keys)
            folder = store.quarantine_folder
            path = store.blobs.quarantine(dv, folder)
            moved = None if path is None else str(path)
        report.problems.append(Problem("blob", dv, reason, keys, moved))
    return bad


def _referenced(store: StoreView) -> set[str]:
    """The data versions results name, and the blobs those results reference."""
    named = {row[1] for _, row in store.index.raw_rows() if isinstance(row[1], str)}
    refs = store.index.refs()
    return named | {ref for dv in named for ref in refs.get(dv, ())}


def _keys_for(store: StoreView, data_version: str) -> list[str]:
    return list(store.index.keys_for_data_version(data_version))


@dataclass
class _Held:
    """What `_check_row_data` found in the rows that hold their result's bytes."""

    sound: set[Any] = field(default_factory=set)  # row references: sound bytes, need no blob
    keys: set[str] = field(default_factory=set)  # the keys of those rows
    bad: set[Any] = field(default_factory=set)  # row references: reported (and quarantined)
    unsigned: set[Any] = field(default_factory=set)  # sound bytes a signed store never serves


def _check_row_data(
    store: StoreView, report: VerifyReport, quarantine: bool, only: _Suspects | None
) -> _Held:
    """Check the bytes rows hold; quarantine the rows whose bytes are bad.

    In a signed store, sound bytes are unsigned and never served: such a row
    needs a (signed) blob like any other, which `_check_rows` checks.
    """
    held = _Held()
    signed = store.blobs.signed
    doomed: list[tuple[Any, tuple[Any, ...], str]] = []
    for ref, key, dv, digest, data in list(store.index.row_data()):
        reason = _row_data_problem(digest, data)
        if only is not None and ("index", _name(key)) not in only:
            reason = None
        if reason is not None:
            doomed.append((ref, (key, dv, digest, data), reason))
        elif signed:
            held.unsigned.add(ref)
        else:
            held.sound.add(ref)
            held.keys.add(key)
    moved = _quarantine_rows(store, doomed) if quarantine and doomed else None
    if quarantine:  # gone before _check_rows counts the rows
        report.results += len(doomed)
    for _, row, reason in doomed:
        name = row[0] if isinstance(row[0], str) else repr(row[0])
        report.problems.append(Problem("index", name, reason, (name,), moved))
    held.bad = {ref for ref, _, _ in doomed}
    return held


def _row_data_problem(digest: Any, data: Any) -> str | None:
    """Why the bytes a row holds must not be served, or None."""
    if not isinstance(data, bytes):
        return f"the value it holds is {type(data).__name__}, not bytes"
    if not isinstance(digest, str) or checksum_of(data) != digest:
        return "the bytes it holds do not match their checksum"
    return None


def _check_rows(
    store: StoreView,
    report: VerifyReport,
    quarantine: bool,
    bad_blobs: set[str],
    held: _Held,
    only: _Suspects | None,
) -> None:
    """Check every index row; quarantine malformed ones and those whose blob is gone.

    A row holding sound bytes of its own needs no blob; one whose bytes were
    bad was reported (and, when quarantining, removed) already.
    """
    stored = {entry.data_version for entry in store.blobs.entries()}
    refs = store.index.refs()
    doomed: list[tuple[Any, tuple[Any, ...], str]] = []
    for ref, row in _rows(store):
        report.results += 1
        if ref in held.bad or (only is not None and ("index", _name(row[0])) not in only):
            continue
        reason = _row_problem(row)
        if reason is None and row[1] not in stored and ref not in held.sound:
            if row[1] in bad_blobs:
                continue  # reported with its blob (and already removed when quarantining)
            reason = f"its blob {row[1]} is missing"
            if ref in held.unsigned:
                reason += " and the bytes its row holds have no HMAC signature (signing is on)"
        if reason is None:
            reason = _missing_ref(refs.get(row[1], ()), stored, bad_blobs)
        if reason is not None:
            doomed.append((ref, row, reason))
    moved = _quarantine_rows(store, doomed) if quarantine and doomed else None
    for _, row, reason in doomed:
        name = _name(row[0])
        report.problems.append(Problem("index", name, reason, (name,), moved))


def _name(key: Any) -> str:
    """How a row's key is named in a report (a damaged key by its repr)."""
    return key if isinstance(key, str) else repr(key)


def _missing_ref(refs: Iterable[str], stored: set[str], bad: set[str]) -> str | None:
    """Why a result whose value references ``refs`` cannot be served, or None."""
    for ref in sorted(refs):
        if ref not in stored or ref in bad:
            return f"it references blob {ref}, which is missing or bad"
    return None


def _rows(store: StoreView) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    yield from store.index.raw_rows()


def _row_problem(row: tuple[Any, ...]) -> str | None:
    """Why an index row is malformed, or None."""
    key, dv, node, processor, code, init, inputs, created, duration, size = row
    for name, value in (("key", key), ("data version", dv)):
        if not isinstance(value, str) or not _HASH.fullmatch(value):
            return f"its {name} {value!r} is not a hash string"
    for name, value in (("node", node), ("processor", processor)):
        if not isinstance(value, str):
            return f"its {name} is {type(value).__name__}, not text"
    for name, value in (("code version", code), ("init version", init)):
        if not isinstance(value, str):
            return f"its {name} is {type(value).__name__}, not text"
    try:
        decoded = json.loads(inputs) if isinstance(inputs, str) else None
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in decoded.items()
    ):
        return "its inputs are not a JSON object of input name -> data version"
    for name, value in (("created", created), ("duration", duration), ("size", size)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"its {name} is {type(value).__name__}, not a number"
        if math.isnan(value) or value < 0:
            return f"its {name} is {value!r}, not a non-negative number"
    return None


def _quarantine_rows(
    store: StoreView, doomed: list[tuple[Any, tuple[Any, ...], str]]
) -> str | None:
    """Append the rows to ``quarantine/index-rows.jsonl``, then delete them from the index."""
    folder = store.quarantine_folder
    target = None
    if folder is not None:
        target = folder / _ROWS_FILE
        lines = "".join(
            json.dumps({"reason": reason, "row": [_jsonable(v) for v in row], "at": time.time()})
            + "\n"
            for _, row, reason in doomed
        )
        _append_private(target, lines)
    store.index.delete_raw([ref for ref, _, _ in doomed])
    return None if target is None else str(target)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _append_private(path: Path, text: str) -> None:
    try:
        make_real_folder(path.parent)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise store_error(exc, path) from exc
