"""What is in a store and how it is used: listings, hit counts, statistics, and clearing it.

Design note
-----------
Everything here is read from the index, the blob table and the run log; no
value is loaded. A result's *hit count* is the number of logged runs that
were served it from the cache (each run counts once, however many items of
a batch hit it); its *last use* is the start of the last logged run that hit
or wrote it. Both only know what the run log remembers: gc trims the log to
the most recent ``run_log_limit`` runs (a setting), and a
read-only store logs nothing.

The *hit rate* is hits / (hits + computed) summed over logged runs.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

from incgraph.errors import ReadOnlyStoreError
from incgraph.store.protocols import Record, StoreView

__all__ = [
    "ClearReport",
    "NodeStats",
    "ResultInfo",
    "StoreStats",
    "clear_store",
    "list_results",
    "run_usage",
    "store_stats",
]


@dataclass(frozen=True)
class ResultInfo:
    """One stored result as ``incgraph ls`` shows it."""

    record: Record
    hits: int
    last_used: float
    pinned: bool = False


@dataclass(frozen=True)
class NodeStats:
    """Per node label: results stored, their bytes, and how its keys fared in logged runs."""

    node: str
    processor: str
    results: int
    bytes: int
    hits: int
    computed: int

    @property
    def hit_rate(self) -> float | None:
        """hits / (hits + computed), None when the run log saw neither."""
        total = self.hits + self.computed
        return None if total == 0 else self.hits / total


@dataclass
class StoreStats:
    """Counts, bytes and hit rates of a store.

    ``bytes`` counts each blob once (equal results share one) plus the bytes
    of small results kept in their own index row: ``inline_bytes`` of it are
    blobs kept inside SQLite, ``file_bytes`` blobs kept as files and
    ``row_bytes`` results held in ``results`` rows (schema version 3; each row
    holds its own copy, so these count per row). ``index_bytes`` is the SQLite
    file with its write-ahead log.
    """

    path: str | None = None
    results: int = 0
    blobs: int = 0
    bytes: int = 0
    inline_bytes: int = 0
    file_bytes: int = 0
    row_bytes: int = 0
    index_bytes: int = 0
    nodes: int = 0
    runs: int = 0
    hits: int = 0
    computed: int = 0
    pins: int = 0
    leases: int = 0
    oldest: float | None = None
    newest: float | None = None
    per_node: list[NodeStats] = field(default_factory=list)

    @property
    def hit_rate(self) -> float | None:
        """hits / (hits + computed) over logged runs, None if no run was logged."""
        total = self.hits + self.computed
        return None if total == 0 else self.hits / total


@dataclass
class ClearReport:
    """What `clear_store` deleted."""

    results: int = 0
    blobs: int = 0
    bytes: int = 0
    runs: int = 0
    pins: int = 0


def run_usage(store: StoreView) -> tuple[Counter[str], Counter[str], dict[str, float]]:
    """(hits per key, computes per key, last use per key) from the run log."""
    hits: Counter[str] = Counter()
    computed: Counter[str] = Counter()
    last: dict[str, float] = {}
    runs = {run.id: run for run in store.runs()}
    for run_id in sorted(runs):
        started = runs[run_id].started
        for hit_keys, written in store.ledger.run_keys([run_id]).values():
            hits.update(hit_keys)
            computed.update(written)
            for key in (*hit_keys, *written):
                if last.get(key, -1.0) < started:
                    last[key] = started
    return hits, computed, last


def list_results(
    store: StoreView,
    *,
    node: str | None = None,
    processor: str | None = None,
    newest_first: bool = True,
    limit: int | None = None,
) -> list[ResultInfo]:
    """The stored results, newest first, with hit counts; ``node``/``processor`` are globs.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> _ = store.save(Record("a" * 32, "b" * 32, "sum/2", "m.Sum", "c", "i"), 3)
    >>> [info.record.node for info in list_results(store, node="sum/*")]
    ['sum/2']
    """
    hits, _, last = run_usage(store)
    pinned = set(store.pins())
    found = []
    for rec in store.index.records():
        if node is not None and not _matches(rec.node, node):
            continue
        if processor is not None and not _matches(rec.processor, processor):
            continue
        used = max(last.get(rec.key, rec.created), rec.created)
        found.append(ResultInfo(rec, hits[rec.key], used, rec.key in pinned))
    if newest_first:
        found.reverse()
    return found if limit is None else found[:limit]


def _matches(text: str, pattern: str) -> bool:
    return text == pattern or fnmatch.fnmatchcase(text, pattern)


def store_stats(store: StoreView) -> StoreStats:
    """Counts, bytes and hit rates of ``store`` (see `StoreStats`)."""
    stats = StoreStats(path=None if store.path is None else str(store.path))
    entries = list(store.blobs.entries())
    stats.blobs = len(entries)
    stats.inline_bytes = sum(entry.size for entry in entries if entry.inline)
    stats.file_bytes = sum(entry.size for entry in entries if not entry.inline)
    held = _row_bytes(store)
    stats.row_bytes = sum(held.values())
    stats.bytes = stats.inline_bytes + stats.file_bytes + stats.row_bytes
    stats.index_bytes = store.index.disk_bytes()
    hits, computed, _ = run_usage(store)
    runs = store.runs()
    stats.runs = len(runs)
    stats.hits = sum(run.hits for run in runs)
    stats.computed = sum(run.computed for run in runs)
    stats.pins = len(store.pins())
    stats.leases = len(store.ledger.lease_states())
    sizes = {entry.data_version: entry.size for entry in entries}
    per_node: dict[str, list[Record]] = {}
    for rec in store.index.records():
        stats.results += 1
        per_node.setdefault(rec.node, []).append(rec)
        stats.oldest = rec.created if stats.oldest is None else min(stats.oldest, rec.created)
        stats.newest = rec.created if stats.newest is None else max(stats.newest, rec.created)
    stats.nodes = len(per_node)
    stats.per_node = sorted(
        (
            _node_stats(label, recs, (sizes, held), hits, computed)
            for label, recs in per_node.items()
        ),
        key=lambda node: (-node.bytes, node.node),
    )
    return stats


def _node_stats(
    label: str,
    records: list[Record],
    sizes: tuple[dict[str, int], dict[str, int]],
    hits: Counter[str],
    computed: Counter[str],
) -> NodeStats:
    """``sizes``: (data version -> blob bytes, key -> bytes held in its row)."""
    blob_sizes, held = sizes
    versions = {rec.data_version for rec in records}
    return NodeStats(
        node=label,
        processor=records[-1].processor,
        results=len(records),
        bytes=sum(blob_sizes.get(dv, 0) for dv in versions)
        + sum(held.get(rec.key, 0) for rec in records),
        hits=sum(hits[rec.key] for rec in records),
        computed=sum(computed[rec.key] for rec in records),
    )


def _row_bytes(store: StoreView) -> dict[str, int]:
    """Key -> bytes of the result its index row holds (indexes that hold none: empty)."""
    return store.index.row_bytes()


def clear_store(store: StoreView) -> ClearReport:
    """Delete every result, blob (and blob file), temporary file, run and pin of ``store``.

    ``bytes`` counts the blobs, the results held in index rows and the files.

    Leases of claimants still computing are left alone. The quarantine folder
    is kept: it holds what ``verify`` set aside for inspection.
    """
    if store.read_only:
        raise ReadOnlyStoreError(f"cannot clear {store!r}: it was opened read-only")
    store.check_marked("clear the store")
    report = ClearReport()
    records = list(store.index.records())
    entries = list(store.blobs.entries())
    report.results, report.blobs = len(records), len(entries)
    report.bytes = sum(entry.size for entry in entries) + sum(_row_bytes(store).values())
    report.runs, report.pins = len(store.runs()), len(store.pins())
    store.index.delete(rec.key for rec in records)
    store.blobs.delete_many((entry.data_version for entry in entries), unreferenced=True)
    store.index.drop_unused_refs()
    _remove_files(store, report)
    store.ledger.delete_runs(run.id for run in store.runs())
    store.ledger.unpin(store.pins())
    store.ledger.drop_expired(time.time())
    return report


def _remove_files(store: StoreView, report: ClearReport) -> None:
    """Files left in the blob folder once no row names them: orphans and temporaries."""
    leftovers = [*store.blobs.orphan_files(0.0), *store.blobs.stale_temp_files(0.0)]
    sizes = {}
    for path in leftovers:
        with suppress(OSError):
            sizes[path] = os.lstat(path).st_size
    for path in store.blobs.remove_files(leftovers):
        report.bytes += sizes.get(path, 0)
