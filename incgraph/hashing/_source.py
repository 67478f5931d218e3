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

References. The same AST yields the global names the function loads and the
dotted chains rooted at them (``helpers.clean``), which ``_code`` resolves
through the function's ``__globals__``.
"""

from __future__ import annotations

import ast
import copy
import linecache
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType, FunctionType
from typing import Any

__all__ = ["Definition", "find_definition", "normalized_dump"]

_DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_Span = tuple[tuple[Any, Any], tuple[Any, Any]]


@dataclass(frozen=True)
class Definition:
    """A function's definition as found in its (verified) source file."""

    dump: str
    names: frozenset[str]
    chains: frozenset[tuple[str, ...]]


@dataclass(frozen=True)
class _Module:
    source: str
    code: CodeType | None
    defs: dict[int, list[Any]]


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
            return Definition(normalized_dump(node), *_references(node))
    return None


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
    module = _Module(source, code, defs)
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


def _chain(node: ast.Attribute) -> tuple[str, ...] | None:
    parts = [node.attr]
    value: ast.expr = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if isinstance(value, ast.Name):
        parts.append(value.id)
        return tuple(reversed(parts))
    return None


def _without_annotations(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` except those inside annotations.

    Annotations name types (often other processors or layers) without running them, so
    they are part of the normalized source but are not followed as code dependencies:
    otherwise editing an upstream layer would change every reader's code version.
    """
    out: list[ast.AST] = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        for field, value in ast.iter_fields(current):
            if field in ("annotation", "returns") or (
                isinstance(current, ast.AnnAssign) and field == "annotation"
            ):
                continue
            if isinstance(value, ast.AST):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.AST))
    return out


def _references(node: ast.AST) -> tuple[frozenset[str], frozenset[tuple[str, ...]]]:
    names: set[str] = set()
    chains: set[tuple[str, ...]] = set()
    for child in _without_annotations(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            chain = _chain(child)
            if chain is not None:
                chains.add(chain)
    return frozenset(names), frozenset(chains)
