"""``incgraph explain FILE.py``: what a run of the graphs a Python file defines would do, and why.

Design note
-----------
The file's module-level code runs as ``python FILE.py`` would run it, as the
module ``__main__`` (so processors get the same code versions, hence the same
cache keys, as when the script runs), except that every top-level ``if
__name__ == "__main__":`` block (where scripts start their runs) is cut out of
its syntax tree first: the guard. The module stays installed as
``sys.modules["__main__"]``, with the file's folder on ``sys.path``, while the
plan is made (code versions read the processors' source through it), and the
caller's are restored afterwards. Every
`ProcessGraph` in the file's globals is explained (or
only the one named by ``--graph``), for the nodes named by ``--target`` (a
global variable bound to a node, a node id or a node label) or else for its
sinks (the nodes no other node reads).

The plan is decided by the run's own decide step with a read-only look-up
(`incgraph.run.explain`): nothing is computed, loaded or claimed.
Module-level code that itself runs the graph still runs: keep it under the
``__main__`` guard.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incgraph.cli.browse import SHORT
from incgraph.cli.context import Context, UsageError
from incgraph.cli.tables import table

if TYPE_CHECKING:  # the engine is imported when a command needs it, not at start-up
    from incgraph.core.graph import Node
    from incgraph.core.plan import Plan
    from incgraph.graph import ProcessGraph

__all__ = [
    "choose_targets",
    "find_graphs",
    "graph_file",
    "plan_for",
    "register",
    "without_main_blocks",
]


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``explain`` to ``commands``."""
    explain = commands.add_parser(
        "explain", parents=[parent], help="what a run of a graph file would compute, and why"
    )
    explain.add_argument("file", help="a Python file defining a ProcessGraph at module level")
    explain.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="variable, node id or label to explain (repeatable; default: the sinks)",
    )
    explain.add_argument("--graph", metavar="VARIABLE", help="only the graph in this variable")
    explain.set_defaults(run=cmd_explain)


def _is_main_guard(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def without_main_blocks(source: str, filename: str) -> types.CodeType:
    r"""The module's code with every top-level ``if __name__ == "__main__":`` block removed.

    Examples
    --------
    >>> code = without_main_blocks("x = 1\nif __name__ == '__main__':\n    x = 2\n", "f.py")
    >>> scope = {"__name__": "__main__"}
    >>> exec(code, scope)
    >>> scope["x"]
    1
    """
    tree = ast.parse(source, filename)
    tree.body = [
        stmt for stmt in tree.body if not (isinstance(stmt, ast.If) and _is_main_guard(stmt.test))
    ]
    return compile(tree, filename, "exec", dont_inherit=True)  # not our __future__ flags


@contextlib.contextmanager
def graph_file(path: Path) -> Iterator[dict[str, Any]]:
    """Run the file's module-level code as ``__main__`` (minus its main blocks); yield its globals.

    While the context lasts, the module is ``sys.modules["__main__"]`` and the
    file's folder is first on ``sys.path``; both are restored on exit.
    """
    path = path.absolute()
    try:
        code = without_main_blocks(path.read_text(encoding="utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a Python file this Python can read: {exc}") from None
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    module.__dict__["__builtins__"] = __builtins__
    saved_main, saved_argv = sys.modules.get("__main__"), sys.argv
    folder = str(path.parent)
    sys.path.insert(0, folder)
    sys.modules["__main__"] = module
    sys.argv = [str(path)]  # the file sees itself run without arguments, as `python FILE`
    try:
        _run_module_code(code, module, path)
        yield module.__dict__
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        sys.argv = saved_argv
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _run_module_code(code: types.CodeType, module: types.ModuleType, path: Path) -> None:
    """Run the file's module-level code; its failure is the user's to fix, not a traceback.

    A flow the file defines is not run: ``if flow := MyFlow(): flow()`` sees a false flow.
    """
    from incgraph.flow.flow import loading_only

    try:
        with loading_only():
            exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        line = _failing_line(exc, str(path))
        raise UsageError(
            f"running the module-level code of {path}{line} failed: "
            f"{type(exc).__name__}: {exc}; the command runs that code to find the graph, so "
            "keep runs, argument parsing and other work under `if __name__ == '__main__':`"
        ) from None


def _failing_line(exc: BaseException, filename: str) -> str:
    """`` (line N)`` of the deepest frame of the traceback that is in ``filename``."""
    line = ""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = f" (line {tb.tb_lineno})"
        tb = tb.tb_next
    return line


def find_graphs(namespace: dict[str, Any], variable: str | None) -> list[tuple[str, ProcessGraph]]:
    """(variable name, graph) for every distinct ProcessGraph in ``namespace``."""
    from incgraph.graph import ProcessGraph

    if variable is not None:
        graph = namespace.get(variable)
        if not isinstance(graph, ProcessGraph):
            raise UsageError(f"the file has no ProcessGraph in a variable named {variable!r}")
        return [(variable, graph)]
    found: dict[int, tuple[str, ProcessGraph]] = {}
    for name, value in namespace.items():
        if isinstance(value, ProcessGraph) and id(value) not in found:
            found[id(value)] = (name, value)
    return list(found.values())


def choose_targets(graph: ProcessGraph, namespace: dict[str, Any], names: list[str]) -> list[Node]:
    """The nodes ``--target`` names (variables, ids or labels), else the graph's sinks."""
    from incgraph.core.graph import Node

    nodes = list(graph)
    if not names:
        read = {up for node in nodes for up in node.upstream()}
        return [node for node in nodes if node not in read]
    chosen = []
    for name in names:
        value = namespace.get(name)
        if isinstance(value, Node) and value.graph is graph:
            chosen.append(value)
            continue
        match = [n for n in nodes if str(n.id) == name or n.label == name]
        if not match:
            raise UsageError(
                f"--target {name!r} is neither a variable holding a node of this graph nor "
                "a node id or label in it"
            )
        chosen += match
    return chosen


def cmd_explain(ctx: Context) -> int:
    """Print the plan of each graph the file defines."""
    path = Path(ctx.args.file)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    with graph_file(path) as namespace:
        return _explain(ctx, path, namespace)


def graphs_of_file(ctx: Context, path: Path, namespace: dict[str, Any]) -> list[Any]:
    """The ``(name, graph)`` pairs the file defines (``--graph`` picks one), or a usage error."""
    graphs = find_graphs(namespace, ctx.args.graph)
    flows = _flows(namespace)
    if not graphs and flows:
        raise UsageError(
            f"{path} defines a flow ({', '.join(flows)}), not a ProcessGraph; the flow was not "
            f"run. See what its runs stored with `incgraph ls --node '{flows[0]}/*'` and draw "
            "it with flow.render() or flow.draw()"
        )
    pipelines = _pipelines(namespace)
    if not graphs and pipelines:
        raise UsageError(
            f"{path} defines a queue pipeline ({', '.join(pipelines)}), not a ProcessGraph; "
            "this command reads graphs only. See what its runs stored with `incgraph ls` and draw "
            f"it with {pipelines[0]}.draw()"
        )
    if not graphs:
        raise UsageError(
            f"{path} defines no ProcessGraph at module level; create one there "
            "(e.g. `graph = ProcessGraph(...)`) and keep runs under `if __name__ == '__main__':`"
        )
    return graphs


def _pipelines(namespace: dict[str, Any]) -> list[str]:
    """Names of the queue pipelines the file defines (only if it imported incgraph's queues)."""
    if "incgraph.queues.pipeline" not in sys.modules:
        return []
    from incgraph.queues.pipeline import Pipeline

    return sorted(name for name, value in namespace.items() if isinstance(value, Pipeline))


def _flows(namespace: dict[str, Any]) -> list[str]:
    """Names of the Flow subclasses the file defines (only if it imported incgraph's flows)."""
    if "incgraph.flow.flow" not in sys.modules:
        return []
    from incgraph.flow.flow import Flow

    return sorted(
        name
        for name, value in namespace.items()
        if isinstance(value, type) and issubclass(value, Flow) and value is not Flow
    )


def _explain(ctx: Context, path: Path, namespace: dict[str, Any]) -> int:
    graphs = graphs_of_file(ctx, path, namespace)
    results = []
    for name, graph in graphs:
        targets = choose_targets(graph, namespace, ctx.args.target)
        store, found = plan_for(ctx, graph, targets)
        results.append((name, graph, targets, store, found))
    if ctx.as_json:
        ctx.emit_json(
            [_plan_json(name, targets, store, found) for name, _, targets, store, found in results]
        )
        return 0
    for i, (name, _, targets, store, found) in enumerate(results):
        if i:
            ctx.print()
        _print_plan(ctx, path, name, targets, store, found)
    return 0


def plan_for(ctx: Context, graph: ProcessGraph, targets: list[Node]) -> tuple[Any, Plan]:
    """(store, plan) of a run up to ``targets``: against ``--store`` if given, else the graph's."""
    from incgraph.run.explain import explain

    if getattr(ctx.args, "store", None) is None:
        return graph.store, graph.explain(targets)
    store = ctx.store
    order = graph.topological_sort(targets)
    return store, explain(store, order)


def _plan_json(name: str, targets: list[Node], store: Any, found: Plan) -> dict[str, Any]:
    return {
        "graph": name,
        "store": None if store.path is None else str(store.path),
        "targets": [t.label for t in targets],
        "decisions": [d.__dict__ for d in found],
    }


def _print_plan(
    ctx: Context, path: Path, name: str, targets: list[Node], store: Any, found: Plan
) -> None:
    where = "memory" if store.path is None else str(store.path)
    ctx.print(
        f"graph `{name}` in {path} (store {where}); targets: "
        + (", ".join(t.describe() for t in targets) or "(none)")
    )
    rows = [[d.node, d.name, d.action, d.reason, (d.key or "-")[:SHORT]] for d in found.decisions]
    if rows:
        ctx.print(table(["NODE", "NAME", "ACTION", "REASON", "KEY"], rows))
    ctx.print(f"{found.summary()} (computed unless an input comes out unchanged)")
