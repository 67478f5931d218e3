"""docs/api.md documents every public name, and no docstring or page uses a raw Sphinx role."""

from __future__ import annotations

import re
from pathlib import Path

import incgraph
from incgraph import errors as error_module

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:class|func|meth|data|mod|attr|exc|obj):`")


def test_api_page_names_every_public_name() -> None:
    """Each name in incgraph.__all__ has a `::: incgraph.NAME` entry (errors via incgraph.errors)."""
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: incgraph\.(\w+)$", page, re.M))
    errors = set(error_module.__all__) if "errors" in documented else set()
    missing = [
        name
        for name in incgraph.__all__
        if name != "__version__" and name not in documented and name not in errors
    ]
    assert missing == []


def test_no_sphinx_roles_in_docstrings_or_pages() -> None:
    """The docs render markdown: no `:class:`-style role is left to show up raw."""
    files = [*(ROOT / "incgraph").rglob("*.py"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ROLE.search(line)
    ]
    assert found == []
