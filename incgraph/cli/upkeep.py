"""Commands that change a store: ``gc``, ``verify``, ``clear``, ``pin``, ``unpin``.

Design note
-----------
Nothing is removed silently: ``gc`` says what it drops, counted by processor
and node (``-v`` lists every result and file; ``--json`` gives every row;
``--dry-run`` says what it would drop), ``verify`` lists every problem and what it did
about it, and ``clear`` refuses to run without ``--yes`` after saying what it
would delete.
"""

from __future__ import annotations

import argparse
from typing import Any

from incgraph.cli.browse import SHORT
from incgraph.cli.context import Context, UsageError
from incgraph.cli.tables import duration, parse_size, size, table
from incgraph.errors import ReadOnlyStoreError
from incgraph.store.garbage import GcReport
from incgraph.store.postgres_database import is_postgres_url, migrate_postgres, safe_url
from incgraph.store.verification import VerifyReport

__all__ = ["register"]


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``commands``."""
    gc = commands.add_parser("gc", parents=[parent], help="drop results recent runs did not use")
    gc.add_argument("--keep-runs", type=int, metavar="N", help="keep what the last N runs used")
    gc.add_argument(
        "--max-bytes",
        metavar="SIZE",
        help="then drop least recently used to fit (default: $INCGRAPH_MAX_BYTES, if set)",
    )
    gc.add_argument(
        "--pin", action="append", default=[], metavar="KEY", help="pin KEY (kept from now on)"
    )
    gc.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="leave anything younger alone (default: the gc_grace_seconds setting, 600)",
    )
    gc.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    gc.add_argument("-v", "--verbose", action="store_true", help="list each result and file")
    gc.set_defaults(run=cmd_gc, writes=True)

    verify = commands.add_parser("verify", parents=[parent], help="check every blob and row")
    verify.add_argument("--no-quarantine", action="store_true", help="report only")
    verify.set_defaults(run=cmd_verify, writes=True)

    clear = commands.add_parser("clear", parents=[parent], help="delete every result")
    clear.add_argument("--yes", action="store_true", help="really delete")
    clear.set_defaults(run=cmd_clear, writes=True)

    pin = commands.add_parser("pin", parents=[parent], help="keep results through every gc")
    pin.add_argument("keys", nargs="+", metavar="KEY")
    pin.set_defaults(run=cmd_pin, writes=True)

    unpin = commands.add_parser("unpin", parents=[parent], help="let gc drop results again")
    unpin.add_argument("keys", nargs="+", metavar="KEY")
    unpin.set_defaults(run=cmd_unpin, writes=True)

    migrate = commands.add_parser(
        "migrate", parents=[parent], help="create or upgrade a PostgreSQL store's tables"
    )
    migrate.add_argument("url", metavar="URL", help="postgresql://user@host:port/dbname")
    migrate.set_defaults(run=cmd_migrate, writes=True)


# -- gc ---------------------------------------------------------------------------------------


def cmd_gc(ctx: Context) -> int:
    """Garbage-collect: keep recent runs' and pinned results, drop the rest; list what went."""
    args = ctx.args
    if args.keep_runs is not None and args.keep_runs < 0:
        raise UsageError(f"--keep-runs must be 0 or more, got {args.keep_runs}")
    if args.grace is not None and args.grace < 0:
        raise UsageError(f"--grace must be 0 or more, got {args.grace}")
    try:
        max_bytes = None if args.max_bytes is None else parse_size(args.max_bytes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    store = ctx.store
    if store.read_only and not args.dry_run:
        raise ReadOnlyStoreError(
            f"cannot collect garbage in {store.path}: it cannot be written, so nothing is "
            "removed; run `incgraph gc --dry-run` to see what would go"
        )
    if max_bytes is None:
        max_bytes = store.max_bytes
    pins = [ctx.key(key) for key in args.pin]
    if not args.dry_run:
        for key in pins:
            store.pin(key)
    report = store.gc(
        keep_runs=args.keep_runs,
        max_bytes=max_bytes,
        pins=pins,
        grace=args.grace,
        dry_run=args.dry_run,
    )
    if ctx.as_json:
        ctx.emit_json(_gc_json(report))
        return 0
    _print_gc(ctx, report, max_bytes, verbose=args.verbose)
    return 0


def _gc_json(report: GcReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "removed": [
            {
                "key": r.key,
                "node": r.node,
                "processor": r.processor,
                "size": r.size,
                "created": r.created,
            }
            for r in report.removed
        ],
        "blobs_removed": report.blobs_removed,
        "orphan_blobs": report.orphan_blobs,
        "files_removed": [str(p) for p in report.files_removed],
        "bytes_freed": report.bytes_freed,
        "kept": report.kept,
        "kept_bytes": report.kept_bytes,
        "pinned": report.pinned,
        "over_budget": report.over_budget,
        "runs_trimmed": report.runs_trimmed,
        "leases_expired": report.leases_expired,
    }


def _print_gc(
    ctx: Context, report: GcReport, max_bytes: int | None, *, verbose: bool = False
) -> None:
    """A summary by processor and node (each result and file with ``verbose``), then totals."""
    from incgraph.cli.controlling import by_processor, result_rows

    verb = "would remove" if report.dry_run else "removed"
    if report.removed:
        ctx.print(result_rows(report.removed) if verbose else by_processor(report.removed))
    if verbose:
        for path in report.files_removed:
            ctx.print(f"{verb} file {path}")
    extra = []
    if report.orphan_blobs:
        extra.append(f"{len(report.orphan_blobs)} orphan blob(s)")
    if report.files_removed:
        extra.append(f"{len(report.files_removed)} stray file(s)")
    tail = f" and {', '.join(extra)}" if extra else ""
    ctx.print(
        f"{verb} {len(report.removed)} result(s){tail}, freeing {size(report.bytes_freed)}; "
        f"kept {report.kept} result(s), {size(report.kept_bytes)}"
        + (f", {len(report.pinned)} pinned" if report.pinned else "")
    )
    if report.over_budget and max_bytes is not None:
        ctx.print(
            f"still over --max-bytes {size(max_bytes)}: the rest is pinned or younger than --grace"
        )


# -- verify ------------------------------------------------------------------------------------


def cmd_verify(ctx: Context) -> int:
    """Check every blob (checksum, signature) and index row; quarantine what is bad."""
    store = ctx.store
    report = store.verify(quarantine=not ctx.args.no_quarantine)
    if ctx.as_json:
        ctx.emit_json(_verify_json(report))
    else:
        _print_verify(ctx, report)
    return 0 if report.ok else 1


def _verify_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "blobs": report.blobs,
        "results": report.results,
        "quarantined": report.quarantined,
        "problems": [p.__dict__ for p in report.problems],
        "orphan_blobs": report.orphan_blobs,
        "orphan_files": report.orphan_files,
        "temp_files": report.temp_files,
        "seconds": report.seconds,
    }


def _print_verify(ctx: Context, report: VerifyReport) -> None:
    if report.problems:
        rows = []
        for p in report.problems:
            if not report.quarantined:
                action = "reported only"
            elif p.kind == "file":
                action = "see the message: move the file aside"
            else:
                action = f"moved to {p.moved_to}" if p.moved_to else "removed"
                if p.kind == "blob" and p.keys:
                    action += f"; {len(p.keys)} result(s) will be recomputed"
            name = p.name if p.kind == "file" else p.name[:SHORT]
            rows.append([p.kind, name, p.reason, action])
        ctx.print(table(["KIND", "NAME", "PROBLEM", "ACTION"], rows))
    found = f"{len(report.problems)} problem(s)" if report.problems else "no problems"
    ctx.print(
        f"checked {report.blobs} blob(s) and {report.results} result(s) in "
        f"{duration(report.seconds)}: {found}"
    )
    leftovers = report.orphan_blobs + report.orphan_files + report.temp_files
    if leftovers:
        ctx.print(
            f"({report.orphan_blobs} orphan blob(s), {report.orphan_files} orphan file(s), "
            f"{report.temp_files} temporary file(s): `incgraph gc` reclaims them)"
        )


# -- clear, pin, unpin -------------------------------------------------------------------------


def cmd_clear(ctx: Context) -> int:
    """Delete every result (needs ``--yes``)."""
    store = ctx.store
    if not ctx.args.yes:
        stats = store.stats()
        raise UsageError(
            f"this would delete {stats.results} result(s) ({size(stats.bytes)}) and the run log "
            f"of {store.path}; rerun with --yes"
        )
    report = store.clear()
    if ctx.as_json:
        ctx.emit_json(report.__dict__)
    else:
        ctx.print(
            f"deleted {report.results} result(s), {report.blobs} blob(s) ({size(report.bytes)}), "
            f"{report.runs} logged run(s) and {report.pins} pin(s) from {store.path}"
        )
    return 0


def cmd_pin(ctx: Context) -> int:
    """Pin results so gc keeps them."""
    keys = [ctx.store.pin(ctx.key(key)) for key in ctx.args.keys]
    if ctx.as_json:
        ctx.emit_json({"pinned": keys})
    else:
        for key in keys:
            ctx.print(f"pinned {key}")
    return 0


def cmd_unpin(ctx: Context) -> int:
    """Unpin results."""
    done = []
    for key in ctx.args.keys:
        try:
            found = ctx.store.unpin(key)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if found is None:
            raise UsageError(f"no pinned key starts with {key!r}")
        done.append(found)
    if ctx.as_json:
        ctx.emit_json({"unpinned": done})
    else:
        for key in done:
            ctx.print(f"unpinned {key}")
    return 0


# -- migrate ----------------------------------------------------------------------------------


def cmd_migrate(ctx: Context) -> int:
    """Create incgraph's tables in a PostgreSQL database, or bring them to this version."""
    url = ctx.args.url
    if not is_postgres_url(url):
        raise UsageError(
            f"{url!r} is not a PostgreSQL URL; give one like postgresql://user@host:5432/dbname "
            "(a folder store is created and upgraded by opening it)"
        )
    before, after = migrate_postgres(url)
    if ctx.as_json:
        ctx.emit_json({"url": safe_url(url), "before": before, "after": after})
    elif before == after:
        ctx.print(f"{safe_url(url)} is at schema version {after}: nothing to do")
    elif before == 0:
        ctx.print(f"created an incgraph store (schema version {after}) in {safe_url(url)}")
    else:
        ctx.print(f"migrated {safe_url(url)} from schema version {before} to {after}")
    return 0
