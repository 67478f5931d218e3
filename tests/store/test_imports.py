"""The store package imports cleanly: no cycles, no deferred imports, maintenance on protocols."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import incgraph

PACKAGE = Path(incgraph.__file__).parent
STORE_MODULES = sorted(p.stem for p in (PACKAGE / "store").glob("*.py") if p.stem != "__init__")
MAINTENANCE = ["budget", "garbage", "usage", "verification"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The incgraph modules (or names in them) an import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, *, deferred: bool) -> list[tuple[int, str]]:
    """(line, name) of the incgraph imports of a module: at module level (outside
    ``if TYPE_CHECKING``), or, with ``deferred``, those inside functions."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function == deferred:
                found.extend((child.lineno, name) for name in _imported(child))
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return [(line, name) for line, name in found if name.split(".")[0] == "incgraph"]


def _graph(packages: list[str]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports at module level."""
    paths = {
        _module_name(path): path
        for package in packages
        for path in (PACKAGE / package).rglob("*.py")
    }
    return {
        name: {imported for _, imported in _imports(path, deferred=False) if imported in paths}
        - {name}
        for name, path in paths.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (package ``__init__`` modules aside), or None."""
    inits = {name for name in graph if (PACKAGE.parent / name.replace(".", "/")).is_dir()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for after in sorted(graph[name] - inits):
            if state.get(after) == 1:
                return [*path[path.index(after) :], after]
            if after not in state and (found := visit(after)) is not None:
                return found
        state[name] = 2
        path.pop()
        return None

    for name in sorted(set(graph) - inits):
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


@pytest.mark.parametrize("module", STORE_MODULES)
def test_each_store_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """Importing any one store module first, in a new interpreter, succeeds."""
    done = subprocess.run(
        [sys.executable, "-c", f"import incgraph.store.{module}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_store_has_no_deferred_imports_of_incgraph_modules() -> None:
    """No function in incgraph/store imports an incgraph module (a dodged cycle)."""
    deferred = {
        f"{module}.py:{line} {name}"
        for module in STORE_MODULES
        for line, name in _imports(PACKAGE / "store" / f"{module}.py", deferred=True)
    }
    assert deferred == set()


def test_store_and_queues_import_without_cycles() -> None:
    """The module-level imports of store/ and queues/ form no cycle."""
    assert _cycle(_graph(["store", "queues"])) is None


def test_the_store_imports_no_front_end() -> None:
    """store/ imports nothing from the front-ends, the engine or the command line."""
    above = ("incgraph.queues", "incgraph.flow", "incgraph.run", "incgraph.cli", "incgraph.graph")
    found = {
        f"{module}: {name}"
        for module in STORE_MODULES
        for _, name in _imports(PACKAGE / "store" / f"{module}.py", deferred=False)
        if name.startswith(above)
    }
    assert found == set()


@pytest.mark.parametrize("module", MAINTENANCE)
def test_maintenance_depends_on_the_store_protocols_not_the_store(module: str) -> None:
    """gc, verify, stats/clear and the budget never import the Store class, even for typing."""
    tree = ast.parse((PACKAGE / "store" / f"{module}.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n.lineno for n in imports if "incgraph.store.store" in _imported(n)]


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above would see a cycle: a -> b -> a is reported."""
    assert _cycle({"incgraph.x.a": {"incgraph.x.b"}, "incgraph.x.b": {"incgraph.x.a"}}) == [
        "incgraph.x.a",
        "incgraph.x.b",
        "incgraph.x.a",
    ]
