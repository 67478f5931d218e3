"""Commands that copy results between stores: ``push`` and ``pull``.

Design note
-----------
``incgraph push REMOTE [KEY ...]`` copies results of the local store
(``--store``) and their lineage to the store ``REMOTE``;
``incgraph pull REMOTE [KEY ...]`` copies them the other way, creating the
local store if needed. ``REMOTE`` is anything `incgraph.open_store` opens:
a folder (with ``--remote-blobs URL`` when its blobs are in a bucket or it is
a PostgreSQL URL) or a URL. Keys
may be given by a unique prefix; without keys every result is copied. See
`incgraph.store.transfer` for the order of writes and why an interrupted copy
is safe to rerun.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from incgraph.cli.context import Context
from incgraph.store import Store, open_store
from incgraph.store.transfer import TransferReport, transfer

__all__ = ["register"]


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``push`` and ``pull`` to ``commands``."""
    for name, run, text in (
        ("push", cmd_push, "copy results (and their lineage) to another store"),
        ("pull", cmd_pull, "copy results (and their lineage) from another store"),
    ):
        command = commands.add_parser(name, parents=[parent], help=text)
        command.add_argument("remote", metavar="REMOTE", help="the other store: folder or URL")
        command.add_argument("keys", nargs="*", metavar="KEY", help="keys or key prefixes")
        command.add_argument(
            "--remote-blobs",
            metavar="URL",
            help="where REMOTE keeps its blobs (e.g. s3://bucket/prefix)",
        )
        command.set_defaults(run=run, writes=True)


def cmd_push(ctx: Context) -> int:
    """``incgraph push``: the local store's results to REMOTE."""
    local = ctx.store
    keys = [local.resolve(prefix) for prefix in ctx.args.keys] or None
    with _remote(ctx) as remote:
        return _report(ctx, transfer(local, remote, keys, kind="push"))


def cmd_pull(ctx: Context) -> int:
    """``incgraph pull``: REMOTE's results into the local store (created if missing)."""
    given = getattr(ctx.args, "store", None)
    local_blobs = getattr(ctx.args, "blobs", None)
    with _remote(ctx) as remote, open_store(given, blobs=local_blobs) as local:
        keys = [remote.resolve(prefix) for prefix in ctx.args.keys] or None
        return _report(ctx, transfer(remote, local, keys, kind="pull"))


def _remote(ctx: Context) -> Store:
    return open_store(ctx.args.remote, blobs=ctx.args.remote_blobs)


def _report(ctx: Context, report: TransferReport) -> int:
    if ctx.as_json:
        found = {"results": report.results, "present": report.present, "blobs": report.blobs}
        ctx.print(json.dumps(found))
    else:
        ctx.print(report.summary())
    return 0
