"""A real, temporary PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temp folder.

The session fixture ``postgres_server`` (tests/conftest.py) starts one cluster on a free
localhost port and stops it at the end; ``postgres_url`` gives each test a schema of its
own in it (``search_path`` set through the URL), so tests never see each other's tables.

``initdb`` refuses to run as root: as root the cluster is made and run by an unprivileged
user (``postgres`` if it exists, else ``nobody``) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresServer", "find_binary"]


def find_binary(name: str) -> str | None:
    """The path of a PostgreSQL server program: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major)
    return candidates[-1] if candidates else None


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unprivileged_user() -> str | None:
    """As root: the user to run the server as; otherwise None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresServer:
    """A throw-away PostgreSQL cluster listening on localhost."""

    def __init__(self) -> None:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError(
                "the PostgreSQL server programs (initdb, pg_ctl) are not installed: "
                "apt-get install postgresql (the tests of the PostgreSQL store need a real server)"
            )
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.user = _unprivileged_user()
        self.folder = Path(tempfile.mkdtemp(prefix="incgraph-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        self.url = f"postgresql://incgraph@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = [] if self.user is None else ["runuser", "-u", self.user, "--"]
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresServer:
        """Create the cluster (trust auth, user ``incgraph``) and start it; wait until it is up."""
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "incgraph", "-E", "UTF8")
        settings = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c full_page_writes=off -c max_connections=400"
        )
        log = str(self.folder / "server.log")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", settings, "-l", log, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def new_schema_url(self) -> str:
        """The URL of a new, empty schema of its own (``search_path`` set in the URL)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"
