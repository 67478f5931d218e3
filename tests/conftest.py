"""Shared fixtures: every store lives in tmp_path; the default store folder is redirected there."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_default_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test may write ./.incgraph in the checkout: point the default store at a temp folder."""
    monkeypatch.setenv("INCGRAPH_STORE", str(tmp_path_factory.mktemp("default-store")))
    # file digests (DataPath's stat shortcut) are remembered in a temp table, not ~/.cache
    monkeypatch.setenv("INCGRAPH_DIGESTS", str(tmp_path_factory.mktemp("digests") / "d.sqlite"))
    # the local indexes of s3:// stores, and no signing key from the caller's environment
    monkeypatch.setenv("INCGRAPH_INDEX_HOME", str(tmp_path_factory.mktemp("indexes")))
    monkeypatch.delenv("INCGRAPH_HMAC_KEY", raising=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3 emulator (moto's server mode) in a separate process on localhost: its endpoint."""
    from s3_server import start_s3_server

    with start_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the emulator, with the AWS_* variables pointing at it: its s3:// URL."""
    from s3_server import make_bucket

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(name, value)
    return make_bucket(s3_server)


# torch is not in the `test` extra (its default wheel is a multi-GB CUDA build); CI installs
# the CPU build (.ci/run). Without torch its test module cannot be collected: say so at the
# end of the run instead of failing the collection or skipping silently.
_TORCH_TESTS = ("test_torch.py",)
_not_collected: list[str] = []


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if collection_path.name in _TORCH_TESTS and importlib.util.find_spec("torch") is None:
        _not_collected.append(str(collection_path))
        return True
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in _not_collected:
        terminalreporter.write_line(
            f"NOT RUN: {path}: torch is not installed (pip install 'incgraph[torch]')",
            yellow=True,
        )


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """A real PostgreSQL server for the session (initdb + pg_ctl in a temp folder), then stopped."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """The URL of an empty schema of its own in the session's PostgreSQL server."""
    return str(postgres_server.new_schema_url())
