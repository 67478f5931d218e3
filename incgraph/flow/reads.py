"""What a layer reads of its run: its task's ``self.index``, which flow parameters.

Design note
-----------
A layer's cache key holds what its result can depend on. Two parts of a run
are often not used at all: a ForEach task's position (``self.index``) and most
flow parameters. Keying every task by its position made a grid recompute
every cell after the one inserted; keying every layer by every parameter made
a change of ``epochs`` recompute the layer that only loads the data.

So each layer's code is read once per code version (`layer_reads`),
from its source, and the key holds only what the code reads:

* ``self.index`` anywhere in the code -> the task's position is in its key;
  otherwise two tasks that see equal elements share a key, wherever they sit.
* ``self.params.lr``, ``self.params["lr"]``, ``self.params.get("lr", ...)``,
  ``getattr(self.params, "lr"[, default])``, ``hasattr(self.params, "lr")`` and
  ``"lr" in self.params`` -> parameter ``lr`` (its value, or its absence) is in
  the key. Any other use
  of ``self.params`` (iterating it, passing it on, ``self.params[name]``)
  keys the layer by every parameter.

The reading is conservative: the code analysed is the layer's ``__call__``
and ``__init__`` and every method or property of the class that they reach
through ``self.<name>``, nested functions and lambdas included. Whenever
``self`` is used in any other way -- passed to a function, stored,
``getattr(self, name)`` with a computed name, ``vars(self)``, ``super()``, an operator on it --
(``type(self)`` and ``self.__class__`` excepted: a class holds no run state),
or the class overrides attribute access, or a method's source cannot be
read, the layer is keyed by everything (position and every parameter), as it
would be without this analysis.

A run-time check backs the reading up: a task whose key leaves out its
position, or a parameter, records whether it read it anyway (through a path
the reading cannot see, such as a frame inspection) and, if so, fails with a
`FlowError` instead of storing a result under a key
that does not pin it down. A wrong hit is never possible; the failure names
the layer and the fix.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import weakref
from dataclasses import dataclass
from typing import Any

__all__ = ["EVERYTHING", "Reads", "layer_reads"]


@dataclass(frozen=True)
class Reads:
    """What of its run a layer's key holds.

    Attributes
    ----------
    index : bool
        Whether a ForEach task's position is in its key.
    params : frozenset of str, or None
        The flow parameters in its key; ``None`` means every parameter.
    """

    index: bool
    params: frozenset[str] | None


EVERYTHING = Reads(index=True, params=None)
"""The key of a layer whose reads cannot be determined: position and every parameter."""

# Names whose use in a layer's code may reach ``self`` in ways the reading cannot follow.
_OPAQUE_NAMES = frozenset({"super", "locals", "vars", "eval", "exec", "globals", "__class__"})
# FlowParams methods that read one parameter named by their first argument.
_ONE_PARAM_METHODS = frozenset({"get"})


class _Unknown(Exception):
    """The code uses ``self`` in a way the reading does not follow."""


_MEMO: weakref.WeakKeyDictionary[type, dict[str, Reads]] = weakref.WeakKeyDictionary()
"""Layer class -> code version -> its reads (a class redefined in a notebook is a new key)."""


def layer_reads(layer: type, code_version: str) -> Reads:
    """What ``layer``'s code reads of its run (memoized per class and code version).

    Examples
    --------
    >>> from incgraph.flow import Layer
    >>> class Train(Layer):
    ...     def __call__(self) -> None:
    ...         self.model = ("fit", self.params.lr, self.params.get("epochs", 3))
    >>> reads = layer_reads(Train, "v1")
    >>> reads.index, sorted(reads.params)
    (False, ['epochs', 'lr'])
    >>> class Dump(Layer):
    ...     def __call__(self) -> None:
    ...         self.args = dict(self.params)
    >>> layer_reads(Dump, "v1").params is None
    True
    """
    by_version = _MEMO.setdefault(layer, {})
    reads = by_version.get(code_version)
    if reads is None:
        try:
            reads = _Reader(layer).read()
        except _Unknown:
            reads = EVERYTHING
        by_version[code_version] = reads
    return reads


class _Reader:
    """Walks the methods of one layer class that running it can reach through ``self``."""

    def __init__(self, layer: type) -> None:
        self.layer = layer
        self.index = False
        self.params: set[str] | None = set()
        self.seen: set[str] = set()
        self.todo: list[str] = []

    def read(self) -> Reads:
        from incgraph.flow.layer import Layer

        for hook in ("__getattr__", "__getattribute__", "__setattr__"):
            if _defined_by_user(self.layer, hook, Layer):
                raise _Unknown(hook)
        self.want("__call__")
        if _defined_by_user(self.layer, "__init__", Layer):
            self.want("__init__")
        while self.todo:
            self.read_function(self.todo.pop())
        params = None if self.params is None else frozenset(self.params)
        return Reads(index=self.index, params=params)

    def want(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.todo.append(name)

    def read_function(self, name: str) -> None:
        """Read the code behind ``self.<name>``: a method, or a property's accessors."""
        attr = inspect.getattr_static(self.layer, name)
        if isinstance(attr, property):
            functions = [f for f in (attr.fget, attr.fset, attr.fdel) if f is not None]
        elif isinstance(attr, (staticmethod, classmethod)):
            return  # never receives the instance
        elif inspect.isfunction(attr):
            functions = [attr]
        elif hasattr(type(attr), "__get__"):
            raise _Unknown(name)  # another descriptor: it runs code we cannot see
        else:
            return  # a class-level value (a default threshold, say): data
        for fn in functions:
            if not inspect.isfunction(fn) or hasattr(fn, "__wrapped__"):
                raise _Unknown(name)
            tree = _function_tree(fn)
            args = tree.args.posonlyargs + tree.args.args
            if not args:
                raise _Unknown(name)
            self.read_body(tree, args[0].arg)

    def read_body(self, tree: ast.AST, me: str) -> None:
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if node.id in _OPAQUE_NAMES:
                    raise _Unknown(node.id)
                if node.id == me and isinstance(node.ctx, ast.Load):
                    self.read_use(node, parents)

    def read_use(self, node: ast.Name, parents: dict[ast.AST, ast.AST]) -> None:
        """One use of ``self``: only ``self.<name>`` is followed."""
        parent = parents.get(node)
        if _is_type_of(parent, node):
            return  # type(self): the class holds no run state (self.__class__ likewise)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            self.read_name(parent.attr, parent, parents)
            return
        named = _named_by_builtin(parent, node) if isinstance(parent, ast.Call) else None
        if named is None:
            raise _Unknown("self used whole")
        self.read_name(named, None, parents)  # getattr(self, "name"), hasattr(self, "name")

    def read_name(
        self, name: str, attribute: ast.Attribute | None, parents: dict[ast.AST, ast.AST]
    ) -> None:
        """``self.<name>`` (``attribute`` is that node, or None when read by getattr)."""
        if name == "index":
            self.index = True
        elif name == "params":
            if attribute is None:
                self.params = None  # the mapping goes on where the reading cannot follow
            else:
                self.read_params(attribute, parents)
        elif name == "__class__":
            return
        elif name.startswith(("__", "_incgraph")):
            raise _Unknown(name)  # __dict__, __class__, the run state: the instance itself
        elif _is_user_code(self.layer, name):
            self.want(name)

    def read_params(self, node: ast.Attribute, parents: dict[ast.AST, ast.AST]) -> None:
        """``self.params`` followed by ``.name``, ``["name"]`` or ``.get("name", ...)``."""
        if self.params is None:
            return
        parent = parents.get(node)
        named = None
        if isinstance(parent, ast.Attribute):
            if parent.attr in _ONE_PARAM_METHODS:
                call = parents.get(parent)
                if isinstance(call, ast.Call) and call.func is parent and call.args:
                    named = _constant_str(call.args[0])
            elif not _is_params_method(parent.attr):
                named = parent.attr
        elif isinstance(parent, ast.Subscript) and parent.value is node:
            named = _constant_str(parent.slice)
        elif isinstance(parent, ast.Call):
            named = _named_by_builtin(parent, node)
        elif isinstance(parent, ast.Compare):
            named = _named_by_membership(parent, node)
        if named is None or named.startswith("_"):
            self.params = None
        else:
            self.params.add(named)


def _named_by_builtin(call: ast.Call, node: ast.AST) -> str | None:
    """``"lr"`` for ``getattr(<node>, "lr"[, default])`` or ``hasattr(<node>, "lr")``."""
    func = call.func
    if not (isinstance(func, ast.Name) and func.id in ("getattr", "hasattr")):
        return None
    if call.keywords or len(call.args) not in (2, 3) or call.args[0] is not node:
        return None
    return _constant_str(call.args[1])


def _named_by_membership(compare: ast.Compare, node: ast.AST) -> str | None:
    """``"lr" in self.params`` (or ``not in``): ``"lr"``."""
    if len(compare.ops) != 1 or compare.comparators[0] is not node:
        return None
    if not isinstance(compare.ops[0], (ast.In, ast.NotIn)):
        return None
    return _constant_str(compare.left)


def _is_type_of(call: ast.AST | None, node: ast.Name) -> bool:
    """Whether ``call`` is ``type(<node>)``."""
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "type"
        and call.args == [node]
        and not call.keywords
    )


def _constant_str(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _defined_by_user(layer: type, name: str, base: type) -> bool:
    """Whether ``layer``'s ``name`` is defined by a class other than ``base`` and ``object``.

    The whole MRO counts: a mixin listed after ``Layer`` (``class Fit(Layer,
    Mixin)``) provides methods the layer calls as surely as a base class does.
    """
    for klass in layer.__mro__:
        if name in vars(klass):
            return klass is not base and klass is not object
    return False


def _is_user_code(layer: type, name: str) -> bool:
    """Whether ``self.<name>`` finds something a user class defines (a method, property...)."""
    from incgraph.flow.layer import Layer

    return _defined_by_user(layer, name, Layer)


def _is_params_method(name: str) -> bool:
    """Whether ``self.params.<name>`` is a method of the mapping, not a parameter."""
    from incgraph.flow.layer import FlowParams

    return hasattr(FlowParams, name)


def _function_tree(fn: Any) -> ast.FunctionDef | ast.AsyncFunctionDef:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        module = ast.parse(source)
    except (OSError, TypeError, SyntaxError) as exc:
        raise _Unknown(getattr(fn, "__qualname__", "?")) from exc
    tree = module.body[0] if module.body else None
    if not isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise _Unknown(getattr(fn, "__qualname__", "?"))
    return tree
