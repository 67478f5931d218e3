"""Commands that control what the cache serves: ``invalidate`` and ``accept``.

Design note
-----------
``invalidate`` takes results out of use (the next run computes them again) by
key, node label or processor, with the results computed from them (found by
data version: the store does not know the graph's edges, so this also catches
a result whose input merely equals a removed result; ``--no-downstream``
keeps them all); ``--dry-run`` says what would go. ``accept`` records that
the current code of a processor (or memoized function) gives the results of
its previous code: it imports the processor by its qualified name (from the
current folder, like ``python -m``) to fingerprint its code as it is now.
Both print a summary by node and processor; ``-v`` lists each result.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from incgraph import hashing
from incgraph.cli.browse import SHORT
from incgraph.cli.context import Context, UsageError
from incgraph.cli.tables import size, table, timestamp
from incgraph.errors import NotCachedError
from incgraph.store.acceptance import AcceptReport, accept
from incgraph.store.invalidation import invalidate, select
from incgraph.store.protocols import Record

__all__ = ["by_processor", "current_code_version", "register", "result_rows"]


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``commands``."""
    inv = commands.add_parser(
        "invalidate", parents=[parent], help="take results out of use: the next run recomputes"
    )
    inv.add_argument("keys", nargs="*", metavar="KEY", help="cache keys (or unique prefixes)")
    inv.add_argument("--node", action="append", default=[], metavar="PATTERN", help="node labels")
    inv.add_argument(
        "--processor", action="append", default=[], metavar="PATTERN", help="processor names"
    )
    inv.add_argument(
        "--no-downstream",
        action="store_true",
        help="keep the results computed from them (by default those go too)",
    )
    inv.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    inv.add_argument("-v", "--verbose", action="store_true", help="list each result")
    inv.set_defaults(run=cmd_invalidate, writes=True)

    acc = commands.add_parser(
        "accept", parents=[parent], help="the current code gives the previous code's results"
    )
    acc.add_argument(
        "target", metavar="NODE|PROCESSOR", help="a node label, or a processor's qualified name"
    )
    acc.add_argument("--dry-run", action="store_true", help="say what would be accepted")
    acc.add_argument("-v", "--verbose", action="store_true", help="list each result")
    acc.set_defaults(run=cmd_accept, writes=True)


# -- shared output -------------------------------------------------------------------------------


def result_rows(records: Sequence[Record]) -> str:
    """A table of results, one row each."""
    rows = [
        [r.key[:SHORT], r.node, r.processor, timestamp(r.created), size(r.size)] for r in records
    ]
    return table(["KEY", "NODE", "PROCESSOR", "CREATED", "SIZE"], rows, right=[4])


def by_processor(records: Sequence[Record], limit: int = 20) -> str:
    """A table of results counted by processor and node: a summary of many rows."""
    groups: dict[tuple[str, str], list[int]] = {}
    for r in records:
        entry = groups.setdefault((r.processor, r.node), [0, 0])
        entry[0] += 1
        entry[1] += r.size
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows: list[list[Any]] = [
        [proc, node, count, size(nbytes)] for (proc, node), (count, nbytes) in ordered[:limit]
    ]
    if len(ordered) > limit:
        rest = ordered[limit:]
        rows.append(
            [
                f"... {len(rest)} more",
                "",
                sum(c for _, (c, _) in rest),
                size(sum(b for _, (_, b) in rest)),
            ]
        )
    return table(["PROCESSOR", "NODE", "RESULTS", "SIZE"], rows, right=[2, 3])


# -- invalidate ----------------------------------------------------------------------------------


def cmd_invalidate(ctx: Context) -> int:
    """Take chosen results (and what was computed from them) out of use."""
    args = ctx.args
    if not (args.keys or args.node or args.processor):
        raise UsageError("say what to invalidate: KEY..., --node PATTERN or --processor PATTERN")
    store = ctx.store
    keys = [ctx.key(key) for key in args.keys]
    chosen = select(store, keys=keys, nodes=args.node, processors=args.processor)
    if not chosen:
        raise UsageError("no stored result matches; see `incgraph ls` for labels and processors")
    report = invalidate(store, chosen, downstream=not args.no_downstream, dry_run=args.dry_run)
    if ctx.as_json:
        ctx.emit_json(
            {
                "dry_run": report.dry_run,
                "removed": [_record_json(r) for r in report.removed],
                "downstream": report.downstream,
                "unpinned": report.unpinned,
            }
        )
        return 0
    if report.removed:
        ctx.print(result_rows(report.removed) if args.verbose else by_processor(report.removed))
    verb = "would take" if report.dry_run else "took"
    below = f", {report.downstream} of them downstream" if report.downstream else ""
    pins = f"; unpinned {len(report.unpinned)}" if report.unpinned else ""
    ctx.print(
        f"{verb} {len(report.removed)} result(s) out of use{below}{pins}; the next run "
        "recomputes them, and `incgraph gc` reclaims bytes nothing else uses"
    )
    return 0


def _record_json(r: Record) -> dict[str, Any]:
    return {"key": r.key, "node": r.node, "processor": r.processor, "size": r.size}


# -- accept --------------------------------------------------------------------------------------


def cmd_accept(ctx: Context) -> int:
    """Make the previous code's results hits for the current code of a node or processor."""
    store = ctx.store
    target = ctx.args.target
    records = list(store.index.records())
    labels = {r.processor for r in records if r.node == target}
    if labels:
        if len(labels) > 1:
            raise UsageError(
                f"node {target!r} has results of several processors ({', '.join(sorted(labels))}); "
                "accept one of them by its processor name"
            )
        processor = labels.pop()
        pairs = [(target, processor)]
    else:
        processor = target
        pairs = sorted({(r.node, r.processor) for r in records if r.processor == target})
        if not pairs:
            raise UsageError(
                f"no stored result has node label or processor {target!r}; "
                "see `incgraph ls` for both"
            )
    code = current_code_version(processor)
    reports: list[AcceptReport] = []
    errors = []
    for node, proc in pairs:
        try:
            reports.append(accept(store, node, proc, code, dry_run=ctx.args.dry_run))
        except NotCachedError as exc:
            errors.append(str(exc))
    if not reports:
        ctx.warn(f"incgraph accept: {errors[0]}")
        return 1
    _print_accept(ctx, reports)
    return 0


def _print_accept(ctx: Context, reports: list[AcceptReport]) -> None:
    if ctx.as_json:
        ctx.emit_json([report.__dict__ for report in reports])
        return
    for report in reports:
        verb = "would accept" if report.dry_run else "accepted"
        ctx.print(
            f"node {report.node} ({report.processor}): {verb} {len(report.accepted)} result(s) "
            f"of code {report.previous[:8]} for code {report.current[:8]}"
            + (f"; {report.already} already stored" if report.already else "")
        )
        if ctx.args.verbose:
            for old, new in report.accepted:
                ctx.print(f"  {old[:SHORT]} -> {new[:SHORT]}")


def current_code_version(qualified: str) -> str:
    """The code version a processor, memoized function or task function has now.

    It is imported by its qualified name, with the current folder on the path.
    A node's own ``version=`` (given to ``add_node``) cannot be seen from here:
    accept such nodes with `incgraph.ProcessGraph.accept`.
    """
    obj = _import(qualified)
    code_version = getattr(obj, "code_version", None)
    if callable(code_version) and not isinstance(obj, type):
        return str(code_version())  # a memoized function
    if isinstance(obj, type):
        target = getattr(obj, "code_source", None) or obj
        return hashing.code_version(target, getattr(obj, "version", None))
    fn = getattr(obj, "fn", obj)  # a queue task or a plain function
    return hashing.code_version(fn, getattr(obj, "version", None))


def _import(qualified: str) -> Any:
    if qualified.startswith("incgraph.flow."):
        raise UsageError(
            f"{qualified} is a processor incgraph generates for a flow layer; its code version "
            "comes from the layer and the flow, which this command cannot rebuild. After a "
            "refactor of a layer, rerun the flow (its readers stay hits when its artifacts "
            "come out equal)"
        )
    module_name, _, _ = qualified.partition(".")
    if module_name == "__main__":
        raise UsageError(
            f"{qualified} was defined in a script run as __main__, which this command cannot "
            "import; call graph.accept(node) (or f.accept() for a memoized function) in the script"
        )
    parts = qualified.split(".")
    sys.path.insert(0, "")
    try:
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                obj = getattr(obj, name, None)
            if obj is not None:
                return obj
    finally:
        sys.path.remove("")
    raise UsageError(
        f"cannot import {qualified} to fingerprint its current code; run the command from "
        "the folder your code imports from, or call graph.accept(node) in your code"
    )
