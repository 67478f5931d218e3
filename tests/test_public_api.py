"""The public surface: re-exports only, sorted, each name importable and documented."""

from __future__ import annotations

import importlib
import subprocess
import sys

import incgraph


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted the way ruff (RUF022) sorts it and every name in it exists."""

    def isort_style(name: str) -> tuple[int, str]:  # CONSTANTS, then Classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(incgraph.__all__) == sorted(incgraph.__all__, key=isort_style)
    for name in incgraph.__all__:
        assert hasattr(incgraph, name), name


def test_public_names_have_docstrings() -> None:
    """Every exported class and function says what it is for."""
    for name in incgraph.__all__:
        obj = getattr(incgraph, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"incgraph.{name} has no docstring"


def test_seed_module_spellings() -> None:
    """Seed 003's `process_graph.ProcessGraph` and `process_node.Processor` spellings work."""
    from incgraph import process_graph, process_node

    assert process_graph.ProcessGraph is incgraph.ProcessGraph
    assert process_node.Processor is incgraph.Processor


def test_import_needs_no_optional_extra() -> None:
    """`import incgraph` works with numba, dask and distributed made unimportable."""
    code = (
        "import sys\n"
        "for m in ('numba', 'distributed', 'dask'): sys.modules[m] = None\n"
        "import incgraph, incgraph.parallel, incgraph.executors\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_missing_extra_says_what_to_install() -> None:
    """Asking for a feature whose extra is missing names the pip install line."""
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "from incgraph.errors import ExtraNotInstalledError\n"
        "from incgraph.executors.registry import make\n"
        "try:\n"
        "    make('dask')\n"
        "except ExtraNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'incgraph[dask]'" in out.stdout


def test_every_subpackage_imports() -> None:
    """Each subpackage imports on its own (no circular imports between front-ends)."""
    for mod in ("core", "hashing", "store", "executors", "run", "parallel", "render", "graph"):
        importlib.import_module(f"incgraph.{mod}")


def test_import_is_lazy() -> None:
    """`import incgraph` loads no engine module and no heavy library; names load on first use."""
    code = (
        "import sys, incgraph\n"
        "heavy = ('numpy', 'pandas', 'dask', 'joblib', 'tqdm', 'sqlite_utils', 'sqlite3',\n"
        "         'asyncio', 'incgraph.graph', 'incgraph.flow', 'incgraph.store')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(incgraph.Flow.__module__, 'incgraph.flow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "incgraph.flow.flow True"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name incgraph does not export raises AttributeError naming it, and dir() lists __all__."""
    try:
        incgraph.NoSuchName  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("incgraph.NoSuchName did not raise")
    assert set(incgraph.__all__) <= set(dir(incgraph))


def test_command_start_up_skips_the_engine() -> None:
    """`incgraph --help` and the parser import no engine, front-end or graph module."""
    code = (
        "import sys\n"
        "from incgraph.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('incgraph.graph', 'incgraph.run.engine', 'incgraph.flow',\n"
        "                         'incgraph.render', 'asyncio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_exported_name_has_a_lazy_owner() -> None:
    """The lazy import table and __all__ name the same public names."""
    assert set(incgraph._LAZY) == set(incgraph.__all__) - {"__version__"}
