"""Which names a function's code reads from outside itself, decided by Python's own scoping.

Design note
-----------
A code version follows the *global* names a function loads. Matching names in
the source text would be wrong both ways: a local ``t`` in ``for t in words``
is not the module-level ``t``, and a name bound by ``global n`` looks local in
the text. The compiler has already decided, so the answer is read from the
code objects (the function's and every code object nested in it: lambdas,
comprehensions, inner functions):

* ``LOAD_GLOBAL`` / ``LOAD_NAME`` name a global, and the ``LOAD_ATTR`` /
  ``LOAD_METHOD`` instructions right after one form a dotted chain
  (``helpers.clean``) that the walk resolves through user modules; a global
  loaded on its own (``getattr(helpers, name)``) is recorded as *bare*;
* ``IMPORT_NAME`` / ``IMPORT_FROM`` inside the body (``from helpers import f``
  in ``process``) are imports the walk follows like globals, including chains
  rooted at the local name they bind;
* ``STORE_GLOBAL`` / ``DELETE_GLOBAL`` (``global n; n += 1``) mark a global
  that running code rebinds, ``STORE_DEREF`` of a free variable
  (``nonlocal count``) a closure cell it rebinds, and ``STORE_ATTR`` on
  anything but the first argument (``X.calls += 1``) an attribute it rebinds:
  state, not code. (For code with a source file, ``_state`` reads the same
  from the syntax tree, which also sees containers filled in place.)

Each code object is scanned once (the caller memoizes per function).
"""

from __future__ import annotations

import dis
from dataclasses import dataclass, field
from types import CodeType

__all__ = ["CodeRefs", "ImportRef", "scan"]

_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_LOCAL_STORES = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF"})


@dataclass(frozen=True)
class ImportRef:
    """An import inside a function body and the attribute path read from it.

    ``module`` is imported (relative to the function's package when ``level`` > 0)
    and ``path`` is followed from the module it returns.
    """

    module: str
    level: int
    path: tuple[str, ...] = ()

    def extended(self, attrs: tuple[str, ...]) -> ImportRef:
        return ImportRef(self.module, self.level, self.path + attrs)


@dataclass(frozen=True)
class CodeRefs:
    """What a function's code reads from outside itself, and what it rebinds."""

    names: frozenset[str]
    chains: frozenset[tuple[str, ...]]
    imports: frozenset[ImportRef]
    stored_globals: frozenset[str]
    stored_cells: frozenset[str]
    stored_attrs: frozenset[str]
    bare: frozenset[str] = frozenset()  # globals loaded as values, not as the head of a chain


@dataclass
class _Scan:
    names: set[str] = field(default_factory=set)
    chains: set[tuple[str, ...]] = field(default_factory=set)
    imports: set[ImportRef] = field(default_factory=set)
    stored_globals: set[str] = field(default_factory=set)
    stored_cells: set[str] = field(default_factory=set)
    stored_attrs: set[str] = field(default_factory=set)
    bare: set[str] = field(default_factory=set)


def scan(code: CodeType) -> CodeRefs:
    """The global names, chains, local imports and rebound names of ``code`` and its nested code.

    Examples
    --------
    >>> def f(words):
    ...     return [t.upper() for t in words if t in STOP]
    >>> sorted(scan(f.__code__).names)
    ['STOP']
    """
    out = _Scan()
    _scan_code(code, out, {})
    return CodeRefs(
        frozenset(out.names),
        frozenset(out.chains),
        frozenset(out.imports),
        frozenset(out.stored_globals),
        frozenset(out.stored_cells),
        frozenset(out.stored_attrs),
        frozenset(out.bare),
    )


def _scan_code(code: CodeType, out: _Scan, bound: dict[str, ImportRef]) -> None:
    bound = dict(bound)
    chain: tuple[str, ...] = ()
    chain_ref: ImportRef | None = None  # the chain is rooted at an imported local
    consts: tuple[object, object] = (None, None)
    base: ImportRef | None = None  # the module an import statement returned
    last: ImportRef | None = None  # what the next store binds
    self_name = code.co_varnames[0] if code.co_argcount else None
    previous: dis.Instruction | None = None
    for ins in dis.get_instructions(code):
        op, arg = ins.opname, ins.argval
        on_self = previous is not None and previous.opname == "LOAD_FAST"
        on_self = on_self and previous is not None and previous.argval == self_name
        previous = ins
        if op in ("STORE_ATTR", "DELETE_ATTR") and not on_self:
            out.stored_attrs.add(str(arg))
        if op in _ATTR_OPS and (chain or chain_ref is not None):
            chain += (arg,)
            continue
        _flush(out, chain, chain_ref)
        chain, chain_ref = (), None
        if op in _GLOBAL_LOADS:
            out.names.add(arg)
            chain = (arg,)
        elif op in _LOCAL_LOADS and arg in bound:
            chain_ref = bound[arg]
        elif op == "LOAD_CONST":
            consts = (consts[1], arg)
        elif op == "IMPORT_NAME":
            level, fromlist = consts
            name = str(arg)
            base = ImportRef(name if fromlist else name.partition(".")[0], _level(level))
            last = None if fromlist else base
        elif op == "IMPORT_FROM" and base is not None:
            # ``from m import x`` reads x from m; ``import a.b as c`` walks a.b from a
            last = base.extended((str(arg),)) if last is None else last.extended((str(arg),))
        elif op in _LOCAL_STORES or op == "STORE_GLOBAL":
            if last is not None:
                out.imports.add(last)
                if op != "STORE_GLOBAL":
                    bound[str(arg)] = last
                last = None
            if op == "STORE_GLOBAL":
                out.stored_globals.add(str(arg))
            elif op == "STORE_DEREF" and arg in code.co_freevars:
                out.stored_cells.add(str(arg))
        elif op == "DELETE_GLOBAL":
            out.stored_globals.add(str(arg))
        elif op == "DELETE_DEREF" and arg in code.co_freevars:
            out.stored_cells.add(str(arg))
    _flush(out, chain, chain_ref)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _scan_code(const, out, bound)


def _level(value: object) -> int:
    return value if isinstance(value, int) else 0


def _flush(out: _Scan, chain: tuple[str, ...], ref: ImportRef | None) -> None:
    if ref is not None:
        out.imports.add(ref.extended(chain))
    elif len(chain) > 1:
        out.chains.add(chain)
    elif chain:
        out.bare.add(chain[0])
