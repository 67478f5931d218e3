"""``@incgraph.memoize``: cache a plain function's calls in a store, keyed like a node.

Design note
-----------
A memoized function is a processor-like node with one input per parameter.
A call binds its arguments to the parameters with `inspect.signature`
(defaults included, so ``f(1, b=2)``, ``f(1, 2)`` and ``f(a=1, b=2)`` are one
call) and keys it exactly as the engine keys a node
(`incgraph.run.keys.call_key`): the function's code version (the same
code-aware fingerprint a processor gets: helpers in your own modules count,
comments do not), no init kwargs, and each argument's data version (its content
hash) by parameter name. Its record is made by
`incgraph.run.keys.make_record`, with the function's qualified name as
node label and processor, so ``incgraph ls``, ``show`` and ``lineage`` list
calls like nodes, and a call whose argument is another memoized function's
result links to that result in the lineage.

A call is

1. a *hit* when the index has its key: one look-up, then the value is loaded;
2. otherwise a *miss*: the key is claimed through a store session
   (`StoreSession`, the engine's exactly-once
   leases; a call another process is computing is waited for and then is a
   hit), the function runs, and its result is saved (blob, then index row)
   before the lease is released. A function whose calls in this process have
   been cheap (under the store's ``settings.lease_min_seconds`` on average,
   1 ms by default: what the lease itself costs) is computed without a lease,
   as the engine does: two processes computing it twice is harmless.

Hits and writes go to the run log as the engine's do, through one session per
thread that is closed (one row of kind ``"memoize"``) every
``settings.memoize_log_seconds`` or ``settings.memoize_log_keys`` keys (the
store's `Settings`), and at exit: a hit appends a key
to a list and writes nothing.

The function's code version is computed at each call (a few µs: fingerprints
are memoized by the identity of the code they read), so redefining a helper in
a notebook is seen by the next call. A result that was stored and whose blob
turns out missing or corrupt is computed again.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import os
import pickle
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, overload

from incgraph import hashing
from incgraph.core.graph import Graph, Node
from incgraph.core.processor import Processor
from incgraph.errors import (
    ConfigurationError,
    HashingError,
    ReadOnlyStoreError,
    StoreCorruptError,
    StoreError,
)
from incgraph.hashing._packages import declared_names, package_versions, with_packages
from incgraph.run.jobs import result_data_version
from incgraph.run.keys import call_key, make_record
from incgraph.sentinels import MISSING
from incgraph.store import Store, memory_store, open_store
from incgraph.store.session import StoreSession
from incgraph.store.store import default_location

__all__ = ["CallInfo", "MemoizedFunction", "memoize"]

F = TypeVar("F", bound=Callable[..., Any])


class CallInfo(NamedTuple):
    """What one memoized call did: its value, and whether it was a hit (``value, hit = ...``)."""

    value: Any
    hit: bool


class MemoizedCall(Processor):
    """Base of the processors generated for memoized functions (what their records name)."""

    function: Callable[..., Any]

    def process(self, **arguments: Any) -> Any:
        """Call the function with its bound arguments."""
        return type(self).function(**arguments)


# -- stores shared by the memoized functions of a process --------------------------------------

_STORES: dict[Path, Store] = {}
_STORES_LOCK = threading.Lock()


def _shared_store(location: str | os.PathLike[str] | None) -> Store:
    """One open store per folder for every memoized function of this process."""
    folder = default_location() if location is None else Path(location).expanduser().absolute()
    with _STORES_LOCK:
        store = _STORES.get(folder)
        if store is None:
            store = _STORES[folder] = open_store(folder)
        return store


# -- run-log sessions, one per thread and function, written at exit ---------------------------

_LIVE: weakref.WeakSet[MemoizedFunction] = weakref.WeakSet()


@atexit.register
def _close_all_sessions() -> None:
    for memo in list(_LIVE):
        with suppress(StoreError):  # at exit: a log that cannot be written is only lost
            memo.close()


class _Sessions(threading.local):
    session: StoreSession | None = None
    opened: float = 0.0
    pid: int = 0


class MemoizedFunction:
    """A function whose calls are cached in an incgraph store. Made by `memoize`.

    Calling it returns the cached result of an earlier call with equal
    arguments (by content) and unchanged code, else computes and stores it.

    Attributes
    ----------
    function : callable
        The undecorated function.
    label : str
        The node label (and processor name) its results are recorded under:
        ``module.qualname`` unless ``name=`` was given.
    ignore : frozenset of str
        Parameters left out of the cache key.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        store: str | os.PathLike[str] | Store | None = None,
        ignore: Iterable[str] | None = (),
        version: object = None,
        name: str | None = None,
        packages: Iterable[str] = (),
    ) -> None:
        self._binds: type | None = (
            type(function) if isinstance(function, (staticmethod, classmethod)) else None
        )
        if isinstance(function, (staticmethod, classmethod)):
            function = function.__func__
        if not callable(function):
            raise ConfigurationError(f"memoize: {function!r} is not callable; decorate a function")
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            kind = "a coroutine" if inspect.iscoroutinefunction(function) else "a generator"
            raise ConfigurationError(
                f"memoize({getattr(function, '__qualname__', function)!r}): it returns {kind}, "
                "which cannot be stored; memoize a function that returns the finished result"
            )
        self.function = function
        self.version = version
        self._module, self._name = _names(function)
        self._qualname = f"{self._module}.{self._name}"
        self.label = name or self._qualname
        try:
            self.signature = inspect.signature(function)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"memoize({self._qualname}): its parameters cannot be read ({exc}); memoize "
                "a function of yours that calls it"
            ) from None
        self.ignore = frozenset([ignore] if isinstance(ignore, str) else ignore or ())
        unknown = sorted(self.ignore - self.signature.parameters.keys())
        if unknown:
            raise ConfigurationError(
                f"memoize({self._qualname}): ignore= names {', '.join(map(repr, unknown))}, "
                f"which {self._name}() does not take; its parameters are "
                f"{', '.join(self.signature.parameters) or 'none'}"
            )
        self._store_location = store
        self._store: Store | None = store if isinstance(store, Store) else None
        where = f"memoized function {self.label}"
        self.packages = declared_names(packages, where)
        package_versions(self.packages, where)  # an unknown package fails here
        self._init: str | None = None
        self._sent_code: str | None = None  # unpickled by value: the sender's code version
        self._owner_class: type | None = None  # a method's class, once it exists
        self._node = _template_node(self, version)
        self._costs = (0, 0.0)  # computes in this process, and the seconds they took
        self._local = _Sessions()
        self._sessions: dict[StoreSession, int] = {}  # open sessions -> the pid that made them
        self._lock = threading.Lock()
        functools.update_wrapper(self, function)
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"<memoized {self.label}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        """Pickled by reference (module + qualified name), like the function it replaces.

        A function the reference may not find in the process that unpickles it
        (defined in ``__main__``, a notebook or ``exec``, or a closure) also
        carries itself by value: a ``joblib.Parallel`` worker has another
        ``__main__``.
        """
        module, qualname = self._module, self._name
        if module != "__main__" and _lookup(module, qualname) is self:
            return str(qualname)
        return _by_value(self)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """Used as a method, the instance is the first argument (hashed by content).

        Memoizing a ``staticmethod`` keeps it unbound; memoizing a
        ``classmethod`` binds the class (hashed by its qualified name).
        """
        if self._binds is staticmethod:
            return self
        if self._binds is classmethod:
            return BoundMemoized(self, owner if owner is not None else type(instance))
        if instance is None:
            return self
        return BoundMemoized(self, instance)

    # -- the store -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store the calls are cached in, opened on first use."""
        if self._store is None:
            location = self._store_location
            assert not isinstance(location, Store)
            if location == ":memory:":
                self._store = memory_store()  # lives as long as the function, like a graph's
            else:
                self._store = _shared_store(location)
        return self._store

    # -- keys ------------------------------------------------------------------------------

    def code_version(self) -> str:
        """The function's code version now (its code, its helpers', and ``version``).

        A method's code version also covers its class, as a processor's covers
        its class: editing another method it calls through ``self`` recomputes.
        """
        if self._sent_code is not None:
            return self._sent_code
        code = hashing.code_version(self.function, self.version)
        owner = self._owner()
        if owner is None:
            return code
        return hashing.combine("MemoizedMethod", code, hashing.code_version(owner))

    def _owner(self) -> type | None:
        """The class the function is defined in (found by its qualified name), if any."""
        if self._owner_class is None:
            qualname = self._name.rpartition(".")[0]
            found = _lookup(self._module, qualname) if qualname else None
            if isinstance(found, type):
                self._owner_class = found
        return self._owner_class

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.label}(): {exc}") from None
        bound.apply_defaults()
        return bound

    def _inputs(self, bound: inspect.BoundArguments) -> dict[str, str]:
        """Parameter name -> data version of the argument, for the parameters not ignored."""
        inputs = {}
        ignore = self.ignore
        for param, value in bound.arguments.items():
            if param in ignore:
                continue
            try:
                inputs[param] = hashing.data_version(value)
            except HashingError as exc:
                # "value['a']: ... or mark the node cache=False": the argument is not a node
                where = str(exc).removeprefix("value").replace(" or mark the node cache=False", "")
                raise HashingError(
                    f"memoized function {self.label}: argument {param!r}{where}; pass a "
                    f"hashable value, or leave {param!r} out of the key with "
                    f"@memoize(ignore=[{param!r}])"
                ) from exc
        return inputs

    def _key(self, bound: inspect.BoundArguments) -> tuple[str, dict[str, str], str]:
        """The call's key, its inputs' data versions, and the code version in the key."""
        inputs = self._inputs(bound)
        code = self.code_version()
        return call_key(code, self.init_version(), inputs), inputs, code

    def init_version(self) -> str:
        """No init kwargs, with the versions of the declared packages and the store's."""
        if self._init is None:
            names = sorted({*self.packages, *self.store.packages})
            empty = hashing.data_version({})
            self._init = with_packages(empty, names, f"memoized function {self.label}")
        return self._init

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The cache key of a call with these arguments (nothing is computed or looked up).

        Examples
        --------
        >>> from incgraph import memoize, memory_store
        >>> @memoize(store=memory_store())
        ... def add(a, b=1):
        ...     return a + b
        >>> add.key(1) == add.key(1, 1) == add.key(a=1, b=1)
        True
        """
        return self._key(self._bind(args, kwargs))[0]

    # -- calling -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs).value

    def call(self, *args: Any, **kwargs: Any) -> CallInfo:
        """Call the function through the cache; say whether it was a hit.

        Returns
        -------
        CallInfo
            ``(value, hit)``: the result, and whether it came from the store.

        Examples
        --------
        >>> from incgraph import memoize, memory_store
        >>> @memoize(store=memory_store())
        ... def square(x):
        ...     return x * x
        >>> square.call(3)
        CallInfo(value=9, hit=False)
        >>> value, hit = square.call(3)
        >>> value, hit
        (9, True)
        """
        bound = self._bind(args, kwargs)
        key, inputs, code = self._key(bound)
        store = self.store
        session = self._session()
        stored = store.lookup_version(key)
        if stored is not MISSING:
            try:
                value = store.load(stored)
            except (KeyError, StoreCorruptError):
                pass  # the store dropped its rows: compute it again below
            else:
                session.hits.append(key)
                return CallInfo(value, True)
        return self._compute((args, kwargs), (key, inputs, code), session)

    def _compute(
        self,
        given: tuple[tuple[Any, ...], dict[str, Any]],
        keyed: tuple[str, dict[str, str], str],
        session: StoreSession,
    ) -> CallInfo:
        """A miss: claim the key (unless cheap), compute, save, release.

        ``given`` is the call's arguments as the caller passed them (defaults
        are bound only for the key: a library function may treat a default
        passed explicitly differently). ``keyed`` is what `_key` gave: the
        key, the inputs' data versions and the code version, recorded as they
        were keyed.
        """
        key = keyed[0]
        store = self.store
        if store.read_only:
            raise ReadOnlyStoreError(
                f"memoized function {self.label} must compute (no result is stored for these "
                f"arguments), but {store!r} was opened read-only; open the store writable"
            )
        count, seconds = self._costs
        leased = not count or seconds >= count * store.settings.lease_min_seconds
        if leased:
            stored = self._claim(key, session)
            if stored is not None:
                return stored
        try:
            start = time.perf_counter()
            value = self.function(*given[0], **given[1])
            duration = time.perf_counter() - start
            self._save(keyed, value, duration)
        except BaseException:
            if leased:
                session.release([key])
            raise
        self._costs = (count + 1, seconds + duration)
        session.saved([key])
        return CallInfo(value, False)

    def _claim(self, key: str, session: StoreSession) -> CallInfo | None:
        """Take the lease on ``key`` (waiting for another process that holds it).

        The stored call when another process stored it meanwhile; None when it
        is ours to compute.
        """
        done = session.acquire(key)
        if done is None:
            return None
        try:
            value = self.store.load(done)
        except (KeyError, StoreCorruptError):
            session.claim([key])  # its bytes are gone: compute it after all
            return None
        session.hits.append(key)
        return CallInfo(value, True)

    def _save(self, keyed: tuple[str, dict[str, str], str], value: Any, duration: float) -> None:
        """Store a computed result with its record (blob, then index row)."""
        key, inputs, code = keyed
        data_version = result_data_version(value, key, True)
        lineage = (self._qualname, code, self.init_version())
        record = make_record(self._node, key, inputs, data_version, duration, lineage)
        try:
            self.store.save(record, value)
        except StoreError as exc:
            raise type(exc)(
                f"memoized function {self.label} returned a value the store cannot keep: {exc}"
            ) from exc

    # -- queries and maintenance ----------------------------------------------------------------

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        """Whether a call with these arguments would be a hit (joblib's name for it).

        Decided from the index alone; nothing is computed or loaded.

        Examples
        --------
        >>> from incgraph import memoize, memory_store
        >>> @memoize(store=memory_store())
        ... def inc(x):
        ...     return x + 1
        >>> inc.check_call_in_cache(1), inc(1), inc.check_call_in_cache(1)
        (False, 2, True)
        """
        key = self.key(*args, **kwargs)
        return self.store.lookup_version(key) is not MISSING

    def clear(self, warn: bool = True) -> int:
        """Forget every stored call of this function (any code version); return how many.

        The next call with any arguments computes. Results are removed from
        use as `incgraph.ProcessGraph.invalidate` removes them: their
        bytes go at the next ``gc``. ``warn`` is accepted for joblib
        compatibility and ignored.

        Examples
        --------
        >>> from incgraph import memoize, memory_store
        >>> @memoize(store=memory_store())
        ... def inc(x):
        ...     return x + 1
        >>> inc(1), inc.clear(), inc.check_call_in_cache(1)
        (2, 1, False)
        """
        from incgraph.store.invalidation import invalidate, select

        chosen = select(self.store, nodes=[self.label], processors=[self._qualname])
        return len(invalidate(self.store, chosen, downstream=False).removed)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Forget the stored call with these arguments; True if there was one.

        The next such call computes again (joblib's ``f.call`` always computes:
        ``f.invalidate(...)`` then ``f(...)`` does that through the cache).

        Examples
        --------
        >>> from incgraph import memoize, memory_store
        >>> @memoize(store=memory_store())
        ... def inc(x):
        ...     return x + 1
        >>> inc(1), inc.invalidate(1), inc.invalidate(1), inc.check_call_in_cache(1)
        (2, True, False, False)
        """
        from incgraph.store.invalidation import invalidate, select

        chosen = select(self.store, keys=[self.key(*args, **kwargs)])
        return bool(invalidate(self.store, chosen, downstream=False).removed)

    def accept(self) -> int:
        """Record that the function's current code gives the results of its previous code.

        Calls stored under the most recent earlier code version become hits for
        the current one; the acceptance is recorded and shown by ``incgraph
        show`` / ``lineage``. Returns how many results were accepted. See
        `incgraph.store.acceptance.accept`.

        Raises
        ------
        NotCachedError
            No earlier code version of the function has stored results.
        """
        from incgraph.store.acceptance import accept

        report = accept(
            self.store, self.label, self._qualname, self.code_version(), what=self.label
        )
        return len(report.accepted)

    # -- the run log ----------------------------------------------------------------------------

    def _session(self) -> StoreSession:
        """This thread's run-log session, renewed every ``memoize_log_seconds`` or ``_keys``."""
        local = self._local
        session = local.session
        if session is not None and local.pid != os.getpid():
            session = None  # made before a fork: its log and leases are the parent's
        if session is not None:
            log, settings = session.log, self.store.settings
            if (
                time.monotonic() - local.opened < settings.memoize_log_seconds
                and len(log.hits) + len(log.written) < settings.memoize_log_keys
            ):
                return session
            self._end(session)
        # its own session, never a part of a run it is called in: it outlives that run
        session = StoreSession(self.store, "memoize", self.label)
        local.session, local.opened, local.pid = session, time.monotonic(), os.getpid()
        with self._lock:
            self._sessions[session] = os.getpid()
        return session

    def _end(self, session: StoreSession) -> None:
        with self._lock:
            pid = self._sessions.pop(session, None)
        if pid == os.getpid():  # a session made before a fork is the parent's to write
            session.close()

    def close(self) -> None:
        """Write the run log of the calls so far (also done at exit and every 30 s)."""
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            self._end(session)
        self._local = _Sessions()


class BoundMemoized:
    """A memoized function used as a method: its calls get the instance as first argument."""

    __slots__ = ("instance", "memoized")

    def __init__(self, memoized: MemoizedFunction, instance: Any) -> None:
        self.memoized = memoized
        self.instance = instance

    def __repr__(self) -> str:
        return f"<bound memoized {self.memoized.label} of {self.instance!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.memoized.call(self.instance, *args, **kwargs).value

    def call(self, *args: Any, **kwargs: Any) -> CallInfo:
        """`MemoizedFunction.call` with the instance first."""
        return self.memoized.call(self.instance, *args, **kwargs)

    def key(self, *args: Any, **kwargs: Any) -> str:
        """`MemoizedFunction.key` with the instance first."""
        return self.memoized.key(self.instance, *args, **kwargs)

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        """`MemoizedFunction.check_call_in_cache` with the instance first."""
        return self.memoized.check_call_in_cache(self.instance, *args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """`MemoizedFunction.invalidate` with the instance first."""
        return self.memoized.invalidate(self.instance, *args, **kwargs)

    def clear(self, warn: bool = True) -> int:
        """`MemoizedFunction.clear`: forgets every call, of every instance."""
        return self.memoized.clear(warn)


# -- pickling by value -------------------------------------------------------------------------

_PICKLING = threading.local()  # id of a memoized function pickled by value -> its token
_RESTORING = threading.local()  # token -> the memoized function being unpickled (in .memos)


def _lookup(module: str, qualname: str) -> Any:
    """What ``module.qualname`` names in this process, or None."""
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def _by_value(memo: MemoizedFunction) -> tuple[Any, ...]:
    """The reduce tuple of ``memo`` carrying its function by value (with cloudpickle).

    The function is pickled on its own; a reference to a memoized function
    already being pickled this way (recursion: ``fib`` calling ``fib``) becomes
    its token, resolved when it is unpickled to the object being rebuilt.
    """
    active: dict[int, str] = getattr(_PICKLING, "active", None) or {}
    _PICKLING.active = active
    token = active.get(id(memo))
    if token is not None:
        return (_restoring, (token,))
    token = active[id(memo)] = uuid.uuid4().hex
    try:
        payload = _cloudpickle().dumps(memo.function)
    finally:
        del active[id(memo)]
    store = memo._store if memo._store is not None else memo._store_location
    if isinstance(store, Store):
        store = ":memory:" if store.path is None else str(store.path)
    elif store is None:
        store = str(default_location())  # the folder this process would use
    elif store != ":memory:":
        store = str(Path(store).expanduser().absolute())
    options = {
        "store": store,
        "ignore": sorted(memo.ignore),
        "version": memo.version,
        "name": memo.label,
        "packages": memo.packages,
    }
    module, qualname = memo._module, memo._name
    sent = (token, payload, memo.code_version(), memo.init_version())
    return (_restore, (module, qualname, sent, options))


def _restore(
    module: str, qualname: str, sent: tuple[str, bytes, str, str], options: dict[str, Any]
) -> MemoizedFunction:
    """A memoized function unpickled: the one ``module.qualname`` names here, else rebuilt.

    A rebuilt function keeps the code version the sender computed (its copy
    has no source file to read: cloudpickle drops it; and it is the code the
    sender keyed) and the sender's package versions (those of a store object
    it was given count too), so it keys calls as the sender does.
    """
    found = _lookup(module, qualname)
    if isinstance(found, MemoizedFunction):
        return found
    token, payload, code, init = sent
    memo = MemoizedFunction.__new__(MemoizedFunction)
    restoring: dict[str, MemoizedFunction] = getattr(_RESTORING, "memos", None) or {}
    _RESTORING.memos = restoring
    restoring[token] = memo
    try:
        function = pickle.loads(payload)
    finally:
        del restoring[token]
    memo.__init__(function, **options)  # type: ignore[misc]
    memo._sent_code, memo._init = code, init
    return memo


def _restoring(token: str) -> MemoizedFunction:
    """The memoized function being unpickled under ``token`` (its function refers to it)."""
    memos: dict[str, MemoizedFunction] = _RESTORING.memos
    return memos[token]


def _cloudpickle() -> Any:
    """cloudpickle (a dependency of joblib; joblib before 1.5 ships its own copy)."""
    try:
        return importlib.import_module("cloudpickle")
    except ImportError:
        return importlib.import_module("joblib.externals.cloudpickle")


def _names(function: Callable[..., Any]) -> tuple[str, str]:
    """The module and qualified name a memoized callable is recorded under.

    A ``functools.partial`` is named after the function it wraps, a callable
    instance after its class.
    """
    target: Any = function
    while isinstance(target, functools.partial):
        target = target.func
    if not isinstance(getattr(target, "__qualname__", None), str):
        target = type(target)
    return str(getattr(target, "__module__", None) or "__main__"), str(target.__qualname__)


def _template_node(memo: MemoizedFunction, version: object) -> Node:
    """The node a memoized function's records are made for: a generated processor."""
    function, label, module, qualname = memo.function, memo.label, memo._module, memo._name
    cls = type(
        qualname.rpartition(".")[2] if qualname.isidentifier() else "memoized",
        (MemoizedCall,),
        {
            "function": staticmethod(function),
            "code_source": function,
            "version": version,
            "__module__": module,
            "__qualname__": qualname,
            "__doc__": f"Generated processor of memoized function {label!r}.",
        },
    )
    return Graph().add_node(label, cls)


@overload
def memoize(
    function: F,
    /,
    *,
    store: str | os.PathLike[str] | Store | None = None,
    ignore: Iterable[str] | None = (),
    version: object = None,
    name: str | None = None,
    packages: Iterable[str] = (),
) -> F: ...


@overload
def memoize(
    function: None = None,
    /,
    *,
    store: str | os.PathLike[str] | Store | None = None,
    ignore: Iterable[str] | None = (),
    version: object = None,
    name: str | None = None,
    packages: Iterable[str] = (),
) -> Callable[[F], F]: ...


def memoize(
    function: Callable[..., Any] | None = None,
    /,
    *,
    store: str | os.PathLike[str] | Store | None = None,
    ignore: Iterable[str] | None = (),
    version: object = None,
    name: str | None = None,
    packages: Iterable[str] = (),
) -> Any:
    """Cache a function's calls in an incgraph store: ``@memoize`` or ``@memoize(...)``.

    A drop-in for ``joblib.Memory(location).cache``, keyed like a processor
    node: the function's code (and the helpers it calls in your own modules)
    and the content of each argument. Editing the function recomputes; calling
    it again with equal arguments, in this process or another, loads the
    stored result. Concurrent processes compute a call once.

    Parameters
    ----------
    function : callable
        The function (when used as ``@memoize`` without parentheses).
    store : str, pathlib.Path, Store or None
        The store folder (or a `Store`, or ``":memory:"``
        for one that lives as long as the function); None uses the folder
        `ProcessGraph` uses (``$INCGRAPH_STORE`` or
        ``./.incgraph``). It is opened at the first call.
    ignore : iterable of str, or None
        Parameters that do not affect the result (``verbose``, ``n_jobs``):
        left out of the key, still passed to the function. A call differing
        only in them is a hit, so list only what truly cannot change the result.
        None (joblib's default) ignores nothing.
    version : object, optional
        Bump to invalidate every stored call.
    name : str, optional
        The label calls are recorded under (default ``module.qualname``).
    packages : iterable of str
        Installed packages whose versions enter the key (``("scikit-learn",)``):
        upgrading one recomputes every call. The store's ``packages`` count too.

    Returns
    -------
    MemoizedFunction
        Callable like the function, with ``check_call_in_cache``, ``call``,
        ``key``, ``invalidate``, ``clear`` and ``accept``.

    Raises
    ------
    ConfigurationError
        ``ignore`` names a parameter the function does not take.

    Examples
    --------
    >>> from incgraph import memoize, memory_store
    >>> calls = []
    >>> @memoize(store=memory_store(), ignore=["verbose"])
    ... def scale(x, factor=2, verbose=False):
    ...     calls.append(x)
    ...     return x * factor
    >>> scale(3), scale(3, 2), scale(x=3, verbose=True), calls
    (6, 6, 6, [3])
    """

    def wrap(fn: Callable[..., Any]) -> MemoizedFunction:
        return MemoizedFunction(
            fn, store=store, ignore=ignore, version=version, name=name, packages=packages
        )

    if function is None:
        return wrap
    return wrap(function)
