"""A function's normalized source, checked against the code that is actually loaded.

Design note
-----------
A function's *source fingerprint* is ``ast.dump`` of its definition without
docstrings and without line/column attributes: comments, blank lines,
formatting and docstrings vanish, any change to code does not. Lambdas and
nested functions get their own definition only (the lambda whose body spans
the code's instructions, when several share a line), not the surrounding
statement.

Stale files. ``inspect.getsource`` reads the file *now*, while the function
object runs the code that was imported *then*: a helper edited on disk but not
reloaded would be fingerprinted by code that is not running, and its results
stored under a key that later, fresher code would hit. So the file (as seen by
``linecache``) is recompiled once per content, with the same flags as an
import, and the loaded code object must compare equal (CPython compares
bytecode, constants, names and the line table) to a code object of the
recompiled module. If it does not, the source is not used and the caller falls
back to fingerprinting the bytecode (see ``_code``); the fingerprint then
changes again once the module is reloaded.

Which names a function reads is decided from its code objects (``_scoping``),
not from this source. The module's syntax tree also tells which names its
functions change at run time (``_state``); `facts_for` returns that,
once per file content.

``python -O``. A definition whose source contains ``assert`` or ``__debug__``
behaves differently under ``-O``; `Definition` says so, and the code
version then records the interpreter's optimization level. Other code gets the
same version with and without ``-O``.
"""

from __future__ import annotations

import ast
import copy
import linecache
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType, FunctionType
from typing import Any

from incgraph.hashing._state import EMPTY, ModuleFacts, StateFacts, module_facts, state_facts

__all__ = ["Definition", "facts_for", "find_definition", "normalized_dump"]

_DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_Span = tuple[tuple[Any, Any], tuple[Any, Any]]


@dataclass(frozen=True)
class Definition:
    """A function's definition as found in its (verified) source file."""

    dump: str
    debug_sensitive: bool
    state: StateFacts


@dataclass
class _Module:
    source: str
    code: CodeType | None
    defs: dict[int, list[Any]]
    tree: ast.Module | None
    facts: ModuleFacts | None = None


_MODULES: dict[str, _Module] = {}


def find_definition(fn: FunctionType) -> Definition | None:
    """The normalized definition of ``fn``, or None if no source matches its code."""
    code = fn.__code__
    filename = code.co_filename
    for refresh in (False, True):
        if refresh:
            linecache.checkcache(filename)
        module = _module(filename, fn.__globals__)
        if module is None:
            continue
        compiled = _matching_code(module.code, code)
        if compiled is None:
            continue
        node = _node_for(module, compiled)
        if node is not None:
            return Definition(normalized_dump(node), _debug_sensitive(node), state_facts(node))
    return None


def facts_for(filename: str | None, module_globals: dict[str, Any]) -> ModuleFacts:
    """Where the module in ``filename`` defines its names (``_state``)."""
    if not filename:
        return EMPTY
    linecache.checkcache(filename)  # the file as it is now: a class has no code to compare
    module = _module(filename, module_globals)
    if module is None or module.tree is None:
        return EMPTY
    if module.facts is None:
        module.facts = module_facts(module.tree)
    return module.facts


def _debug_sensitive(node: ast.AST) -> bool:
    return any(
        isinstance(child, ast.Assert) or (isinstance(child, ast.Name) and child.id == "__debug__")
        for child in ast.walk(node)
    )


def _module(filename: str, module_globals: dict[str, Any]) -> _Module | None:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    source = "".join(lines)
    cached = _MODULES.get(filename)
    if cached is not None and cached.source == source:
        return cached
    try:
        tree = ast.parse(source, filename)
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        tree, code = None, None
    defs: dict[int, list[Any]] = {}
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, _DEF_NODES):
            decorators = getattr(node, "decorator_list", None)
            first = decorators[0].lineno if decorators else node.lineno
            defs.setdefault(first, []).append(node)
    module = _Module(source, code, defs, tree)
    _MODULES[filename] = module
    return module


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield const
            yield from _code_objects(const)


def _matching_code(module_code: CodeType | None, code: CodeType) -> CodeType | None:
    if module_code is None:
        return None
    for candidate in _code_objects(module_code):
        if (
            candidate.co_firstlineno == code.co_firstlineno
            and candidate.co_name == code.co_name
            and candidate == code
        ):
            return candidate
    return None


def _node_for(module: _Module, code: CodeType) -> Any:
    candidates = [
        node
        for node in module.defs.get(code.co_firstlineno, [])
        if (isinstance(node, ast.Lambda) and code.co_name == "<lambda>")
        or getattr(node, "name", None) == code.co_name
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    spans: list[_Span] = [
        ((line, col), (end_line, end_col))
        for line, end_line, col, end_col in code.co_positions()
        if line is not None and end_line is not None and end_col
    ]
    covering = [node for node in candidates if _covers(_body_span(node), spans)]
    if not covering:
        return None
    return max(covering, key=lambda node: _body_span(node)[0])


def _body_span(node: Any) -> _Span:
    body = node.body if isinstance(node, ast.Lambda) else node
    return (body.lineno, body.col_offset), (body.end_lineno, body.end_col_offset)


def _covers(span: _Span, inner: list[_Span]) -> bool:
    start, end = span
    return bool(inner) and all(start <= a and b <= end for a, b in inner)


class _StripDocstrings(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:]
        return node


def normalized_dump(node: ast.AST) -> str:
    """``ast.dump`` of a definition without docstrings or positions."""
    stripped = _StripDocstrings().visit(copy.deepcopy(node))
    return ast.dump(stripped, annotate_fields=True, include_attributes=False)
