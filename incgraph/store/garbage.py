"""Garbage collection: keep what recent runs used and what is pinned, drop the rest, say what went.

Design note
-----------
Policy. A result is **kept** when any of these holds:

1. its key is pinned (`pin`, or ``pins=`` for one collection);
2. one of the last ``keep_runs`` runs of the run log hit or wrote it;
3. it was created after the start of the oldest of those runs (a run that was
   killed, or a plain ``Store.save``, wrote it inside the window but logged
   nothing: a killed batch must resume without recomputing it);
4. it was created after the start of a run that is still running (an
   *announced* batch whose process is alive, `incgraph.store.runlog`);
5. it is younger than ``grace`` seconds (a run in progress has not logged it yet).

With ``keep_runs=None`` rule 2 is off and every result is kept (only the byte
budget and the clean-up below apply). With fewer than ``keep_runs`` logged
runs, the window reaches back to the beginning: everything is kept.

Budget. With ``max_bytes``, kept results that are not pinned and not younger
than ``grace`` are then dropped, least recently used first (the later of its
creation and the start of the last run that used it), until the blobs still
referenced fit. Blobs are shared between keys with equal results, so a blob's
bytes count once and are freed only with its last key. A small result kept in
its own index row (schema version 3) counts that row's bytes, freed with the
row: every row holds its own copy.

References. A kept result keeps its own blob and the blobs its value
references (the ``refs`` table, schema version 4: a Flow manifest's
artifacts, a ForEach join's), so a layer result still stored always finds
its artifacts.

Clean-up, always: blobs no remaining result references (the blobs of dropped
results, and orphans older than ``grace`` left by a crash between a blob's
commit and its index row's), blob files no row names and temporary files of
interrupted writes whose writer is gone (both older than ``grace``; only names
incgraph makes, `incgraph.store.names`), expired leases, and run-log
rows beyond the last ``run_log_limit`` (a setting, or ``keep_runs``) runs (acceptances,
`incgraph.store.acceptance`, stay: they are the record of a decision).

Order. Index rows go first, then blob rows, then files: at no point does an
index row name a blob that is gone. Bytes held in index rows go with their
row (SQLite reuses the freed pages; the file shrinks only with ``VACUUM``, as
for inline blobs). Nothing is evicted silently: `GcReport` lists every result
removed, and ``dry_run=True`` reports without deleting.

Beside writers. What the collection decided from its reads is checked again
as it deletes, under the write lock: a result's row goes only if it is
unchanged (a key saved again meanwhile stays); a blob row only if no result
names or references it then, its file unlinked in that same transaction;
a blob file only if no row names it then (writers rename files into place
inside the transaction that commits their row); a temporary file only if
the process named in it is gone. So ``grace=0`` beside running writers
breaks no save and deletes nothing they committed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from incgraph.errors import ReadOnlyStoreError
from incgraph.store.protocols import Record, StoreView
from incgraph.store.runlog import RunInfo, is_abandoned

if TYPE_CHECKING:
    from incgraph.settings import Settings

__all__ = ["GcReport", "collect_garbage"]


@dataclass
class GcReport:
    """What a collection removed (or, with ``dry_run``, would remove).

    Attributes
    ----------
    removed : the results dropped, oldest first (each with its node, processor and size).
    blobs_removed : data versions whose blobs were deleted.
    bytes_freed : bytes of those blobs, of the results held in removed index rows, and of
        the files removed.
    orphan_blobs : data versions of blobs no result referenced (part of ``blobs_removed``).
    files_removed : blob files no row named, and stale temporary files.
    kept : results kept; ``kept_bytes`` the bytes of the blobs they reference and of the
        results their rows hold.
    pinned : pinned keys (all kept).
    over_budget : ``max_bytes`` could not be met without dropping pinned or recent results.
    runs_trimmed, leases_expired : run-log rows and expired leases deleted.
    dry_run : nothing was deleted.
    """

    removed: list[Record] = field(default_factory=list)
    blobs_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    orphan_blobs: list[str] = field(default_factory=list)
    files_removed: list[Path] = field(default_factory=list)
    kept: int = 0
    kept_bytes: int = 0
    pinned: list[str] = field(default_factory=list)
    over_budget: bool = False
    runs_trimmed: int = 0
    leases_expired: int = 0
    dry_run: bool = False


def collect_garbage(
    store: StoreView,
    *,
    keep_runs: int | None = None,
    max_bytes: int | None = None,
    pins: Iterable[str] = (),
    grace: float | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Drop results recent runs did not use (see the module note); return what went.

    Parameters
    ----------
    store : Store
    keep_runs : int, optional
        Keep the results used by the last ``keep_runs`` runs; None keeps every result.
    max_bytes : int, optional
        Then drop least recently used results until the stored blobs fit.
    pins : iterable of str
        Extra keys (or unique key prefixes) to keep this time.
    grace : float, optional
        Seconds: younger results, orphans and temporary files are left alone.
        Default: the store's ``gc_grace_seconds`` setting (600).
    dry_run : bool
        Report only; delete nothing.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> old = store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i", created=1.0), [1])
    >>> with store.run_log() as log:
    ...     log.hit_many([])
    >>> report = store.gc(keep_runs=1, grace=0)
    >>> [rec.key for rec in report.removed] == ["a" * 32], report.blobs_removed == ["b" * 32]
    (True, True)
    """
    if keep_runs is not None and keep_runs < 0:
        raise ValueError(f"keep_runs must be 0 or more, got {keep_runs}")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
    if store.read_only and not dry_run:
        raise ReadOnlyStoreError(
            f"cannot collect garbage in {store!r}: it was opened read-only; "
            "open it writable, or pass dry_run=True to see what would go"
        )
    if not dry_run:
        store.check_marked("collect garbage")
    now, settings = time.time(), store.settings
    if grace is None:
        grace = settings.gc_grace_seconds
    report = GcReport(dry_run=dry_run)
    records = list(store.index.records())
    pinned = set(store.ledger.pins()) | {store.resolve(key) for key in pins}
    report.pinned = sorted(pinned)
    runs = store.runs()
    counted = [run for run in runs if run.kind != "accept"]  # a decision, not a use
    recent = {run.id for run in _recent_runs(counted, keep_runs)}
    last_used, used = _run_usage(store, runs, records, recent)
    keep = _kept_by_runs(records, counted, keep_runs, pinned, used, now - grace, now, settings)
    entries = list(store.blobs.entries())
    sizes = {entry.data_version: entry.size for entry in entries}
    held = _row_bytes(store)
    links = store.index.refs()
    dropped = [rec for rec in records if rec.key not in keep]
    if max_bytes is not None:
        young = now - grace
        dropped += _over_budget(
            records, keep, pinned, last_used, (sizes, held, links), max_bytes, young, report
        )
    dropped_keys = {rec.key for rec in dropped}
    report.removed = sorted(dropped, key=lambda rec: (rec.created, rec.key))
    referenced = _referenced(links, [rec for rec in records if rec.key not in dropped_keys])
    report.kept = len(records) - len(dropped_keys)
    report.kept_bytes = sum(sizes.get(dv, 0) for dv in referenced) + sum(
        size for key, size in held.items() if key not in dropped_keys
    )
    freed = {rec.data_version for rec in dropped} - referenced
    report.orphan_blobs = sorted(
        entry.data_version
        for entry in entries
        if entry.data_version not in referenced
        and entry.data_version not in freed
        and entry.created < now - grace
    )
    report.blobs_removed = sorted(freed & sizes.keys()) + report.orphan_blobs
    report.bytes_freed = sum(sizes.get(dv, 0) for dv in report.blobs_removed)
    report.bytes_freed += sum(held.get(key, 0) for key in dropped_keys)
    blobs = store.blobs
    files = list(blobs.orphan_files(grace)) + list(blobs.stale_temp_files(grace))
    report.files_removed = sorted(files)
    report.bytes_freed += sum(_size(path) for path in report.files_removed)
    trim = _runs_to_trim(runs, keep_runs, now, settings)
    report.runs_trimmed = len(trim)
    if not dry_run:
        _delete(store, report, trim, now)
    return report


def _run_usage(
    store: StoreView, runs: list[RunInfo], records: list[Record], recent: set[int]
) -> tuple[dict[str, float], set[str]]:
    """Key -> last use (the later of its creation and the start of the last run that used
    it), and the keys the ``recent`` runs used. Reads one run's keys at a time."""
    last_used = {rec.key: rec.created for rec in records}
    used: set[str] = set()
    for run in sorted(runs, key=lambda run: (run.started, run.id)):
        for hits, written in store.ledger.run_keys([run.id]).values():
            for keys in (hits, written):
                if run.id in recent:
                    used.update(keys)
                for key in keys:
                    if last_used.get(key, run.started) < run.started:
                        last_used[key] = run.started
    return last_used, used


def _referenced(links: dict[str, set[str]], kept: list[Record]) -> set[str]:
    """The blobs ``kept`` results need: their own, and those their values reference
    (``links``: data version -> the blobs it references besides its own)."""
    own = {rec.data_version for rec in kept}
    return own | {ref for dv in own for ref in links.get(dv, ())}


def _row_bytes(store: StoreView) -> dict[str, int]:
    """Key -> bytes of the result its index row holds (indexes that hold none: empty)."""
    return store.index.row_bytes()


def _recent_runs(runs: list[RunInfo], keep_runs: int | None) -> list[RunInfo]:
    if not keep_runs:
        return []
    return sorted(runs, key=lambda run: (run.started, run.id))[-keep_runs:]


def _kept_by_runs(
    records: list[Record],
    runs: list[RunInfo],
    keep_runs: int | None,
    pinned: set[str],
    used: set[str],
    young: float,
    now: float,
    settings: Settings,
) -> set[str]:
    """The keys rules 1-5 of the module note keep."""
    if keep_runs is None:
        return {rec.key for rec in records}
    recent = _recent_runs(runs, keep_runs)
    window = min((run.started for run in recent), default=float("inf"))
    if len(runs) < keep_runs:
        window = float("-inf")
    for run in runs:
        if run.status == "running" and _alive(run, now, settings):
            window = min(window, run.started)
    return {
        rec.key
        for rec in records
        if rec.key in pinned or rec.key in used or rec.created >= window or rec.created >= young
    }


def _alive(run: RunInfo, now: float, settings: Settings) -> bool:
    """Whether an announced run's process may still be running."""
    return not is_abandoned(run, now, settings.stale_run_seconds)


def _over_budget(
    records: list[Record],
    keep: set[str],
    pinned: set[str],
    last_used: dict[str, float],
    sizes: tuple[dict[str, int], dict[str, int], dict[str, set[str]]],
    max_bytes: int,
    young: float,
    report: GcReport,
) -> list[Record]:
    """Kept results to drop, least recently used first, until what they hold fits.

    ``sizes`` is (data version -> blob bytes, key -> bytes held in its row,
    data version -> the blobs it references). A result holds its own blob and
    those it references (a flow manifest's artifacts); a blob counts once and
    is freed with the last result holding it.
    """
    blob_sizes, held, links = sizes

    def blobs_of(rec: Record) -> set[str]:
        return {rec.data_version, *links.get(rec.data_version, ())}

    kept = [rec for rec in records if rec.key in keep]
    refs = Counter(dv for rec in kept for dv in blobs_of(rec))
    total = sum(blob_sizes.get(dv, 0) for dv in refs) + sum(held.get(rec.key, 0) for rec in kept)
    candidates = sorted(
        (rec for rec in kept if rec.key not in pinned and rec.created < young),
        key=lambda rec: (last_used[rec.key], rec.created, rec.key),
    )
    dropped = []
    for rec in candidates:
        if total <= max_bytes:
            break
        dropped.append(rec)
        keep.discard(rec.key)
        total -= held.get(rec.key, 0)
        for dv in blobs_of(rec):
            refs[dv] -= 1
            if refs[dv] == 0:
                total -= blob_sizes.get(dv, 0)
    report.over_budget = total > max_bytes
    return dropped


def _runs_to_trim(
    runs: list[RunInfo], keep_runs: int | None, now: float, settings: Settings
) -> list[int]:
    """Run ids beyond the newest ``max(keep_runs, run_log_limit)`` (live running runs stay)."""
    limit = max(keep_runs or 0, settings.run_log_limit)
    ordered = sorted(runs, key=lambda run: (run.started, run.id))
    old = ordered[:-limit] if len(ordered) > limit else []
    return [
        run.id
        for run in old
        if not (run.status == "running" and _alive(run, now, settings)) and run.kind != "accept"
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _delete(store: StoreView, report: GcReport, trim: list[int], now: float) -> None:
    """Index rows, then blobs, then files; then the ledger's leftovers."""
    store.index.delete_unchanged(report.removed)  # a key saved again meanwhile stays
    store.blobs.delete_many(report.blobs_removed, unreferenced=True)
    store.index.drop_unused_refs()
    report.files_removed = store.blobs.remove_files(report.files_removed)
    store.ledger.delete_runs(trim)
    report.leases_expired = store.ledger.drop_expired(now)
