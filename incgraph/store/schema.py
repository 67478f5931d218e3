"""The SQLite schema of a store, as a list of migrations.

Design note
-----------
The schema version is SQLite's ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes
a database from version ``i`` to ``i + 1``; opening a store applies the missing
ones in order, inside one ``BEGIN IMMEDIATE`` transaction, so two processes that
open a fresh store at once cannot both migrate it (the second waits, then finds
the work done). A later version adds a function to the list and never edits the
earlier ones.

Version 1 tables (one file, ``index.sqlite``):

``results``
    cache key -> :class:`~incgraph.store.protocols.Record`. ``inputs`` is JSON
    text (input name -> data version). Indexed on ``(node, created)`` for
    "latest result of a node", on ``data_version`` to find the keys that
    point at a blob, and on ``created`` to list records in creation order.
    A rowid table: inserts append, and ``rowid`` breaks ties between equal
    ``created`` times.
``blobs``
    data version -> codec, xxh3-64 checksum (16 hex chars) and size; ``data``
    holds the bytes of small values inline and is NULL for values kept as files.

Version 2 adds what lets people trust and inspect a store:

``runs``
    the run log: one row per engine run or batch (kind, label, owner,
    started/finished times, status, hit and computed counts) with the cache
    keys it read (``hit_keys``) and wrote (``written_keys``) packed into one
    blob each (:mod:`incgraph.store.runlog`). Garbage collection keeps what the
    last runs used; ``incgraph ls`` counts hits from it.
``pins``
    cache keys garbage collection never drops.
``leases``
    cache key -> owner and expiry time of the process computing it, so that
    other processes wait instead of computing it again (:mod:`incgraph.store.leases`).
``blobs.tag``
    the HMAC-SHA256 tag of a blob when signing is on (:mod:`incgraph.store.signing`).

The DDL is produced by ``sqlite_utils``; sqlite-utils 4 runs it inside the
caller's open transaction, which is what makes a migration atomic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlite_utils imports numpy when present: load it only to migrate
    import sqlite_utils

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]


def _create_v1(db: sqlite_utils.Database) -> None:
    """Version 0 (empty file) -> 1: ``results`` and ``blobs`` with their indexes."""
    results = db.table("results")
    results.create(
        {
            "key": str,
            "data_version": str,
            "node": str,
            "processor": str,
            "code_version": str,
            "init_version": str,
            "inputs": str,
            "created": float,
            "duration": float,
            "size": int,
        },
        pk="key",
        not_null={
            "data_version",
            "node",
            "processor",
            "code_version",
            "init_version",
            "inputs",
            "created",
            "duration",
            "size",
        },
        defaults={"inputs": "{}", "duration": 0.0, "size": 0},
    )
    results.create_index(["node", "created"], index_name="results_node_created")
    results.create_index(["data_version"], index_name="results_data_version")
    results.create_index(["created"], index_name="results_created")
    db.table("blobs").create(
        {
            "data_version": str,
            "codec": str,
            "checksum": str,
            "size": int,
            "created": float,
            "data": bytes,
        },
        pk="data_version",
        not_null={"codec", "checksum", "size", "created"},
    )


def _create_v2(db: sqlite_utils.Database) -> None:
    """Version 1 -> 2: the run log, pins, leases, and a signature column for blobs."""
    db.table("runs").create(
        {
            "id": int,
            "kind": str,
            "label": str,
            "owner": str,
            "started": float,
            "finished": float,
            "status": str,
            "hits": int,
            "computed": int,
            "hit_keys": bytes,
            "written_keys": bytes,
        },
        pk="id",
        not_null={"kind", "label", "owner", "started", "status", "hits", "computed"},
        defaults={"label": "", "hits": 0, "computed": 0},
    )
    db.table("pins").create({"key": str, "created": float}, pk="key", not_null={"created"})
    # WITHOUT ROWID: a claim rewrites one b-tree page instead of a table page plus its key
    # index (measured: 36 -> 22 us per single-key claim transaction)
    db.execute(
        "CREATE TABLE leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "expires REAL NOT NULL) WITHOUT ROWID"
    )
    db.table("blobs").add_column("tag", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_create_v1, _create_v2]
"""``MIGRATIONS[i]`` migrates a store from schema version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this incgraph writes."""
