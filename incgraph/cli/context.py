"""What every command gets: its arguments, its output streams, and the store, opened once.

Design note
-----------
A command never creates a store: ``incgraph ls`` in the wrong folder says
there is no store there (a usage error) instead of leaving an empty
``.incgraph`` behind. Inspection commands (``ls``, ``show``, ``lineage``,
``stats``, ``runs``, ``explain``) open the store read-only: they write
nothing, work on a read-only mount, and refuse a folder whose
``index.sqlite`` is not incgraph's without touching it. Commands that change
the store (``gc``, ``verify``, ``clear``, ``pin``, ``unpin``) open it
writable (upgrading an older store in place), or read-only when its folder
cannot be written, where they report what they would do.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import IO, Any

from incgraph.store import ENV_VAR, Store, default_location, open_store
from incgraph.store.object_blobs import is_object_url
from incgraph.store.postgres_database import is_postgres_url
from incgraph.store.store import (
    INDEX_FILE,
    folder_is_writable,
    remote_index_folder,
    why_no_store,
)

__all__ = ["Context", "UsageError"]


class UsageError(Exception):
    """Bad arguments, an unknown key, no store: the command exits with code 2."""

    def __init__(self, message: str, *, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class Context:
    """One command's arguments, output streams and (lazily opened) store."""

    def __init__(self, args: argparse.Namespace, out: IO[str], err: IO[str]) -> None:
        self.args = args
        self.out = out
        self.err = err
        self._store: Store | None = None

    @property
    def as_json(self) -> bool:
        """Whether ``--json`` was given."""
        return bool(getattr(self.args, "json", False))

    @property
    def given(self) -> str | None:
        """``--store``, else ``$INCGRAPH_STORE`` (a folder or a URL), else None."""
        return getattr(self.args, "store", None) or os.environ.get(ENV_VAR) or None

    @property
    def location(self) -> Path:
        """The store folder: ``--store`` or the default (an ``s3://`` URL's local index folder)."""
        given = self.given
        if is_object_url(given) and not str(given).startswith("file://"):
            return remote_index_folder(str(given))
        return Path(given).expanduser().absolute() if given else default_location()

    @property
    def store(self) -> Store:
        """The store, opened on first use; a usage error if there is none."""
        if self._store is None and is_postgres_url(self.given):
            self._store = self._open_postgres(str(self.given))
        if self._store is None:
            folder = self.location
            if not (folder / INDEX_FILE).is_file():
                raise UsageError(
                    f"there is no incgraph store at {folder} ({why_no_store(folder)}); "
                    "pass --store PATH or set $INCGRAPH_STORE"
                )
            writes = bool(getattr(self.args, "writes", False))
            read_only = not (writes and folder_is_writable(folder))
            if writes and read_only:
                self.warn(
                    f"note: {folder} cannot be written (a read-only mount or missing "
                    "permission): it is opened read-only and nothing in it is changed"
                )
            self._store = open_store(folder, read_only=read_only)
        return self._store

    def _open_postgres(self, url: str) -> Store:
        """The PostgreSQL store at ``url`` with its blobs in ``--blobs`` (never created here)."""
        blobs = getattr(self.args, "blobs", None)
        if not blobs:
            raise UsageError(
                "a PostgreSQL store needs --blobs PATH too: the folder holding its results' bytes"
            )
        read_only = not getattr(self.args, "writes", False)
        return open_store(url, blobs=blobs, read_only=read_only)

    def print(self, text: str = "") -> None:
        """Write a line to standard output."""
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        """Write a line to standard error."""
        self.err.write(text + "\n")

    def emit_json(self, data: Any) -> None:
        """Print ``data`` as indented JSON."""
        self.print(json.dumps(data, indent=2, sort_keys=False, default=str))

    def key(self, prefix: str) -> str:
        """The stored key that ``prefix`` uniquely starts (usage error otherwise)."""
        try:
            return self.store.resolve(prefix)
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None
