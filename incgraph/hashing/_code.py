"""Code versions: fingerprints of processors and functions, and what they follow.

Design note
-----------
A code version is ``combine("CodeVersion", fingerprint(obj), data_version(version))``.

The *fingerprint* is a hash of the sorted set of *entries* collected by walking
from ``obj`` through everything its code can reach. ``docs/hashing.md`` lists
what enters; in short:

* a user function contributes its normalized source (``_source``), or, when no
  source matches the loaded code (exec'd code, a REPL, a file edited since
  import), its bytecode, tagged with the interpreter's cache tag; plus its
  defaults and closure cells by value;
* a user class contributes each user class in its MRO and its metaclass: its
  methods (plain, static, class, property accessors, cached properties,
  ``singledispatchmethod``), nested classes and other class attributes by
  value;
* the global names a function's code loads are decided by the compiler
  (``_scoping``: ``LOAD_GLOBAL``, not names in the source text) and resolved
  through ``__globals__``, dotted chains (``helpers.clean``) through user
  modules, and imports inside the body are followed the same way;
* every value reached gets a *token* (`token`): simple data its
  data version; user functions and classes their own entry (and they are
  walked in turn); library callables and types their ``module.qualname`` (not
  their package's version: declare that through ``Processor.packages``);
  partials, bound methods, containers and instances of user classes their
  parts, recursively; numpy values and anything else ``data_version`` knows
  their data version. A value with no token stops the walk with a
  ``HashingError`` naming the name and the fixes, unless it is on the short
  allowlist (``_values.allowlisted``) or the root names it in ``code_ignore``;
* names and attributes that running code rebinds or fills (``_state``) are
  state, not code: their definition's source enters, not their value;
* for a processor, the user classes named in ``process``'s parameter
  annotations are walked too: the consumer of a ``Rect`` depends on
  ``Rect.area``'s code even when an upstream recompute gives equal fields.

Memo. Walking parses source, so each function's analysis is cached in a
``WeakKeyDictionary`` (valid while ``fn.__code__`` is the same object), and
each root's fingerprint is cached together with the list of lookups the walk
made (namespace, name, object found). A later call re-checks those lookups by
identity, a few dict accesses per reference, and walks again only if one of
them changed: redefining a helper or a constant in a notebook cell invalidates
every processor that uses it even though the processor class itself is the
same object. In-place changes to an object found by a lookup are not seen by
that re-check within one process; a new process sees them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import sys
import threading
import typing
from collections import deque
from collections.abc import Callable, Mapping
from types import CellType, CodeType, FunctionType, MethodType, ModuleType, SimpleNamespace
from typing import Any, Final
from weakref import WeakKeyDictionary

from incgraph.errors import HashingError
from incgraph.hashing._data import data_version
from incgraph.hashing._scheme import combine
from incgraph.hashing._scoping import CodeRefs, ImportRef, scan
from incgraph.hashing._source import facts_for, find_definition
from incgraph.hashing._state import ModuleFacts, StateFacts
from incgraph.hashing._usercode import is_user_module, is_user_object
from incgraph.hashing._values import (
    OPERATOR_CALLABLES,
    PLAIN_DATA_CHECK_LIMIT,
    allowlisted,
    instance_state,
    is_plain_data,
    is_simple,
    library_global,
    pure_python,
    special_token,
)
from incgraph.sentinels import MISSING

__all__ = ["code_version", "fingerprint", "is_plain_data", "is_simple", "label"]

_SKIPPED_CLASS_ATTRS: Final = frozenset(
    {
        "__dict__",
        "__doc__",
        "__module__",
        "__qualname__",
        "__weakref__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
        "__slots__",
        "__orig_bases__",
        "__parameters__",
        "__abstractmethods__",
        "_abc_impl",
        "__slotnames__",
    }
)
# A processor's ``release()`` and ``resource`` decide when instances are dropped, never
# what ``process`` returns: editing them must not recompute anything.
_LIFECYCLE_ATTRS: Final = frozenset({"release", "resource"})
_MAX_DEPTH: Final = 40
_FIX: Final = (
    "pass it to the node as an input, list the name in the processor's code_ignore "
    "if it cannot change results, or make its type hashable (incgraph.register_hasher)"
)


def label(obj: object) -> str:
    """``module.qualname`` of a function or class."""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"{getattr(obj, '__module__', None)}.{qualname}"


# -- per-function analysis ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Analysis:
    code: CodeType
    entry: str
    refs: CodeRefs
    facts: ModuleFacts
    state: StateFacts


_ANALYSES: WeakKeyDictionary[FunctionType, _Analysis] = WeakKeyDictionary()


def _analyse(fn: FunctionType) -> _Analysis:
    cached = _ANALYSES.get(fn)
    if cached is not None and cached.code is fn.__code__:
        return cached
    definition = find_definition(fn)
    refs = scan(fn.__code__)
    if definition is not None:
        entry = f"source {label(fn)} {combine('Source', definition.dump)}"
        if definition.debug_sensitive:  # assert / __debug__ behave differently under -O
            entry += f" optimize={int(bool(sys.flags.optimize))}"
        state = definition.state
    else:
        entry = f"bytecode {label(fn)} {data_version(_code_tuple(fn.__code__))}"
        state = StateFacts(rebound_globals=refs.stored_globals, rebound_attrs=refs.stored_attrs)
    facts = facts_for(fn.__code__.co_filename, fn.__globals__)
    analysis = _Analysis(fn.__code__, entry, refs, facts, state)
    _ANALYSES[fn] = analysis
    return analysis


def _code_tuple(code: CodeType) -> tuple[object, ...]:
    consts = tuple(_code_tuple(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    return (
        sys.implementation.cache_tag,
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
    )


def _class_facts(klass: type) -> ModuleFacts:
    module = sys.modules.get(klass.__module__)
    filename = getattr(module, "__file__", None)
    namespace = getattr(module, "__dict__", {})
    return facts_for(filename if isinstance(filename, str) else None, namespace)


def _defaults(fn: FunctionType) -> list[tuple[str, object]]:
    code = fn.__code__
    out: list[tuple[str, object]] = []
    defaults = fn.__defaults__ or ()
    first = code.co_argcount - len(defaults)
    out.extend((code.co_varnames[first + i], value) for i, value in enumerate(defaults))
    out.extend(sorted((fn.__kwdefaults__ or {}).items()))
    return out


# -- the walk ------------------------------------------------------------------------


class _Walk:
    """Collects a root's entries and the lookups that justify them."""

    def __init__(self, root: object, seed: StateFacts | None = None) -> None:
        self.root = root
        self.ignore = _code_ignore(root)
        seed = seed or StateFacts()
        # names the walked code changes at run time (grown as functions are visited), and
        # the names taken by value meanwhile: a name in both means the walk must be redone
        self.rebound_globals, self.mutated_globals = (
            set(seed.rebound_globals),
            set(seed.mutated_globals),
        )
        self.rebound_attrs, self.mutated_attrs = set(seed.rebound_attrs), set(seed.mutated_attrs)
        self.by_value: set[tuple[str, str, bool]] = set()  # (kind, name, is code)
        self.entries: set[str] = set()
        self.errors: list[str] = []
        self.lookups: list[tuple[Mapping[str, Any], str, object]] = []
        self.cells: list[tuple[CellType, object]] = []
        self.codes: list[tuple[FunctionType, CodeType, object, object]] = []
        self.class_keys: list[tuple[Mapping[str, Any], tuple[str, ...]]] = []

        self.recorded: set[tuple[int, str]] = set()
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.todo: list[object] = []

    def state_found(self) -> StateFacts:
        return StateFacts(
            frozenset(self.rebound_globals),
            frozenset(self.mutated_globals),
            frozenset(self.rebound_attrs),
            frozenset(self.mutated_attrs),
        )

    def consistent(self) -> bool:
        """Whether no name was taken by value before code that changes it was found."""
        for kind, name, code in self.by_value:
            state = self.global_state(name) if kind == "global" else self.attr_state(name)
            if state == "rebound" or (state == "mutated" and not code):
                return False
        return True

    def global_state(self, name: str) -> str | None:
        if name in self.rebound_globals:
            return "rebound"
        return "mutated" if name in self.mutated_globals else None

    def attr_state(self, name: str) -> str | None:
        if name in self.rebound_attrs:
            return "rebound"
        return "mutated" if name in self.mutated_attrs else None

    def run(self) -> _Walk:
        """Walk everything the root reaches (errors are kept for `result`)."""
        root = self.root
        if isinstance(root, FunctionType | type):
            self.todo.append(root)
            self.follow_annotations(root)
        else:
            self.depend(root, "the callable itself")
        while self.todo:
            self.visit(self.todo.pop())
        self.seen.clear()
        self.recorded.clear()
        return self

    def result(self) -> str:
        """The fingerprint, or the `HashingError` listing what could not be fingerprinted."""
        if self.errors:
            raise HashingError("; ".join(sorted(set(self.errors))))
        return combine("CodeFingerprint", label(self.root), *sorted(self.entries))

    def first_visit(self, obj: object) -> bool:
        if id(obj) in self.seen:
            return False
        self.seen.add(id(obj))
        return True

    def visit(self, obj: object) -> None:
        if isinstance(obj, FunctionType):
            if self.first_visit(obj):
                self.visit_function(obj)
        elif isinstance(obj, type):
            metaclass: type = type(obj)
            for klass in (*obj.__mro__, *metaclass.__mro__):
                user = klass not in (object, type) and is_user_object(klass)
                if user and self.first_visit(klass):
                    self.visit_class(klass)

    # -- functions ---------------------------------------------------------------

    def visit_function(self, fn: FunctionType) -> None:
        analysis = _analyse(fn)
        self.codes.append((fn, analysis.code, fn.__defaults__, fn.__kwdefaults__))
        self.entries.add(analysis.entry)
        refs, facts, where = analysis.refs, analysis.facts, label(fn)
        state = analysis.state
        self.rebound_globals |= state.rebound_globals | refs.stored_globals
        self.mutated_globals |= state.mutated_globals
        self.rebound_attrs |= state.rebound_attrs
        self.mutated_attrs |= state.mutated_attrs
        namespace = fn.__globals__
        for name in refs.names:
            self.resolve(namespace, (name,), f"{where}:{name}", facts)
        for chain in refs.chains:
            self.resolve(namespace, chain, f"{where}:{'.'.join(chain)}", facts)
        bare = refs.bare | {chain[0] for chain in refs.chains if chain[1:] == ("__dict__",)}
        for name in bare:
            module = namespace.get(name)
            if isinstance(module, ModuleType) and is_user_module(module):
                self.whole_module(module.__dict__, f"{where}:{name}")
        if refs.names & _NAMESPACE_READERS and is_user_module(sys.modules.get(fn.__module__)):
            self.whole_module(namespace, f"{where}:<globals>")  # eval, exec, globals()
        for ref in refs.imports:
            self.resolve_import(fn, ref, where)
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            cell_where = f"{where}:<cell {name}>"
            if name in self.ignore:
                self.entries.add(f"ignored {cell_where}")
            elif name in refs.stored_cells:
                self.state(cell_where, None)
            else:
                contents = _cell_contents(cell)
                self.cells.append((cell, contents))
                self.depend(contents, cell_where)
        for name, value in _defaults(fn):
            if name in self.ignore:
                self.entries.add(f"ignored {where}:<default {name}>")
            else:
                self.depend(value, f"{where}:<default {name}>")
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            self.depend(wrapped, f"{where}:__wrapped__")

    def follow_annotations(self, root: FunctionType | type) -> None:
        """A processor's inputs' classes: their methods are code ``process`` runs."""
        fn = getattr(root, "process", None) if isinstance(root, type) else root
        if not isinstance(fn, FunctionType):
            return
        for name, hint in _annotations(fn).items():
            if name == "return":
                continue
            for klass in _classes_in(hint, 0):
                if is_user_object(klass):
                    self.depend(klass, f"{label(fn)}:<annotation {name}>")

    def resolve(
        self,
        namespace: Mapping[str, Any],
        chain: tuple[str, ...],
        where: str,
        facts: ModuleFacts,
    ) -> None:
        """Look a dotted chain up, descending only through user modules."""
        if chain[0] in self.ignore or ".".join(chain) in self.ignore:
            self.entries.add(f"ignored {where}")
            return
        value: object = MISSING
        for depth, part in enumerate(chain):
            value = namespace.get(part, MISSING)
            kind = self.global_state(part)
            if kind == "rebound" or (
                kind == "mutated" and not isinstance(value, type | ModuleType | FunctionType)
            ):
                if kind == "mutated":
                    self.record(namespace, part, value)
                self.state(where, facts.definitions.get(part), value, kind)
                return
            self.by_value.add(("global", part, isinstance(value, type | ModuleType | FunctionType)))
            self.record(namespace, part, value)
            last = depth == len(chain) - 1
            if last or not isinstance(value, ModuleType) or not is_user_module(value):
                break
            namespace = value.__dict__
            facts = facts_for(getattr(value, "__file__", None), value.__dict__)
        lazy = namespace.get("__getattr__") if value is MISSING and depth else None
        if isinstance(lazy, FunctionType):  # a module's __getattr__ makes the name
            self.depend(lazy, f"{where}:__getattr__")
        if value is MISSING or isinstance(value, ModuleType):
            return
        if part in facts.set_derived and isinstance(value, list | tuple):
            # built from a set: its order follows the hash seed, not the code
            items = sorted(self.token(v, f"{where}[]", 1) for v in value)
            self.entries.add(f"value {where} unordered {type(value).__name__}({','.join(items)})")
            return
        self.depend(value, where)

    def whole_module(self, namespace: dict[str, Any], where: str) -> None:
        """A user module used as a value (``getattr(helpers, name)``, ``vars(config)``, or its
        own namespace read by ``eval``): code can read any of its names, so every one it
        holds enters (modules by name only)."""
        facts = facts_for(namespace.get("__file__"), namespace)
        for name in sorted(namespace):
            if not _is_dunder(name):
                self.resolve(namespace, (name,), f"{where}.{name}", facts)

    def resolve_import(self, fn: FunctionType, ref: ImportRef, where: str) -> None:
        """An import inside a function body: import the module now and follow the path."""
        name = ref.module
        if ref.level:
            package = fn.__globals__.get("__package__") or ""
            name = importlib.util.resolve_name("." * ref.level + ref.module, package)
        try:
            module = importlib.import_module(name)
        except ImportError:
            self.entries.add(f"import {where}:{name} missing")
            return
        if not ref.path:
            return
        if ref.path[0] in self.ignore or ref.path[-1] in self.ignore:
            self.entries.add(f"ignored {where}:{name}.{'.'.join(ref.path)}")
            return
        chain_where = f"{where}:<import {name}.{'.'.join(ref.path)}>"
        self.entries.add(f"import {chain_where}")
        if not is_user_module(module):
            return  # a library import: its name is in the source, its code is not followed
        facts = facts_for(getattr(module, "__file__", None), module.__dict__)
        self.resolve(module.__dict__, ref.path, chain_where, facts)

    # -- classes -----------------------------------------------------------------

    def visit_class(self, klass: type) -> None:
        namespace = klass.__dict__
        facts = _class_facts(klass)
        processor_like = callable(getattr(klass, "process", None))
        self.class_keys.append((namespace, tuple(namespace)))
        self.entries.add(f"class {label(klass)}")
        for name, attr in namespace.items():
            where = f"{label(klass)}.{name}"
            if name in _SKIPPED_CLASS_ATTRS or (processor_like and name in _LIFECYCLE_ATTRS):
                continue
            if name.startswith("__") and name.endswith("__") and is_plain_data(attr):
                continue  # interpreter bookkeeping (e.g. copyreg's __slotnames__), not code
            if name in self.ignore:
                self.entries.add(f"ignored {where}")
                continue
            if name == "__hash__" and _generated(attr):
                # attrs salts a generated __hash__ with hash(str): it varies with the hash seed
                self.entries.add(f"generated {where}")
                continue
            kind = self.attr_state(name)
            if kind is None and not isinstance(attr, FunctionType):
                self.by_value.add(("attr", name, False))
            if kind is not None and not isinstance(attr, FunctionType):
                if kind == "mutated":
                    self.record(namespace, name, attr)
                definition = facts.class_definitions.get((klass.__qualname__, name))
                self.state(where, definition, attr, kind)
                continue
            self.record(namespace, name, attr)
            for member in _members(attr):
                self.depend(member, where)
            if _is_dunder(name) and not callable(attr):
                self.forgive(where, attr)

    def forgive(self, where: str, attr: object) -> None:
        """A dunder attribute a framework wrote into a class (attrs' ``__attrs_attrs__``,
        pydantic's validators) is derived from the class body, which is fingerprinted: when it
        has no token of its own it counts by its type, not as an error."""
        failed = [e for e in self.errors if e.startswith(f"{where}:") or e.startswith(f"{where}[")]
        if failed:
            self.errors = [e for e in self.errors if e not in failed]
            self.entries.add(f"bookkeeping {where} {_type_label(attr)}")

    # -- values ------------------------------------------------------------------

    def state(
        self, where: str, definition: str | None, value: object = None, kind: str = "rebound"
    ) -> None:
        """A name running code changes: its definition's source, and for a filled container
        the code it holds, not its data."""
        self.entries.add(f"state {where} {definition or '-'}")
        if kind == "mutated":
            self.entries.add(f"state-code {where} {self.code_in(value, 0)}")

    def code_in(self, value: object, depth: int) -> str:
        """The tokens of the functions and classes inside a container that code fills."""
        if depth > _MAX_DEPTH or is_simple(value):
            return ""
        if isinstance(value, FunctionType | type | functools.partial | MethodType):
            return self.token(value, "", depth)
        if is_user_object(type(value)):  # an object whose attributes code changes
            self.todo.append(type(value))
            return f"instance {_type_label(value)}"
        if isinstance(value, list | tuple):
            parts = [self.code_in(v, depth + 1) for v in value]
            return ",".join(f"{i}:{p}" for i, p in enumerate(parts) if p)
        if isinstance(value, dict):
            found = [(k, self.code_in(v, depth + 1)) for k, v in value.items() if is_simple(k)]
            return ",".join(f"{k!r}:{p}" for k, p in found if p)
        return ""

    def depend(self, value: object, where: str) -> None:
        """Make ``value``, reached at ``where``, part of the fingerprint."""
        self.entries.add(f"value {where} {self.token(value, where, 0)}")

    def record(self, namespace: Mapping[str, Any], name: str, found: object) -> None:
        """Remember a lookup (once) so that a later call can re-check it."""
        key = (id(namespace), name)
        if key not in self.recorded:
            self.recorded.add(key)
            self.lookups.append((namespace, name, found))

    def fail(self, where: str, value: object, reason: str) -> str:
        self.errors.append(
            f"{where}: a {_type_label(value)} object that cannot be fingerprinted "
            f"({reason}); {_FIX}"
        )
        return "error"

    def token(self, value: object, where: str, depth: int) -> str:
        """A deterministic text that changes whenever ``value`` could change results."""
        if is_simple(value):
            return "d" + data_version(value)
        if isinstance(value, ModuleType):
            return f"module {value.__name__}"
        if depth > _MAX_DEPTH:
            return self.fail(where, value, "it is nested too deeply")
        code = self.code_token(value, where, depth)
        if code is not None:
            return code
        if type(value) in (list, tuple, dict, set, frozenset, deque):
            return self.container_token(value, where, depth)
        if is_user_object(type(value)):
            return self.instance_token(value, where, depth)
        if allowlisted(value):
            return f"allowed {_type_label(value)}"
        special = special_token(value)
        if special is not None:
            return special
        if isinstance(value, SimpleNamespace):
            return "namespace " + self.token(vars(value), where, depth + 1)
        try:
            return "d" + data_version(value)
        except HashingError as exc:
            if not pure_python(value):
                held = library_global(value)  # imported from a library: library code
                if held is not None:
                    return f"lib {held}"
                return self.fail(where, value, str(exc).removeprefix("value: "))
        return self.object_token(value, f"object {_type_label(value)}", where, depth)

    def code_token(self, value: object, where: str, depth: int) -> str | None:
        """Tokens of functions, classes and callables; None for other values."""
        registry = _probe(value, "registry")
        if (
            isinstance(registry, Mapping)
            and not isinstance(value, type)
            and callable(value)
            and hasattr(value, "dispatch")
        ):
            impls = sorted(
                f"{label(t)}={self.token(impl, f'{where}[{label(t)}]', depth + 1)}"
                for t, impl in registry.items()
            )
            return "singledispatch " + ",".join(impls)
        if isinstance(value, FunctionType):
            if not is_user_object(value):
                return f"lib {label(value)}"
            self.todo.append(value)
            return f"fn {_analyse(value).entry}"
        if isinstance(value, type):
            if not is_user_object(value):
                return f"lib {label(value)}"
            self.todo.append(value)
            return f"class {label(value)}"
        jitted = _probe(value, "py_func")
        if isinstance(jitted, FunctionType):
            return f"compiled {_type_label(value)} " + self.token(jitted, where, depth + 1)
        if isinstance(value, functools.partial | functools.partialmethod):
            partial = (value.func, value.args, value.keywords)
            return "partial " + self.token(partial, where, depth + 1)
        if isinstance(value, OPERATOR_CALLABLES):  # itemgetter(0): its class and arguments
            return "operator " + self.token(value.__reduce__(), where, depth + 1)
        if isinstance(value, MethodType):
            held = None if is_user_object(type(value.__self__)) else library_global(value)
            if held is not None:  # from numpy.random import rand
                return f"lib {held}"
            method = (value.__func__, value.__self__)
            return "method " + self.token(method, where, depth + 1)
        if isinstance(value, staticmethod | classmethod):
            return "descriptor " + self.token(value.__func__, where, depth + 1)
        wrapped = _probe(value, "__wrapped__")
        if wrapped is not None and callable(value) and not isinstance(value, type):
            inner = self.token(wrapped, f"{where}.__wrapped__", depth + 1)
            return f"wrapper {_type_label(value)} {inner}"
        return None

    def container_token(self, value: Any, where: str, depth: int) -> str:
        if len(value) <= PLAIN_DATA_CHECK_LIMIT and is_plain_data(value):
            return "d" + data_version(value)
        if len(value) > PLAIN_DATA_CHECK_LIMIT:
            try:
                return "d" + data_version(value)
            except HashingError:
                pass
        kind = type(value).__name__
        if isinstance(value, dict):
            parts = [
                f"{self.token(k, where, depth + 1)}:{self.token(v, f'{where}[{k!r}]', depth + 1)}"
                for k, v in value.items()
            ]
        else:
            parts = [self.token(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            if isinstance(value, set | frozenset):
                parts.sort()
        return f"{kind}({','.join(parts)})"

    def instance_token(self, value: object, where: str, depth: int) -> str:
        """An instance of a user class: its class's code and its state's data version."""
        if id(value) in self.active:
            return "cycle"
        klass = type(value)
        self.todo.append(klass)
        head = f"instance {label(klass)}"
        try:
            return f"{head} d{data_version(value)}"
        except HashingError as exc:
            if not pure_python(value):  # a C base class keeps state its attributes do not show
                return self.fail(where, value, str(exc).removeprefix("value: "))
        return self.object_token(value, head, where, depth)

    def object_token(self, value: object, head: str, where: str, depth: int) -> str:
        """``head`` and the token of an object's attributes (cycles are cut)."""
        if id(value) in self.active:
            return "cycle"
        self.active.add(id(value))
        try:
            return f"{head} " + self.token(instance_state(value), where, depth + 1)
        finally:
            self.active.discard(id(value))

    def still_valid(self) -> bool:
        """Whether every lookup made by the walk still finds the same object."""
        for namespace, name, found in self.lookups:
            if namespace.get(name, MISSING) is not found:
                return False
        for cell, found in self.cells:
            if _cell_contents(cell) is not found:
                return False
        for fn, code, defaults, kwdefaults in self.codes:
            if (
                fn.__code__ is not code
                or fn.__defaults__ is not defaults
                or fn.__kwdefaults__ is not kwdefaults
            ):
                return False
        rebound = self.rebound_attrs
        for namespace, keys in self.class_keys:
            if [k for k in namespace if k not in rebound] != [k for k in keys if k not in rebound]:
                return False
        return True


_NAMESPACE_READERS: Final = frozenset({"eval", "exec", "globals"})


def _probe(value: object, name: str) -> object:
    """``getattr(value, name, None)`` that also survives proxies whose lookups raise."""
    try:
        return getattr(value, name, None)
    except Exception:  # a lazy proxy or a broken __getattr__: it has no such attribute
        return None


def _generated(attr: object) -> bool:
    """Whether a method was generated without a source file (by attrs, dataclasses, ...)."""
    return isinstance(attr, FunctionType) and _analyse(attr).entry.startswith("bytecode")


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _type_label(value: object) -> str:
    return label(type(value))


def _cell_contents(cell: CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:
        return MISSING


def _members(attr: object) -> list[object]:
    """What a class attribute contributes: functions behind descriptors, or the value."""
    if isinstance(attr, staticmethod | classmethod):
        return [attr.__func__]
    if isinstance(attr, property):
        return [f for f in (attr.fget, attr.fset, attr.fdel) if f is not None]
    if isinstance(attr, functools.cached_property):
        return [attr.func]
    if isinstance(attr, functools.singledispatchmethod):
        return [attr.dispatcher]
    return [attr]


def _code_ignore(root: object) -> frozenset[str]:
    names = getattr(root, "code_ignore", ())
    if isinstance(names, str) or not isinstance(names, tuple | list | set | frozenset):
        raise HashingError(
            f"{label(root)}.code_ignore must be a tuple of names (str), got {names!r}; "
            "write code_ignore = ('name',)"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise HashingError(
            f"{label(root)}.code_ignore must hold names (str), got {bad!r}; "
            "write code_ignore = ('name',)"
        )
    return frozenset(names)


def _annotations(fn: FunctionType) -> dict[str, object]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an unresolvable hint: use what resolves
        out: dict[str, object] = {}
        for name, hint in getattr(fn, "__annotations__", {}).items():
            if isinstance(hint, str):
                try:
                    hint = eval(hint, fn.__globals__)  # what typing.get_type_hints does
                except Exception:
                    continue
            out[name] = hint
        return out


def _classes_in(hint: object, depth: int) -> list[type]:
    if depth > 8:
        return []
    found: list[type] = [hint] if isinstance(hint, type) else []
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        found.append(origin)
    for arg in typing.get_args(hint):
        found.extend(_classes_in(arg, depth + 1))
    return found


# -- roots -----------------------------------------------------------------------------

_ROOTS: WeakKeyDictionary[object, tuple[str, _Walk]] = WeakKeyDictionary()


def _library_fingerprint(obj: object) -> str:
    """A library function or class as a root: its name (incgraph's own also its release)."""
    name = label(obj)
    if name.startswith("incgraph."):
        import incgraph

        return combine("LibraryCode", name, incgraph.__version__)
    return combine("LibraryCode", name)


_IN_PROGRESS = threading.local()  # roots being walked by this thread


def fingerprint(obj: object) -> str:
    """The code fingerprint of a function, class or other callable (without a declared version)."""
    memoizable = isinstance(obj, FunctionType | type)
    if memoizable:
        cached = _ROOTS.get(obj)
        if cached is not None and cached[1].still_valid():
            return cached[0]
    if memoizable and not is_user_object(obj):
        return _library_fingerprint(obj)
    active: set[int] = _IN_PROGRESS.__dict__.setdefault("roots", set())
    if id(obj) in active:  # reached again from its own walk (through a data version)
        return combine("CodeCycle", label(obj))
    active.add(id(obj))
    try:
        walk = _Walk(obj).run()
        for _ in range(4):  # a name taken by value turned out to be state: walk again knowing it
            if walk.consistent():
                break
            walk = _Walk(obj, walk.state_found()).run()
        result = walk.result()
    finally:
        active.discard(id(obj))
    if memoizable:
        _ROOTS[obj] = (result, walk)
    return result


def code_version(obj: type | Callable[..., object], version: object = None) -> str:
    """Fingerprint of a processor class or a plain function, plus its declared version.

    Editing a method, a helper it calls in your own modules, or a module-level
    constant it reads changes the result; editing comments, docstrings or
    formatting does not. Everything the code reaches must be fingerprintable,
    allowlisted or named in ``code_ignore``. See ``docs/hashing.md``.

    Parameters
    ----------
    obj : type or callable
        A processor class, a function (queue tasks), a bound method, a
        ``functools.partial`` or a callable instance.
    version : object, optional
        Anything `data_version` can hash; bump it to invalidate what the
        fingerprint cannot see.

    Returns
    -------
    str
        32 lowercase hex characters.

    Raises
    ------
    HashingError
        If ``version`` cannot be hashed, or the code reaches an object that can
        be neither fingerprinted nor left out (the message names it and the fixes).

    Examples
    --------
    >>> def double(x):
    ...     return 2 * x
    >>> code_version(double) == code_version(double)
    True
    >>> code_version(double) == code_version(double, version=2)
    False
    """
    try:
        declared = data_version(version)
    except HashingError as exc:
        raise HashingError(f"code_version({label(obj)}): version: {exc}") from exc
    try:
        found = fingerprint(obj)
    except HashingError as exc:
        raise HashingError(f"code version of {label(obj)}: {exc}") from exc
    return combine("CodeVersion", found, declared)
