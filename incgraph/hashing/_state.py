"""State is not code: which module globals and class attributes running code changes.

Design note
-----------
A code version includes the module constants and class attributes a processor
reads *by value*, so that ``THRESHOLD = 0.5 -> 0.6`` invalidates. A value that
running code changes is not a constant, though: a call counter
(``SumInt.calls += 1``), a model loaded lazily onto the class
(``type(self).model = load()``), a memo dict filled by the functions that read
it. Hashing those by value would make every run, or every new process, a miss.

So the source of every function a code version walks is read (once) for the
names it changes:

* *rebound* globals: ``global n`` in its body;
* *rebound* attributes: an attribute stored or deleted on anything but a bare
  ``self`` (``X.calls += 1``, ``cls.x = ...``, ``type(self).model = ...``,
  ``self.__class__.x = ...``, ``setattr(X, "x", ...)``), and globals whose
  attributes it stores (``counter.n += 1`` changes state inside ``counter``);
* *mutated* containers: a subscript store or delete (``MEMO[k] = v``,
  ``self.cache[k] = v``) or a mutating method call (``MEMO.setdefault``,
  ``REGISTRY.append``) on a global or an attribute.

Only the walked code counts, that is, code the processor runs: a name changed
there is state of the computation. A name changed only by other code (a
``set_device()`` the script calls before the run, a decorator filling a
registry at import) is an input to the computation and enters by value. A
rebound name contributes the source of its definition (``calls = 0``, read
from the module's syntax tree) instead of its value; a mutated container
contributes its definition and the code it holds (functions, classes), not
its data.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EMPTY", "ModuleFacts", "StateFacts", "module_facts", "state_facts"]

_MUTATORS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "clear",
        "discard",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popitem",
        "popleft",
        "remove",
        "reverse",
        "rotate",
        "setdefault",
        "sort",
        "update",
    }
)


@dataclass(frozen=True)
class StateFacts:
    """The names one function's code changes when it runs."""

    rebound_globals: frozenset[str] = frozenset()
    mutated_globals: frozenset[str] = frozenset()
    rebound_attrs: frozenset[str] = frozenset()
    mutated_attrs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ModuleFacts:
    """Where a module defines its names, and which of them are built from a set."""

    set_derived: frozenset[str]
    definitions: dict[str, str]
    class_definitions: dict[tuple[str, str], str]


EMPTY: ModuleFacts = ModuleFacts(frozenset(), {}, {})


def module_facts(tree: ast.Module) -> ModuleFacts:
    """Read a module's syntax tree for its top-level definitions.

    Examples
    --------
    >>> facts = module_facts(ast.parse("calls = 0\\nWORDS = list({'a', 'b'})"))
    >>> facts.definitions["calls"], sorted(facts.set_derived)
    ("Assign(targets=[Name(id='calls', ctx=Store())], value=Constant(value=0))", ['WORDS'])
    """
    return ModuleFacts(
        frozenset(_set_derived(tree.body)), _definitions(tree.body), _class_definitions(tree)
    )


def state_facts(node: ast.AST) -> StateFacts:
    """What a function's code (its definition's syntax tree) changes at run time.

    Examples
    --------
    >>> tree = ast.parse("def f():\\n global n\\n n += 1\\n X.calls += 1\\n MEMO[1] = 2")
    >>> facts = state_facts(tree.body[0])
    >>> sorted(facts.rebound_globals), sorted(facts.rebound_attrs), sorted(facts.mutated_globals)
    (['n'], ['calls'], ['MEMO', 'X'])
    """
    collector = _Collector()
    collector.visit(node)
    return StateFacts(
        frozenset(collector.rebound_globals),
        frozenset(collector.mutated_globals),
        frozenset(collector.rebound_attrs),
        frozenset(collector.mutated_attrs),
    )


class _Collector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.rebound_globals: set[str] = set()
        self.mutated_globals: set[str] = set()
        self.rebound_attrs: set[str] = set()
        self.mutated_attrs: set[str] = set()

    def visit_Global(self, node: ast.Global) -> None:
        self.rebound_globals.update(node.names)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if not on_self:
                self.rebound_attrs.add(node.attr)
                self._mutated(node.value)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._mutated(node.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _MUTATORS:
            self._mutated(func.value)
        if (
            isinstance(func, ast.Name)
            and func.id in ("setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            self.rebound_attrs.add(node.args[1].value)
        self.generic_visit(node)

    def _mutated(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.mutated_globals.add(target.id)
        elif isinstance(target, ast.Attribute):
            self.mutated_attrs.add(target.attr)


def _top_statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements that run at module (or class) level, including inside if/try/with blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If | ast.With | ast.For | ast.While):
            yield from _top_statements(stmt.body)
            yield from _top_statements(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _top_statements(block)
            for handler in stmt.handlers:
                yield from _top_statements(handler.body)


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.Assign):
        targets: list[ast.expr] = list(stmt.targets)
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    else:
        return []
    names = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
    return names


def _definitions(body: list[ast.stmt]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for stmt in _top_statements(body):
        for name in _bound_names(stmt):
            found.setdefault(name, []).append(ast.dump(stmt, include_attributes=False))
    return {name: "\n".join(dumps) for name, dumps in found.items()}


def _class_definitions(tree: ast.Module) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = prefix + child.name
                for name, dump in _definitions(child.body).items():
                    out[(qualname, name)] = dump
                stack.append((qualname + ".", child))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                stack.append((prefix + child.name + ".<locals>.", child))
    return out


def _set_derived(body: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for stmt in _top_statements(body):
        value = getattr(stmt, "value", None)
        if value is not None and any(_is_set_node(node) for node in ast.walk(value)):
            out.update(_bound_names(stmt))
    return out


def _is_set_node(node: ast.AST) -> bool:
    if isinstance(node, ast.Set | ast.SetComp):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("set", "frozenset")
    )
