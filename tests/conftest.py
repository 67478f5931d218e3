"""Shared fixtures: every store lives in tmp_path; the default store folder is redirected there."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_default_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test may write ./.incgraph in the checkout: point the default store at a temp folder."""
    monkeypatch.setenv("INCGRAPH_STORE", str(tmp_path_factory.mktemp("default-store")))
