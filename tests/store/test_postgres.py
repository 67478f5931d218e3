"""The PostgreSQL store: the shared contract, plus what only a shared database can get wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.store import Store, open_store

from .contract import StoreContract


class TestPostgresStore(StoreContract):
    """open_store("postgresql://...", blobs=folder) under the shared contract."""

    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> Store:
        return open_store(self.url, blobs=tmp_path / "blobs", create=True)

    @pytest.fixture
    def store(self, tmp_path: Path, _url: None) -> Any:
        made = self.make_store(tmp_path)
        yield made
        made.close()
