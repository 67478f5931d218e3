"""The CLI tests' project: each test module builds a ``template`` folder (a graph file
run once or more), and every test gets its own copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the module's template project for one test."""
    copy = tmp_path / "project"
    shutil.copytree(template, copy)
    return copy
