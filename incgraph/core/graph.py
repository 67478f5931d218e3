"""The node graph: nodes, their bindings, validation and topological order.

Design note
-----------
A graph is plain data. A `Node` is one use of a processor with its
*bindings* (input name -> upstream node or inline constant), its init kwargs,
an optional extra ``version`` and a ``cache`` flag; a *constant node* holds a
value the caller sets. Nodes are added only with handles to nodes already in
the graph, so a graph is acyclic by construction; ``topological_sort`` still
checks, because a bad graph must fail before anything runs.

Everything a cache key needs that depends only on the node -- its code
version, the data version of its init kwargs and of its inline constants --
is computed once and memoized on the node. A constant's data version is
memoized until ``set_value`` changes it: ``set_value`` takes a snapshot of
the value (`incgraph.core.snapshot`), so changing the value in place
afterwards changes neither what a run uses nor its key. Names in the processor's
``ignore`` stay out of all of these (`Node.keyed_upstream` lists the bound nodes
that count), and the versions of the packages in its ``packages`` (and the
store's) join the init version. This is what keeps a cache hit to a
string join, one xxh3 call and one index lookup.

Nothing here touches the store, threads or the engine: ``incgraph.graph``
adds running on top.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping
from operator import attrgetter
from typing import Any

from incgraph import hashing
from incgraph.core.processor import Processor
from incgraph.core.signature import (
    ProcessSignature,
    annotation_name,
    is_compatible,
    process_signature,
    value_matches,
)
from incgraph.core.snapshot import Snapshot
from incgraph.errors import (
    ConstantNotSetError,
    CycleError,
    GraphDefinitionError,
    HashingError,
    InputTypeError,
)
from incgraph.hashing._packages import declared_names, package_versions, with_packages
from incgraph.hashing._paths import HASHED_PATHS
from incgraph.sentinels import MISSING, Missing

__all__ = ["Graph", "Node"]


# (processor class, declared versions) -> code version, for the current run epoch, and
# processor class -> its code version for the nodes without a version of their own. A code
# version follows helpers and constants by identity, so a notebook cell that redefines a
# helper must be seen by the next run: the memo is cleared by new_run_epoch(), which every
# run calls. Within a run, each processor class is fingerprinted once, however many nodes.
_CODE_VERSIONS: dict[Any, str] = {}
_EPOCH = [0]


def _by_name(item: tuple[Any, Any]) -> str:
    return str(item[0])


def new_run_epoch() -> None:
    """Forget memoized code versions: the next run fingerprints each processor class again."""
    _EPOCH[0] += 1
    _CODE_VERSIONS.clear()


def _declared_version(of_class: object, of_node: object) -> object:
    """The declared version mixed into a code version: the class's, the node's, or both."""
    if of_node is None:
        return of_class
    if of_class is None:
        return of_node
    return (of_class, of_node)


def _typed(value: object) -> object:
    """``value``'s types, so that a memo keyed on it tells ``1``, ``1.0`` and ``True`` apart."""
    if type(value) is tuple:
        return tuple(_typed(v) for v in value)
    return type(value)


@functools.lru_cache(maxsize=1)
def _empty_init_version() -> str:
    return hashing.data_version({})


_NOTHING: frozenset[str] = frozenset()


def _ignored(processor: object) -> frozenset[str]:
    """The names ``processor`` leaves out of its keys (validated by ``add_node``)."""
    names = getattr(processor, "ignore", None)
    if not names or isinstance(names, str) or not isinstance(names, Iterable):
        return _NOTHING  # add_node refuses it, saying how to write it
    return frozenset(names)


_INIT_SIGNATURES: weakref.WeakKeyDictionary[type, inspect.Signature | None] = (
    weakref.WeakKeyDictionary()
)


def _init_signature(cls: type) -> inspect.Signature | None:
    """``cls``'s constructor signature, once per class (None when it cannot be read)."""
    if cls not in _INIT_SIGNATURES:
        try:
            _INIT_SIGNATURES[cls] = inspect.signature(cls)
        except (TypeError, ValueError):
            _INIT_SIGNATURES[cls] = None
    return _INIT_SIGNATURES[cls]


_NO_INIT_KWARGS: dict[str, Any] = {}  # shared by the nodes given none; never written to


def _nodes_in(values: Iterable[Any]) -> list[Node]:
    return [v for v in values if isinstance(v, Node)]


class Node:
    """One use of a processor in a graph (or a constant), returned by ``add_node``.

    Examples
    --------
    >>> from incgraph import ProcessGraph, Processor
    >>> class Double(Processor):
    ...     def process(self, x: int) -> int:
    ...         return 2 * x
    >>> g = ProcessGraph(store=":memory:")
    >>> x = g.add_constant_node(0, "x", value=4)
    >>> n = g.add_node(1, Double, {"x": x})
    >>> n.name(), n.id, g.run_upto(n)
    ('Double', 1, 8)
    """

    __slots__ = (
        "_built_with",
        "_code_epoch",
        "_code_version",
        "_fixed_dvs",
        "_init_paths",
        "_init_version",
        "_instance",
        "_job_spec",
        "_paths_epoch",
        "_upstream",
        "_value",
        "_value_dv",
        "bindings",
        "cache",
        "constant_name",
        "fanout",
        "graph",
        "id",
        "ignored",
        "init_kwargs",
        "is_constant",
        "label",
        "processor",
        "seq",
        "signature",
        "version",
    )

    def __init__(
        self,
        graph: Graph,
        node_id: Hashable,
        processor: type[Processor] | None,
        bindings: dict[str, Any],
        init_kwargs: dict[str, Any],
        version: object,
        cache: bool,
        constant_name: str | None = None,
        signature: ProcessSignature | None = None,
        ignored: frozenset[str] | None = None,
    ) -> None:
        self.graph = graph
        self.id = node_id
        self.processor = processor
        self.is_constant = processor is None
        """Whether this is a constant node (its value is set by the caller)."""
        self.bindings = bindings
        self.init_kwargs = init_kwargs
        self.version = version
        self.cache = cache
        self.constant_name = constant_name
        if signature is None and processor is not None:
            signature = process_signature(processor)
        self.signature: ProcessSignature | None = signature
        prefix = f"{graph.name}/" if graph.name else ""
        self.label = f"{prefix}{node_id}"
        self._value: Snapshot | Missing = MISSING
        self._value_dv: str | Missing | HashingError = MISSING
        self._code_version: str | Missing = MISSING
        self._code_epoch = -1
        self._init_version: str | Missing = MISSING
        self._fixed_dvs: dict[str, str] | Missing = MISSING
        self._instance: Any = MISSING
        self._job_spec: Any = None  # what incgraph.run.jobs needs to compute it, made once
        ups = bindings.values()  # a list made from a sized iterable is allocated to size
        self._upstream = list(ups) if all(isinstance(v, Node) for v in ups) else _nodes_in(ups)
        self.ignored = _ignored(processor) if ignored is None else ignored
        """Input and init kwarg names left out of the cache key (the processor's ``ignore``)."""
        self._paths_epoch = -1  # the run whose memos below hold a DataPath's version (-1: none)
        self._init_paths = False  # whether the init kwargs hold a DataPath
        self._built_with: str | None = None  # init version of the live instance, if _init_paths
        self.seq = len(graph.nodes)  # insertion position: inputs always come first
        self.fanout: FanOut | None = None
        """The fan-out this node was added in by `Graph.add_nodes`, if any."""

    # -- identity -----------------------------------------------------------------

    def name(self) -> str:
        """The processor's name (or the constant's name)."""
        if self.processor is None:
            return self.constant_name or str(self.id)
        return getattr(self.processor, "__name__", str(self.processor))

    def describe(self) -> str:
        """``node 2 (SumInt)``: how messages refer to this node."""
        return f"node {self.label} ({self.name()})"

    def __repr__(self) -> str:
        return f"<Node {self.label} {self.name()}>"

    def upstream(self) -> list[Node]:
        """The nodes this node reads, in binding order."""
        return self._upstream

    # -- constants ----------------------------------------------------------------

    def set_value(self, value: Any) -> None:
        """Set a constant node's value; every node downstream sees the new value on the next run.

        Raises
        ------
        GraphDefinitionError
            If this is not a constant node.
        InputTypeError
            If a node reading this constant annotates its input with a type ``value`` does not fit.
        """
        if not self.is_constant:
            raise GraphDefinitionError(
                f"{self.describe()} is not a constant node; only nodes made with "
                "add_constant_node() take set_value()"
            )
        for consumer, name in self.graph.consumers(self):
            assert consumer.signature is not None
            ann = consumer.signature.params.get(name, Any)
            if not value_matches(value, ann):
                raise InputTypeError(
                    f"{consumer.describe()}: input {name!r} expects {annotation_name(ann)}, "
                    f"got {type(value).__name__} from constant {self.describe()}; "
                    "set a value of that type or change the annotation"
                )
        snapshot = Snapshot(value)
        self._value = snapshot
        self._value_dv = MISSING
        if snapshot.copied:  # hashed now: the data version of the value as it was set
            try:
                self._value_dv = self._hashed(value)
            except HashingError as exc:
                self._value_dv = exc  # raised when a run needs it

    def set(self, attribute: str, value: Any) -> None:
        """``node.set("value", v)`` is ``node.set_value(v)`` (the original recipe's spelling)."""
        if attribute != "value":
            raise GraphDefinitionError(
                f"{self.describe()}: set({attribute!r}, ...) is not supported; "
                "use set('value', v) or set_value(v)"
            )
        self.set_value(value)

    @property
    def value(self) -> Any:
        """A copy of a constant node's value as it was set (``MISSING`` if never set).

        See `incgraph.core.snapshot`: changing the copy changes nothing.
        """
        return MISSING if self._value is MISSING else self._value.value()

    def constant_value(self) -> Any:
        """A copy of the constant's value, or a clear error if it was never set."""
        return self.snapshot().value()

    def snapshot(self) -> Snapshot:
        """The snapshot ``set_value`` took, or a clear error if it was never called."""
        if self._value is MISSING:
            raise ConstantNotSetError(
                f"constant {self.describe()} has no value; call set_value(...) on it "
                "(or in prep_fn for a batch) before running"
            )
        return self._value

    # -- versions (memoized) --------------------------------------------------------

    def _forget_paths(self) -> None:
        """Drop memos that hold a file's version from an earlier run: files change between runs."""
        if self._paths_epoch != _EPOCH[0]:
            self._value_dv = self._init_version = self._fixed_dvs = MISSING
            self._paths_epoch = -1

    def _hashed(self, value: Any) -> str:
        """``data_version(value)``, noting when it looked at files (a DataPath inside)."""
        before = HASHED_PATHS[0]
        dv = hashing.data_version(value)
        if HASHED_PATHS[0] != before:
            self._paths_epoch = _EPOCH[0]
        return dv

    def data_version_of_constant(self) -> str:
        """Data version of a constant node's value, as ``set_value`` received it.

        Memoized until ``set_value``, or only for the current run when the
        value holds a `DataPath` (its files may change); a value that cannot be
        copied (see `incgraph.core.snapshot`) is hashed again at each use.
        """
        if self._paths_epoch >= 0:
            self._forget_paths()
        found = self._value_dv
        if type(found) is str:
            return found
        try:
            if isinstance(found, HashingError):
                raise found  # hashing failed when the value was set
            dv = self._hashed(self.constant_value())
        except HashingError as exc:
            raise HashingError(f"constant {self.describe()}: {exc}") from exc
        if self.snapshot().frozen:  # else: shared and mutable, hashed again at each use
            self._value_dv = dv
        return dv

    def code_version(self) -> str:
        """Fingerprint of the processor's code, its ``version`` and this node's ``version``.

        The code fingerprinted is ``processor.code_source`` when set (a generated
        processor wrapping user code), else the processor class.
        """
        if self._code_version is MISSING or self._code_epoch != _EPOCH[0]:
            proc = self.processor
            assert proc is not None
            if self.version is None:  # the class's code version: memoized under the class
                cached = _CODE_VERSIONS.get(proc)
                if cached is None:
                    cached = _CODE_VERSIONS[proc] = self._fingerprint_code()
            else:
                cached = self._fingerprint_code()
            self._code_version = cached
            self._code_epoch = _EPOCH[0]
        return self._code_version

    def _fingerprint_code(self) -> str:
        """The code version of the processor with its and this node's declared versions."""
        proc = self.processor
        assert proc is not None
        declared = _declared_version(getattr(proc, "version", None), self.version)
        target = getattr(proc, "code_source", None) or proc
        try:
            memo_key: Any = (target, declared, _typed(declared))
            cached = _CODE_VERSIONS.get(memo_key)
        except TypeError:  # an unhashable version: compute, don't memoize
            memo_key, cached = None, None
        if cached is None:
            try:
                cached = hashing.code_version(target, declared)
            except HashingError as exc:
                raise HashingError(f"{self.describe()}: {exc}") from exc
            if memo_key is not None:
                _CODE_VERSIONS[memo_key] = cached
        return cached

    def init_version(self) -> str:
        """Data version of the node's init kwargs, with its declared package versions.

        Init kwargs named in the processor's ``ignore`` are left out. When the
        processor or the graph's store declares ``packages``, their installed
        versions are combined in: upgrading one changes the key.
        """
        if self._paths_epoch >= 0:
            self._forget_paths()
        if self._init_version is MISSING:
            kwargs = self.init_kwargs
            if self.ignored and kwargs:
                kwargs = {k: v for k, v in kwargs.items() if k not in self.ignored}
            version = self._kwargs_version(kwargs) if kwargs else _empty_init_version()
            packages = self.packages()
            if packages:
                version = with_packages(version, packages, self.describe())
            self._init_version = version
        return self._init_version

    def _kwargs_version(self, kwargs: dict[str, Any]) -> str:
        # keyword arguments: the order they were given in does not matter
        kwargs = dict(sorted(kwargs.items(), key=_by_name))
        try:
            before = HASHED_PATHS[0]
            version = self._hashed(kwargs)
            self._init_paths = HASHED_PATHS[0] != before
            return version
        except HashingError as exc:
            raise HashingError(
                f"{self.describe()}: node_init_kwargs: {exc}; "
                "pass hashable init kwargs or add the node with cache=False"
            ) from exc

    def packages(self) -> tuple[str, ...]:
        """The packages whose versions are in this node's key: its processor's and its store's."""
        own = getattr(self.processor, "packages", None) or ()
        declared = self.graph.declared_packages()
        if not (own or declared):
            return ()
        return tuple(sorted({*own, *declared}))

    def keyed_upstream(self) -> list[tuple[str, Node]]:
        """``(input name, upstream node)`` for the bound nodes whose versions are in the key."""
        ignored = self.ignored
        return [
            (name, v)
            for name, v in self.bindings.items()
            if isinstance(v, Node) and name not in ignored
        ]

    def fixed_input_versions(self) -> dict[str, str]:
        """Data versions of the inputs bound to inline constants (computed once).

        Inputs named in the processor's ``ignore`` are left out.
        """
        if self._paths_epoch >= 0:
            self._forget_paths()
        if self._fixed_dvs is MISSING:
            dvs = {}
            ignored = self.ignored
            for name, v in self.bindings.items():
                if isinstance(v, Node) or name in ignored:
                    continue
                try:
                    dvs[name] = self._hashed(v)
                except HashingError as exc:
                    raise HashingError(
                        f"{self.describe()}: input {name!r}: {exc}; "
                        "pass a hashable value or add the node with cache=False"
                    ) from exc
            self._fixed_dvs = dvs
        return self._fixed_dvs

    # -- lifecycle ------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        """Whether a processor instance is currently alive for this node."""
        holder = self if self.fanout is None else self.fanout
        return holder._instance is not MISSING

    def instance(self) -> Any:
        """The node's processor instance, constructed (and ``setup()``) on first use.

        The nodes of a fan-out (`Graph.add_nodes`: same processor, same
        init kwargs) share one instance, as the items of a batch do: a ForEach
        over a thousand tasks constructs its processor once, not a thousand times.
        """
        holder = self if self.fanout is None else self.fanout
        inst = holder._instance
        built_with = holder._built_with
        if inst is not MISSING and built_with is not None and built_with != self.init_version():
            self.release_resources()  # a file it was built from has changed since
            inst = MISSING
        if inst is MISSING:
            assert self.processor is not None
            inst = self.processor(**self.init_kwargs)
            setup = getattr(inst, "setup", None)
            if setup is not None:
                setup()
            holder._instance = inst
            holder._built_with = self.init_version() if self._init_paths else None
        return inst

    def release_resources(self) -> None:
        """Call ``release()`` on the node's instance, if any, and drop it.

        For a fan-out's node this releases the instance its fan-out shares.
        """
        holder = self if self.fanout is None else self.fanout
        inst, holder._instance = holder._instance, MISSING
        if inst is not MISSING:
            release = getattr(inst, "release", None)
            if release is not None:
                release()


class FanOut:
    """Nodes added together by `Graph.add_nodes` that differ only in inline inputs.

    They share the processor, its version and init kwargs, and every input bound
    to a node (``shared``: input name -> upstream node); each has its own inline
    constants (a ForEach task's element, a grid point). They share one processor
    instance (see `Node.instance`), and the engine's serial walk keys,
    looks up and claims a fan-out's nodes in bulk.
    """

    __slots__ = ("_built_with", "_instance", "shared")

    def __init__(self, shared: dict[str, Node]) -> None:
        self.shared = shared
        self._instance: Any = MISSING  # the processor instance the members share
        self._built_with: str | None = None  # its init version, when a DataPath is in it

    def __repr__(self) -> str:
        return f"<FanOut sharing {', '.join(self.shared) or 'no nodes'}>"


def _check_processor_class(node_id: Hashable, processor_class: object) -> None:
    """Fail at ``add_node`` when what was passed cannot be the node's processor class."""
    if not isinstance(processor_class, type):
        cls = type(processor_class).__name__
        if callable(getattr(processor_class, "process", None)):
            raise GraphDefinitionError(
                f"node {node_id}: got an instance of {cls}, but add_node takes the processor "
                f"class; pass {cls} itself and give its constructor arguments as "
                "node_init_kwargs={...} (the graph builds the instance when the node runs)"
            )
        raise GraphDefinitionError(
            f"node {node_id}: {processor_class!r} is not a class; pass a Processor subclass"
        )
    if not callable(getattr(processor_class, "process", None)):
        raise GraphDefinitionError(
            f"node {node_id}: {processor_class!r} has no process() method; "
            "pass a Processor subclass"
        )


def _inline_and_apart(inputs: Mapping[str, Any], shared_nodes: Mapping[str, Node]) -> bool:
    """Whether a fan-out member's own ``inputs`` are all inline and rebind no shared node."""
    for name, v in inputs.items():  # noqa: SIM110 - a loop: all() with a generator costs more
        if isinstance(v, Node) or name in shared_nodes:
            return False
    return True


_SEQ = attrgetter("seq")
"""Sort key of nodes by insertion position."""


def _where(node: Node) -> str:
    """How add_node's messages name a node: ``node 3 (Double)``."""
    return f"node {node.id} ({node.name()})"


def _check_ignore(node: Node, ignore: object) -> None:
    """Each name in ``ignore`` must be an input or an init kwarg of ``node``'s processor."""
    if isinstance(ignore, str) or not isinstance(ignore, Iterable):
        raise GraphDefinitionError(
            f"{_where(node)}: ignore must be a tuple of input or init kwarg names, got "
            f"{ignore!r}; write ignore = ({ignore!r},)"
        )
    assert node.signature is not None and node.processor is not None
    init = _init_signature(node.processor)
    init_names: set[str] = set()
    init_any = init is None
    if init is not None and node.processor.__init__ is not object.__init__:
        for p in init.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                init_any = True
            elif p.kind is not p.VAR_POSITIONAL:
                init_names.add(p.name)
    inputs = node.signature.params
    for name in ignore:
        known = name in inputs or name in init_names or name in node.init_kwargs
        if known or (isinstance(name, str) and (node.signature.var_keyword or init_any)):
            continue
        raise GraphDefinitionError(
            f"{_where(node)}: ignore lists {name!r}, which is neither an input of "
            f"{node.name()}.process ({', '.join(inputs) or 'no inputs'}) nor a keyword "
            f"argument of {node.name()}(); remove it from ignore or fix the name"
        )


class Graph:
    """A DAG of `Node`; building, validation and ordering only.

    `incgraph.ProcessGraph` adds running, caching and batches.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.nodes: dict[Hashable, Node] = {}
        # Who reads whom is indexed when first asked (set_value, invalidate), not per add_node:
        # a built graph holds no per-binding entries until then.
        self._consumers: dict[Node, list[Node]] = {}
        self._unindexed: list[Node] = []  # nodes added since `consumers` last indexed

    # -- building --------------------------------------------------------------------

    def add_constant_node(
        self,
        node_id: Hashable = MISSING,
        name: str | None = None,
        value: Any = MISSING,
        *,
        id: Hashable = MISSING,  # the original recipe spells it add_constant_node(id=0, ...)
    ) -> Node:
        """Add a constant node whose value is set by the caller.

        Parameters
        ----------
        node_id : hashable
            Unique id (``id=`` is accepted too, as in the original batch recipe).
        name : str, optional
            A readable name, shown by ``node.name()``.
        value : optional
            Initial value; otherwise call ``node.set_value(v)`` before a run needs it.
        """
        node_id = self._resolve_id(node_id, id)
        node = Node(self, node_id, None, {}, _NO_INIT_KWARGS, None, True, constant_name=name)
        self.nodes[node_id] = node
        if value is not MISSING:
            node.set_value(value)
        return node

    def add_node(
        self,
        node_id: Hashable,
        processor_class: type[Processor],
        inputs: Mapping[str, Any] | None = None,
        node_init_kwargs: Mapping[str, Any] | None = None,
        version: object = None,
        cache: bool = True,
    ) -> Node:
        """Add a node running ``processor_class`` with ``inputs`` bound by name.

        Parameters
        ----------
        node_id : hashable
            Unique id within the graph.
        processor_class : type
            A `Processor` subclass (any class with a ``process`` method works).
        inputs : mapping
            ``process`` parameter name -> upstream node handle or a constant value.
        node_init_kwargs : mapping, optional
            Keyword arguments for the processor's constructor (part of the cache key).
        version : optional
            Extra version for this node; changing it invalidates its results.
        cache : bool
            ``False`` always recomputes this node and stores nothing for it.

        Raises
        ------
        GraphDefinitionError
            Duplicate id, unknown or missing input, a node from another graph, bad init kwargs.
        InputTypeError
            A constant or an upstream return annotation that does not fit a parameter annotation.
        """
        node_id = self._resolve_id(node_id, MISSING)
        _check_processor_class(node_id, processor_class)
        bindings = dict(inputs or {})
        init_kwargs = dict(node_init_kwargs) if node_init_kwargs else _NO_INIT_KWARGS
        node = Node(self, node_id, processor_class, bindings, init_kwargs, version, cache)
        self._check_bindings(node)
        self._check_init_kwargs(node)
        self._check_declarations(node)
        return self._register(node)

    def add_nodes(
        self,
        processor_class: type[Processor],
        shared: Mapping[str, Any],
        each: Iterable[tuple[Hashable, Mapping[str, Any]]],
        node_init_kwargs: Mapping[str, Any] | None = None,
        version: object = None,
        cache: bool = True,
    ) -> list[Node]:
        """Add one node per ``(node_id, inputs)`` of ``each``, all running ``processor_class``.

        Every node is bound to the ``shared`` inputs plus its own ``inputs`` (its
        own win on a name clash). The result is what calling `add_node`
        for each would give, with the same checks and errors, but the shared
        bindings and the init kwargs are checked once: the way to add the
        thousand tasks of a fan-out.

        When every node's own inputs are inline values (and none rebinds a
        shared node), the nodes form a `FanOut`: they share one
        processor instance (constructed and ``setup()`` once, like the items of
        a batch; ``release_resources()`` on any of them releases it), and the
        serial executor keys, looks up, claims and computes them in bulk.
        Results and cache keys are the same as with separate ``add_node`` calls.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Scale(Processor):
        ...     def process(self, factor: int, x: int) -> int:
        ...         return factor * x
        >>> g = ProcessGraph(store=":memory:")
        >>> factor = g.add_constant_node("factor", "factor", value=10)
        >>> nodes = g.add_nodes(Scale, {"factor": factor}, ((f"x{i}", {"x": i}) for i in range(3)))
        >>> [g.run_upto(n) for n in nodes]
        [0, 10, 20]
        """
        shared = dict(shared)
        items = iter(each)
        head = next(items, None)
        if head is None:
            return []
        # the first is checked in full: processor, shared inputs, init kwargs
        first = self.add_node(
            head[0], processor_class, {**shared, **head[1]}, node_init_kwargs, version, cache
        )
        shared_nodes = {name: v for name, v in shared.items() if isinstance(v, Node)}
        fan = _inline_and_apart(head[1], shared_nodes)
        init_kwargs, sig, nodes = first.init_kwargs, first.signature, self.nodes
        own = head[1].keys()  # a member binding these names misses no required input either
        # Inline values bound to unannotated inputs of a process(**inputs) need no check:
        # a member with the first's names, all inline, would pass _check_bindings untouched.
        assert sig is not None
        unchecked = sig.var_keyword and not (own & sig.params.keys())
        added = [first]
        for node_id, inputs in items:
            if node_id in nodes or node_id is MISSING:
                self._resolve_id(node_id, MISSING)  # raises, naming the node
            bindings = {**shared, **inputs}
            node = Node(
                self,
                node_id,
                processor_class,
                bindings,
                dict(init_kwargs) if init_kwargs else _NO_INIT_KWARGS,
                version,
                cache,
                signature=sig,
                ignored=first.ignored,
            )
            apart = _inline_and_apart(inputs, shared_nodes)  # reads exactly the shared nodes
            same_names = inputs.keys() == own
            if not (unchecked and apart and same_names):
                self._check_bindings(node, inputs, complete=same_names)
            fan = fan and apart
            self._register(node)
            added.append(node)
        if fan and len(added) > 1:
            group = FanOut(shared_nodes)
            for node in added:
                node.fanout = group
        return added

    def _register(self, node: Node) -> Node:
        """Enter a checked node by id (`consumers` indexes what it reads when asked)."""
        self.nodes[node.id] = node
        self._unindexed.append(node)
        return node

    def _resolve_id(self, node_id: Hashable, alias: Hashable) -> Hashable:
        if node_id is MISSING:
            node_id = alias
        if node_id is MISSING:
            raise GraphDefinitionError("add_constant_node() needs a node id: pass node_id or id=")
        if node_id in self.nodes:
            raise GraphDefinitionError(
                f"node id {node_id!r} is already used by {self.nodes[node_id].describe()}; "
                "node ids must be unique"
            )
        return node_id

    def _check_bindings(
        self, node: Node, only: Mapping[str, Any] | None = None, complete: bool = False
    ) -> None:
        """Check ``node``'s bindings (those in ``only``, when given) and that none is missing.

        ``complete`` says the caller knows no required input is missing (a fan-out
        member binding the same names as a member checked in full).
        """
        sig = node.signature
        assert sig is not None
        params, nodes = sig.params, self.nodes
        for name, v in (node.bindings if only is None else only).items():
            ann = params.get(name, MISSING)
            if ann is MISSING:
                if not sig.var_keyword:
                    raise GraphDefinitionError(
                        f"{_where(node)}: unknown input {name!r}; {node.name()}.process takes "
                        f"{', '.join(params) or 'no inputs'}"
                    )
                ann = Any
            if isinstance(v, Node):
                if ann is Any and v.graph is self and nodes.get(v.id) is v:
                    continue  # an upstream node of this graph feeding an unannotated input
                self._check_upstream(node, name, ann, v)
            elif ann is not Any and not value_matches(v, ann):
                raise InputTypeError(
                    f"{_where(node)}: input {name!r} expects {annotation_name(ann)}, got "
                    f"{type(v).__name__}; pass a value of that type or change the annotation"
                )
        if not complete and not node.bindings.keys() >= sig.required:
            missing = sorted(sig.required - node.bindings.keys())
            raise GraphDefinitionError(
                f"{_where(node)}: missing required input(s) {', '.join(map(repr, missing))}; "
                "bind each to a node or a constant in `inputs`"
            )

    def _check_upstream(self, node: Node, name: str, ann: Any, up: Node) -> None:
        if up.graph is not self or self.nodes.get(up.id) is not up:
            raise GraphDefinitionError(
                f"{_where(node)}: input {name!r} is {up.describe()} from another graph; "
                "bind nodes of this graph only"
            )
        if up.is_constant:
            if up.value is not MISSING and not value_matches(up.value, ann):
                raise InputTypeError(
                    f"{_where(node)}: input {name!r} expects {annotation_name(ann)}, got "
                    f"{type(up.value).__name__} from constant {up.describe()}; "
                    "set a value of that type or change the annotation"
                )
            return
        assert up.signature is not None
        if not is_compatible(up.signature.returns, ann):
            raise InputTypeError(
                f"{_where(node)}: input {name!r} expects {annotation_name(ann)}, but "
                f"{up.describe()} returns {annotation_name(up.signature.returns)}; "
                "bind a node of a matching type or change one of the annotations"
            )

    def _check_init_kwargs(self, node: Node) -> None:
        assert node.processor is not None
        if not node.init_kwargs and node.processor.__init__ is object.__init__:
            return
        sig = _init_signature(node.processor)
        if sig is None:  # builtins without a signature: nothing to check
            return
        try:
            sig.bind(**node.init_kwargs)
        except TypeError as exc:
            raise GraphDefinitionError(
                f"node {node.id} ({node.name()}): node_init_kwargs do not fit "
                f"{node.name()}(): {exc}"
            ) from exc

    def _check_declarations(self, node: Node) -> None:
        """Check the processor's ``ignore`` and ``packages`` (once per add_node)."""
        proc = node.processor
        ignore = getattr(proc, "ignore", None)
        if ignore:
            _check_ignore(node, ignore)
        packages = getattr(proc, "packages", None)
        if packages:
            package_versions(declared_names(packages, _where(node)), _where(node))

    def declared_packages(self) -> tuple[str, ...]:
        """Packages whose versions enter every node's key (a store's ``packages``); none here."""
        return ()

    # -- reading ----------------------------------------------------------------------

    def consumers(self, node: Node) -> list[tuple[Node, str]]:
        """``(consumer, input name)`` for every binding that reads ``node``.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Add(Processor):
        ...     def process(self, a: int, b: int) -> int:
        ...         return a + b
        >>> g = ProcessGraph(store=":memory:")
        >>> c = g.add_constant_node(0, "c", value=1)
        >>> n = g.add_node(1, Add, {"a": c, "b": c})
        >>> [(consumer.id, name) for consumer, name in g.consumers(c)]
        [(1, 'a'), (1, 'b')]
        """
        self._index_consumers()
        found: list[tuple[Node, str]] = []
        last = None
        for consumer in self._consumers.get(node, ()):
            if consumer is not last:  # a node binding ``node`` twice is listed twice in a row
                found.extend((consumer, name) for name, v in consumer.bindings.items() if v is node)
                last = consumer
        return found

    def _index_consumers(self) -> None:
        """Enter the nodes added since the last call as readers of the nodes they bind."""
        if not self._unindexed:
            return
        index = self._consumers
        for node in self._unindexed:
            for up in node.upstream():
                index.setdefault(up, []).append(node)
        self._unindexed = []

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def topological_sort(self, target_node: Node | Iterable[Node] | None = None) -> list[Node]:
        """The nodes a run up to ``target_node`` visits, each after its inputs.

        With no target, every node of the graph. Nodes come in the order they were
        added (a node can only bind nodes added before it, so that order is
        topological). Iterative, so a 100k-long chain works.

        Examples
        --------
        >>> from incgraph import ProcessGraph, Processor
        >>> class Inc(Processor):
        ...     def process(self, x: int) -> int:
        ...         return x + 1
        >>> g = ProcessGraph(store=":memory:")
        >>> c = g.add_constant_node(0, "c", value=0)
        >>> a = g.add_node(1, Inc, {"x": c})
        >>> b = g.add_node(2, Inc, {"x": a})
        >>> [n.id for n in g.topological_sort(b)]
        [0, 1, 2]
        """
        targets = self._targets(target_node)
        if target_node is None:
            return targets
        # Nodes can only bind nodes added before them, so insertion order is a topological
        # order: collect what the targets need, then sort by insertion position.
        needed: set[Node] = set(targets)
        stack = list(targets)
        while stack:
            for up in stack.pop()._upstream:
                if up not in needed:
                    needed.add(up)
                    stack.append(up)
        order = sorted(needed, key=_SEQ)
        for node in order:
            for up in node._upstream:
                if up.seq >= node.seq:  # only possible if bindings were edited after add_node
                    raise CycleError(
                        f"{up.describe()} is bound by {node.describe()} added before it"
                    )
        return order

    def _targets(self, target: Node | Iterable[Node] | None) -> list[Node]:
        if target is None:
            return list(self.nodes.values())
        targets = [target] if isinstance(target, Node) else list(target)
        for t in targets:
            if not isinstance(t, Node) or self.nodes.get(t.id) is not t:
                raise GraphDefinitionError(f"{t!r} is not a node of this graph")
        return targets

    def release_resources(self) -> None:
        """Release every initialized processor instance of the graph."""
        for node in self.nodes.values():
            node.release_resources()
