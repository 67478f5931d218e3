"""Read-only commands: ``ls``, ``show``, ``lineage``, ``runs``, ``stats``.

Design note
-----------
Tables show short keys (the first `SHORT` hex digits; any unique prefix
is accepted back by ``show``, ``lineage`` and ``pin``) and human units;
``--json`` gives full keys, Unix times and bytes. Only ``show`` loads a value.
"""

from __future__ import annotations

import argparse
import reprlib
from typing import Any

from incgraph.cli.context import Context, UsageError
from incgraph.cli.describing import artifact_refs, artifact_rows, is_flow, processor_label
from incgraph.cli.tables import ago, duration, size, table, timestamp
from incgraph.store.acceptance import acceptances
from incgraph.store.lineage import LineageNode, lineage
from incgraph.store.protocols import Record
from incgraph.store.usage import ResultInfo, list_results, run_usage

__all__ = ["SHORT", "register"]

SHORT = 12
"""Hex digits of a key or data version shown in tables."""

_SORTS = {
    "created": lambda info: info.record.created,
    "size": lambda info: info.record.size,
    "duration": lambda info: info.record.duration,
    "hits": lambda info: info.hits,
    "used": lambda info: info.last_used,
    "node": lambda info: info.record.node,
}


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``commands``."""
    ls = commands.add_parser("ls", parents=[parent], help="list stored results")
    ls.add_argument("--node", metavar="PATTERN", help="only nodes whose label matches (glob)")
    ls.add_argument("--processor", metavar="PATTERN", help="only processors matching (glob)")
    ls.add_argument("--sort", choices=sorted(_SORTS), default="created", help="default: created")
    ls.add_argument("--reverse", action="store_true", help="oldest / smallest first")
    ls.add_argument("--limit", type=int, metavar="N", help="show at most N results")
    ls.set_defaults(run=cmd_ls)

    show = commands.add_parser("show", parents=[parent], help="one result: record and value")
    show.add_argument("key", help="cache key, or a unique prefix of one")
    show.add_argument("--no-value", action="store_true", help="do not load the value")
    show.set_defaults(run=cmd_show)

    lin = commands.add_parser(
        "lineage", parents=[parent], help="inputs and code that made a result"
    )
    lin.add_argument("key", help="cache key, or a unique prefix of one")
    lin.add_argument("--format", choices=("text", "json", "dot"), default="text")
    lin.add_argument("--depth", type=int, metavar="N", help="follow inputs N levels up only")
    lin.set_defaults(run=cmd_lineage)

    runs = commands.add_parser("runs", parents=[parent], help="the run log, newest first")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="default: 20")
    runs.set_defaults(run=cmd_runs)

    stats = commands.add_parser("stats", parents=[parent], help="counts, bytes and hit rates")
    stats.add_argument("--nodes", type=int, default=20, metavar="N", help="per-node rows shown")
    stats.set_defaults(run=cmd_stats)


# -- ls -----------------------------------------------------------------------------------


def cmd_ls(ctx: Context) -> int:
    """List results: node, processor, created, size, duration, hits."""
    args = ctx.args
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, got {args.limit}")
    found = list_results(ctx.store, node=args.node, processor=args.processor)
    found.sort(key=_SORTS[args.sort], reverse=not args.reverse)
    total = len(found)
    shown = found if args.limit is None else found[: args.limit]
    extra = _artifact_sizes(ctx, found)
    if ctx.as_json:
        ctx.emit_json([_info_json(info, extra) for info in shown])
        return 0
    rows = [
        [
            info.record.key[:SHORT] + ("*" if info.pinned else ""),
            info.record.node,
            processor_label(info.record),
            timestamp(info.record.created),
            size(info.record.size + extra.get(info.record.key, 0)),
            duration(info.record.duration),
            info.hits,
        ]
        for info in shown
    ]
    header = ["KEY", "NODE", "PROCESSOR", "CREATED", "SIZE", "DURATION", "HITS"]
    if rows:
        ctx.print(table(header, rows, right=[4, 5, 6]))
    stored = sum(info.record.size for info in found) + extra.get("", 0)
    more = f", {len(shown)} shown (--limit)" if len(shown) < total else ""
    pinned = " (* pinned)" if any(info.pinned for info in shown) else ""
    ctx.print(f"{total} result{'s' if total != 1 else ''}, {size(stored)}{more}{pinned}")
    return 0


def _artifact_sizes(ctx: Context, found: list[ResultInfo]) -> dict[str, int]:
    """Key -> bytes of the artifact blobs a flow layer's result names; "" -> all, each once.

    A flow layer's result is a small manifest; its artifacts are separate blobs,
    which are what the layer occupies on disk. Only flow records are loaded.
    """
    flows = [info.record for info in found if is_flow(info.record)]
    if not flows:
        return {}
    sizes = _blob_sizes(ctx)
    out: dict[str, int] = {}
    counted: set[str] = set()
    for rec in flows:
        try:
            manifest = ctx.store.load(rec)
        except Exception:  # a listing must not fail on one unreadable manifest
            continue
        named = artifact_refs(manifest)
        if named is not None:
            out[rec.key] = sum(sizes.get(dv, 0) for dv in named)
            counted |= named
    out[""] = sum(sizes.get(dv, 0) for dv in counted)
    return out


def _blob_sizes(ctx: Context) -> dict[str, int]:
    return {e.data_version: e.size for e in ctx.store.blobs.entries()}


def _info_json(info: ResultInfo, artifact_sizes: dict[str, int]) -> dict[str, Any]:
    rec = info.record
    extra = {
        "hits": info.hits,
        "last_used": info.last_used,
        "pinned": info.pinned,
        "label": processor_label(rec),
        "artifacts_size": artifact_sizes.get(rec.key) if is_flow(rec) else None,
    }
    return {**_record_json(rec), **extra}


def _record_json(rec: Record) -> dict[str, Any]:
    return {
        "key": rec.key,
        "data_version": rec.data_version,
        "node": rec.node,
        "processor": rec.processor,
        "code_version": rec.code_version,
        "init_version": rec.init_version,
        "inputs": dict(rec.inputs),
        "created": rec.created,
        "duration": rec.duration,
        "size": rec.size,
    }


# -- show -----------------------------------------------------------------------------------


def cmd_show(ctx: Context) -> int:
    """One result's record, where its inputs came from, and a preview of its value."""
    store = ctx.store
    rec = store.lookup(ctx.key(ctx.args.key))
    assert isinstance(rec, Record)
    hits, _, last = run_usage(store)
    accepted = acceptances(store).get(rec.key)
    producers = {name: _producer(ctx, dv) for name, dv in rec.inputs.items()}
    preview = None if ctx.args.no_value else _preview(ctx, rec)
    rows = _artifacts(ctx, rec) if preview is not None and is_flow(rec) else None
    if ctx.as_json:
        data = _record_json(rec)
        data.update(hits=hits[rec.key], last_used=last.get(rec.key), pinned=rec.key in store.pins())
        data["producers"] = {name: p.key if p else None for name, p in producers.items()}
        data["label"] = processor_label(rec)
        data["value"] = preview if rows is None else None
        data["artifacts"] = None if rows is None else dict(rows)
        data["file"] = _file_of(ctx, rec)
        data["in_row"] = _in_row(ctx, rec)
        data["accepted_from"] = None if accepted is None else accepted.to_dict()
        ctx.emit_json(data)
        return 0
    where = _storage_of(ctx, rec)
    lines = [
        ("key", rec.key),
        ("data version", rec.data_version),
        ("node", rec.node),
        ("processor", _processor_text(rec)),
        ("code version", rec.code_version),
        ("init version", rec.init_version),
    ]
    if accepted is not None:
        lines.append(
            (
                "accepted",
                f"from code {accepted.previous[:8]} (result {accepted.old_key[:SHORT]}) "
                f"by an accept (`incgraph accept` or `accept()`) on {timestamp(accepted.when)}: "
                "not computed by this code",
            )
        )
    for i, (name, dv) in enumerate(rec.inputs.items()):
        made = producers[name]
        origin = f"from {made.key[:SHORT]} (node {made.node})" if made else "(no stored producer)"
        lines.append(("inputs" if i == 0 else "", f"{name} = {dv[:SHORT]}  {origin}"))
    if not rec.inputs:
        lines.append(("inputs", "(none)"))
    lines += [
        ("created", f"{timestamp(rec.created)} ({ago(rec.created)})"),
        ("duration", duration(rec.duration)),
        ("size", f"{size(rec.size)}, {where}"),
        ("hits", f"{hits[rec.key]} logged run(s); last used {ago(last.get(rec.key))}"),
        ("pinned", "yes" if rec.key in store.pins() else "no"),
    ]
    if rows is not None:
        width = max((len(name) for name, _ in rows), default=0)
        artifacts = [f"{name.ljust(width)}  {text}" for name, text in rows] or ["(none)"]
        lines += [("artifacts" if i == 0 else "", row) for i, row in enumerate(artifacts)]
    elif preview is not None:
        lines.append(("value", preview))
    width = max(len(label) for label, _ in lines)
    for label, text in lines:
        first, *rest = str(text).split("\n")
        ctx.print(f"{label.ljust(width)}  {first}")
        for line in rest:
            ctx.print(f"{' ' * width}  {line}")
    return 0


def _processor_text(rec: Record) -> str:
    label = processor_label(rec)
    return label if label == rec.processor else f"{label} ({rec.processor})"


def _artifacts(ctx: Context, rec: Record) -> list[tuple[str, str]] | None:
    """A flow layer's artifacts as (name, what it is) (None when the result is no manifest)."""
    try:
        return artifact_rows(ctx.store.load(rec), _blob_sizes(ctx))
    except Exception:  # fall back to the plain preview, which says why it cannot load
        return None


def _producer(ctx: Context, data_version: str) -> Record | None:
    found = ctx.store.lookup_many(ctx.store.index.keys_for_data_version(data_version)[:1])
    return next(iter(found.values()), None)


def _storage_of(ctx: Context, rec: Record) -> str:
    """Where a result's bytes are, as a load finds them: a blob file, its row, or inline."""
    found = _file_of(ctx, rec)
    if found is not None:
        return found
    if _in_row(ctx, rec):
        return "in its row of the index"
    return "inline in the index" if ctx.store.path else "in memory"


def _in_row(ctx: Context, rec: Record) -> bool:
    """Whether the result's index row holds its bytes (small results, schema version 3)."""
    return ctx.store.index.holds_data(rec.key)


def _file_of(ctx: Context, rec: Record) -> str | None:
    path = ctx.store.blobs.path_of(rec.data_version)
    return None if path is None else str(path)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 12, 12, 12
_REPR.maxset, _REPR.maxstring, _REPR.maxlong, _REPR.maxother = 12, 200, 60, 1200


def _preview(ctx: Context, rec: Record) -> str:
    """``type: repr`` of the value, shortened; or why it could not be loaded."""
    try:
        value = ctx.store.load(rec)
    except Exception as exc:  # a preview must not crash the command; say why instead
        return f"<cannot load: {type(exc).__name__}: {exc}>"
    kind = type(value)
    shape = getattr(value, "shape", None)
    head = (
        f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__name__
    )
    if shape is not None:
        head += f" shape={tuple(shape)}"
        if getattr(value, "dtype", None) is not None:
            head += f" dtype={value.dtype}"
    return f"{head}\n{_REPR.repr(value)}"


# -- lineage --------------------------------------------------------------------------------


def cmd_lineage(ctx: Context) -> int:
    """The inputs and code versions that made a result, up to the constants."""
    key = ctx.key(ctx.args.key)
    if ctx.args.depth is not None and ctx.args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {ctx.args.depth}")
    tree = lineage(ctx.store, key, depth=ctx.args.depth)
    fmt = "json" if ctx.as_json else ctx.args.format
    if fmt == "json":
        ctx.emit_json(tree.to_dict())
    elif fmt == "dot":
        ctx.print(lineage_dot(tree))
    else:
        ctx.print("\n".join(lineage_text(tree)))
    return 0


def _describe(node: LineageNode) -> str:
    rec = node.record
    accepted = ""
    if node.accepted is not None:
        accepted = (
            f"  accepted from code {node.accepted.previous[:8]} ({node.accepted.old_key[:SHORT]})"
        )
    return (
        f"{rec.key[:SHORT]}  node {rec.node} ({rec.processor})  code {rec.code_version[:8]}  "
        f"init {rec.init_version[:8]}  created {timestamp(rec.created)}{accepted}"
    )


def lineage_text(tree: LineageNode, prefix: str = "") -> list[str]:
    """The tree drawn with box-drawing branches, one result or input per line."""
    lines = [] if prefix else [_describe(tree)]
    if tree.seen:
        return lines
    for i, item in enumerate(tree.inputs):
        last = i == len(tree.inputs) - 1
        branch, cont = ("└─ ", "   ") if last else ("├─ ", "│  ")
        note = "" if item.producers else "  (no stored producer: a constant or outside value)"
        lines.append(f"{prefix}{branch}{item.name} = {item.data_version[:SHORT]}{note}")
        for j, made in enumerate(item.producers):
            end = j == len(item.producers) - 1 and not item.more_producers
            sub_branch, sub_cont = ("└─ ", "   ") if end else ("├─ ", "│  ")
            seen = "  (shown above)" if made.seen else ""
            cut = "  (inputs not followed: --depth)" if made.truncated else ""
            lines.append(f"{prefix}{cont}{sub_branch}{_describe(made)}{seen}{cut}")
            lines += lineage_text(made, prefix + cont + sub_cont)
        if item.more_producers:
            lines.append(f"{prefix}{cont}└─ ... {item.more_producers} more producer(s)")
    return lines


def lineage_dot(tree: LineageNode) -> str:
    """Graphviz DOT of the tree: results as boxes, outside inputs as ellipses."""
    from incgraph.render import Drawing, to_dot

    drawing = Drawing(f"lineage of {tree.record.key[:SHORT]}")
    added: set[str] = set()
    for node in tree.walk():
        rec = node.record
        if rec.key not in added:
            added.add(rec.key)
            label = f"{rec.node}: {rec.processor.rsplit('.', 1)[-1]}\n{rec.key[:SHORT]}"
            drawing.box(rec.key, label, "processor")
        if node.seen:
            continue
        for item in node.inputs:
            if not item.producers:
                source = f"dv:{item.data_version}"
                if source not in added:
                    added.add(source)
                    drawing.box(source, item.data_version[:SHORT], "constant")
                drawing.arrow(source, rec.key, item.name)
            for made in item.producers:
                drawing.arrow(made.record.key, rec.key, item.name)
    return to_dot(drawing)


# -- runs and stats ---------------------------------------------------------------------------


def cmd_runs(ctx: Context) -> int:
    """The run log, newest first: what ran, when, and how much it hit and computed."""
    runs = list(reversed(ctx.store.runs()))[: max(ctx.args.limit, 0)]
    if ctx.as_json:
        ctx.emit_json([run.__dict__ for run in runs])
        return 0
    rows = [
        [
            run.id,
            run.kind,
            run.label if len(run.label) <= 40 else run.label[:37] + "...",
            timestamp(run.started),
            duration(run.finished - run.started) if run.finished else "-",
            run.status,
            run.hits,
            run.computed,
        ]
        for run in runs
    ]
    if rows:
        header = ["RUN", "KIND", "LABEL", "STARTED", "TOOK", "STATUS", "HITS", "COMPUTED"]
        ctx.print(table(header, rows, right=[0, 4, 6, 7]))
    ctx.print(f"{len(ctx.store.runs())} run(s) logged")
    return 0


def _budget(ctx: Context) -> str:
    """The byte budget every run enforces ($INCGRAPH_MAX_BYTES), or that there is none."""
    limit = ctx.store.max_bytes
    if limit is None:
        return "none (set $INCGRAPH_MAX_BYTES to keep the store under a size)"
    return f"{size(limit)} ($INCGRAPH_MAX_BYTES), enforced after every run that writes"


def cmd_stats(ctx: Context) -> int:
    """Counts, bytes and hit rates, overall and per node."""
    stats = ctx.store.stats()
    if ctx.as_json:
        data = dict(stats.__dict__)
        data["hit_rate"] = stats.hit_rate
        data["per_node"] = [{**n.__dict__, "hit_rate": n.hit_rate} for n in stats.per_node]
        data["max_bytes"] = ctx.store.max_bytes
        ctx.emit_json(data)
        return 0
    rate = "-" if stats.hit_rate is None else f"{stats.hit_rate:.0%}"
    inline, files, held = size(stats.inline_bytes), size(stats.file_bytes), size(stats.row_bytes)
    blob_bytes = size(stats.inline_bytes + stats.file_bytes)
    lines = [
        ("store", stats.path or "(in memory)"),
        ("results", f"{stats.results} from {stats.nodes} node(s)"),
        ("blobs", f"{stats.blobs}, {blob_bytes} ({inline} inline, {files} in files)"),
        ("in rows", f"{held} (small results kept in their index row)"),
        ("index", size(stats.index_bytes)),
        ("runs", f"{stats.runs} logged: {stats.hits} hits, {stats.computed} computed"),
        ("hit rate", rate),
        ("pins", str(stats.pins)),
        ("budget", _budget(ctx)),
        ("leases", f"{stats.leases} held"),
        ("oldest", timestamp(stats.oldest)),
        ("newest", timestamp(stats.newest)),
    ]
    width = max(len(label) for label, _ in lines)
    for label, text in lines:
        ctx.print(f"{label.ljust(width)}  {text}")
    shown = stats.per_node[: max(ctx.args.nodes, 0)]
    if shown:
        ctx.print()
        rows = [
            [
                n.node,
                n.processor,
                n.results,
                size(n.bytes),
                n.hits,
                n.computed,
                "-" if n.hit_rate is None else f"{n.hit_rate:.0%}",
            ]
            for n in shown
        ]
        header = ["NODE", "PROCESSOR", "RESULTS", "SIZE", "HITS", "COMPUTED", "HIT RATE"]
        ctx.print(table(header, rows, right=[2, 3, 4, 5, 6]))
        if len(stats.per_node) > len(shown):
            ctx.print(f"... {len(stats.per_node) - len(shown)} more node(s) (--nodes)")
    return 0
