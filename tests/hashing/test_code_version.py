"""code_version: code edits invalidate, cosmetic edits do not; only the user's code is followed."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from incgraph.hashing import _code, _source, code_version, data_version


class Modules:
    """Writes real modules into tmp_path and (re)imports them, as an edit-and-rerun would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"cvmod_{uuid.uuid4().hex[:10]}"
        self.loaded: set[str] = set()

    def name(self, short: str) -> str:
        return f"{self.prefix}_{short}"

    def write(self, short: str, source: str) -> ModuleType:
        """Write ``short``'s source (``<<other>>`` names another test module) and import it."""
        text = textwrap.dedent(source)
        for token in {part.split(">>")[0] for part in text.split("<<")[1:]}:
            text = text.replace(f"<<{token}>>", self.name(token))
        name = self.name(short)
        (self.root / f"{name}.py").write_text(text)
        importlib.invalidate_caches()
        self.loaded.add(name)
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    """A module factory on sys.path; no bytecode caches, so every reload recompiles."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    factory = Modules(tmp_path)
    yield factory
    for name in factory.loaded:
        sys.modules.pop(name, None)


PROCESSOR = '''
import dataclasses
import math
import textwrap

from incgraph.core.processor import Processor

import <<helpers>>
from <<helpers>> import clean


class Scale(Processor):
    """Scales things."""

    factor = 2

    def process(self, x: float) -> float:
        # multiply, then clean
        y = clean(x) * self.factor
        return <<helpers>>.tidy(y) + math.sqrt(4) + len(textwrap.dedent(""))


def task(x):
    return clean(x) + 1


@dataclasses.dataclass
class Settings:
    rate: float = 0.1
    tags: list = dataclasses.field(default_factory=list)
'''

HELPERS = """
THRESHOLD = 0.5
LIMITS = (1, 2)


def clean(x):
    return x * THRESHOLD


def tidy(x):
    return min(max(x, LIMITS[0]), LIMITS[1])
"""


def load(modules: Modules, processor: str = PROCESSOR, helpers: str = HELPERS) -> ModuleType:
    modules.write("helpers", helpers)
    return modules.write("proc", processor)


def test_versions_are_hex_and_deterministic(modules: Modules) -> None:
    """code_version gives 32 hex characters and the same answer twice."""
    proc = load(modules)
    first = code_version(proc.Scale)
    assert len(first) == 32 and first == code_version(proc.Scale)
    assert code_version(proc.task) != first


@pytest.mark.parametrize(
    "edit",
    [
        ("# multiply, then clean", "# a different comment\n        # over two lines"),
        ('"""Scales things."""', '"""Scales things, documented at length."""'),
        (
            "y = clean(x) * self.factor",
            "y = (\n            clean( x )\n            * self.factor\n        )",
        ),
        ("def task(x):", "\n\n# spacing\ndef task(x):"),
    ],
    ids=["comment", "docstring", "formatting", "blank-lines"],
)
def test_cosmetic_edits_keep_the_version(modules: Modules, edit: tuple[str, str]) -> None:
    """Comments, docstrings, formatting and blank lines do not change a code version."""
    proc = load(modules)
    before = (code_version(proc.Scale), code_version(proc.task))
    old, new = edit
    assert old in PROCESSOR
    proc = load(modules, PROCESSOR.replace(old, new))
    assert (code_version(proc.Scale), code_version(proc.task)) == before


def test_docstring_added_to_a_function_keeps_the_version(modules: Modules) -> None:
    """Adding a docstring to a helper is cosmetic too."""
    proc = load(modules)
    before = code_version(proc.task)
    documented = HELPERS.replace("def clean(x):\n", 'def clean(x):\n    """Clean x."""\n')
    proc = load(modules, helpers=documented)
    assert code_version(proc.task) == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("y = clean(x) * self.factor", "y = clean(x) / self.factor"),
        ("factor = 2", "factor = 3"),
        ("return clean(x) + 1", "return clean(x) + 2"),
    ],
    ids=["method-body", "class-constant", "function-body"],
)
def test_code_edits_change_the_version(modules: Modules, old: str, new: str) -> None:
    """Editing a method, a class constant or a function changes the version of what uses it."""
    proc = load(modules)
    before = (code_version(proc.Scale), code_version(proc.task))
    proc = load(modules, PROCESSOR.replace(old, new))
    after = (code_version(proc.Scale), code_version(proc.task))
    assert after != before


@pytest.mark.parametrize(
    ("old", "new", "changes_task"),
    [
        ("return x * THRESHOLD", "return x * THRESHOLD * 1", True),
        ("THRESHOLD = 0.5", "THRESHOLD = 0.6", True),
        ("return min(max(x, LIMITS[0]), LIMITS[1])", "return max(x, LIMITS[0])", False),
        ("LIMITS = (1, 2)", "LIMITS = (1, 3)", False),
    ],
    ids=[
        "helper-imported-by-name",
        "constant-of-helper",
        "helper-via-module",
        "constant-via-helper",
    ],
)
def test_helper_and_constant_edits_change_the_version(
    modules: Modules, old: str, new: str, changes_task: bool
) -> None:
    """Helpers (imported by name or as module.attr) and the constants they read are followed."""
    proc = load(modules)
    before_scale, before_task = code_version(proc.Scale), code_version(proc.task)
    proc = load(modules, helpers=HELPERS.replace(old, new))
    assert code_version(proc.Scale) != before_scale
    assert (code_version(proc.task) != before_task) == changes_task


def test_rebinding_a_constant_at_runtime_invalidates(modules: Modules) -> None:
    """Re-running a notebook cell that changes a constant changes the version, and back again."""
    proc = load(modules)
    helpers = sys.modules[modules.name("helpers")]
    before = code_version(proc.Scale)
    helpers.THRESHOLD = 0.75
    assert code_version(proc.Scale) != before
    helpers.THRESHOLD = 0.5
    assert code_version(proc.Scale) == before


def test_redefining_a_helper_at_runtime_invalidates(modules: Modules) -> None:
    """Replacing a helper function object (a re-run cell) changes the version of its users."""
    proc = load(modules)
    helpers = sys.modules[modules.name("helpers")]
    before = code_version(proc.Scale)
    namespace: dict[str, object] = {"LIMITS": (1, 2)}
    exec("def tidy(x):\n    return -x\n", namespace)
    helpers.tidy = namespace["tidy"]
    assert code_version(proc.Scale) != before


def test_declared_version_is_mixed_in(modules: Modules) -> None:
    """Changing the version argument changes the code version; equal versions agree."""
    proc = load(modules)
    assert code_version(proc.Scale, 1) != code_version(proc.Scale, 2)
    assert code_version(proc.Scale, (1, "a")) == code_version(proc.Scale, (1, "a"))
    assert code_version(proc.Scale, None) == code_version(proc.Scale)
    assert code_version(proc.Scale, "1") != code_version(proc.Scale, 1)


def test_library_code_is_not_followed(modules: Modules, monkeypatch: pytest.MonkeyPatch) -> None:
    """Swapping a stdlib function or incgraph's Processor base does not change a version."""
    from incgraph.core.processor import Processor

    proc = load(modules)
    before = (code_version(proc.Scale), code_version(proc.task))
    monkeypatch.setattr(textwrap, "dedent", lambda text: text)
    monkeypatch.setattr(Processor, "setup", lambda self: None)
    assert (code_version(proc.Scale), code_version(proc.task)) == before


def test_user_base_classes_are_followed(modules: Modules) -> None:
    """Editing a method of a base class in the user's own module changes the subclass version."""
    source = """
    class Base:
        def helper(self):
            return 1

    class Child(Base):
        def process(self):
            return self.helper()
    """
    mod = modules.write("classes", source)
    before = code_version(mod.Child)
    mod = modules.write("classes", source.replace("return 1", "return 2"))
    assert code_version(mod.Child) != before


def test_descriptors_are_followed(modules: Modules) -> None:
    """Static methods, class methods and properties are part of their class's version."""
    source = """
    class Holder:
        @staticmethod
        def s():
            return "s"

        @classmethod
        def c(cls):
            return "c"

        @property
        def p(self):
            return "p"
    """
    mod = modules.write("descriptors", source)
    versions = {code_version(mod.Holder)}
    for name in ("s", "c", "p"):
        mod = modules.write("descriptors", source.replace(f'return "{name}"', f'return "{name}!"'))
        versions.add(code_version(mod.Holder))
    assert len(versions) == 4


def test_wrapped_and_compiled_helpers_are_seen_through(modules: Modules) -> None:
    """Helpers behind functools.wraps-style wrappers or a numba-like py_func are followed."""
    source = """
    import functools

    class Dispatcher:
        def __init__(self, fn):
            self.py_func = fn

    def fast(x):
        return x + 1

    def slow(x):
        return x + 1

    fast_compiled = Dispatcher(fast)
    slow_cached = functools.lru_cache(slow)

    def use(x):
        return fast_compiled(x) + slow_cached(x)
    """
    mod = modules.write("wrapped", source)
    before = code_version(mod.use)
    for name in ("fast", "slow"):
        edited = source.replace(
            f"def {name}(x):\n        return x + 1", f"def {name}(x):\n        return x"
        )
        assert edited != source
        mod = modules.write("wrapped", edited)
        assert code_version(mod.use) != before
        mod = modules.write("wrapped", source)
    assert code_version(mod.use) == before


def test_mutual_recursion_terminates_and_is_followed(modules: Modules) -> None:
    """Mutually recursive helpers are each visited once; editing either changes both versions."""
    source = """
    def even(n):
        return True if n == 0 else odd(n - 1)

    def odd(n):
        return False if n == 0 else even(n - 1)
    """
    mod = modules.write("recursion", source)
    before = code_version(mod.even)
    mod = modules.write("recursion", source.replace("return False", "return bool(0)"))
    assert code_version(mod.even) != before


def test_lambdas_on_one_line_have_their_own_versions(modules: Modules) -> None:
    """Two lambdas on one line differ, and editing one leaves the other's version alone."""
    source = "pair = (lambda x: x + 1, lambda y: y * 2)\n"
    mod = modules.write("lambdas", source)
    first, second = code_version(mod.pair[0]), code_version(mod.pair[1])
    assert first != second
    mod = modules.write("lambdas", source.replace("x + 1", "x + 10"))
    assert code_version(mod.pair[0]) != first
    assert code_version(mod.pair[1]) == second


def test_nested_functions_hash_their_own_source_and_cells(modules: Modules) -> None:
    """A closure hashes its own definition and the simple values it closes over."""
    source = """
    def make(factor):
        unused = [1, 2]
        def scale(x):
            return x * factor
        return scale
    """
    mod = modules.write("closures", source)
    assert code_version(mod.make(2)) == code_version(mod.make(2))
    assert code_version(mod.make(2)) != code_version(mod.make(3))
    before = code_version(mod.make(2))
    mod = modules.write("closures", source.replace("unused = [1, 2]", "unused = [1, 2, 3]"))
    assert code_version(mod.make(2)) == before


def test_code_without_source_falls_back_to_bytecode() -> None:
    """exec'd functions get a deterministic bytecode version that still sees code edits."""

    def build(body: str) -> object:
        namespace: dict[str, object] = {}
        exec(f"def f(x):\n    return {body}\n", namespace)
        return namespace["f"]

    assert code_version(build("x + 1")) == code_version(build("x + 1"))
    assert code_version(build("x + 1")) != code_version(build("x + 2"))


def test_stale_source_on_disk_is_not_trusted(modules: Modules) -> None:
    """A file edited after import is not taken for the code that runs."""
    running = modules.write("stale", "def f(x):\n    return x + 1\n").f
    path = modules.root / f"{modules.name('stale')}.py"
    path.write_text("def f(x):\n    return x + 2\n")
    assert _source.find_definition(running) is None
    stale = code_version(running)
    fresh = modules.write("stale", "def f(x):\n    return x + 2\n").f
    assert code_version(fresh) != stale


def test_analysis_is_memoized(modules: Modules, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first call, code_version does not read source again."""
    proc = load(modules)
    first = code_version(proc.Scale)

    def forbidden(fn: object) -> None:
        raise AssertionError("source was read again")

    monkeypatch.setattr(_code, "find_definition", forbidden)
    assert code_version(proc.Scale) == first
    assert code_version(proc.Scale, 3) != first


def test_other_callables(modules: Modules) -> None:
    """Bound methods (with their object), partials, callable instances and library functions."""
    import functools
    import json

    source = """
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Adder:
        amount: int

        def __call__(self, x):
            return x + self.amount

        def method(self, x):
            return x
    """
    mod = modules.write("callables", source)
    assert code_version(mod.Adder(1)) != code_version(mod.Adder(2))
    assert code_version(mod.Adder(1).method) == code_version(mod.Adder(1).method)
    assert code_version(mod.Adder(1).method) != code_version(mod.Adder(2).method)
    assert code_version(functools.partial(mod.Adder(1), 2)) != code_version(
        functools.partial(mod.Adder(1), 3)
    )
    assert code_version(json.dumps) == code_version(json.dumps) != code_version(json.loads)
    assert code_version(len) != code_version(sum)


def test_functions_as_values_hash_their_code(modules: Modules) -> None:
    """A user function passed as data changes data_version when its code changes."""
    mod = modules.write("callback", "def cb(x):\n    return x\n")
    before = data_version({"callback": mod.cb})
    mod = modules.write("callback", "def cb(x):\n    return -x\n")
    assert data_version({"callback": mod.cb}) != before


def test_versions_are_stable_across_processes(modules: Modules) -> None:
    """A fresh interpreter (another hash seed) computes the same code versions."""
    proc = load(modules)
    expected = " ".join(code_version(obj) for obj in (proc.Scale, proc.task, proc.Settings))
    script = (
        "import importlib, sys\n"
        "from incgraph.hashing import code_version\n"
        f"m = importlib.import_module({proc.__name__!r})\n"
        "sys.stdout.write(' '.join(code_version(o) for o in (m.Scale, m.task, m.Settings)))\n"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "7",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), str(modules.root)]
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert done.stdout == expected


def test_list_and_dict_constants_are_part_of_the_version(modules: Modules) -> None:
    """A module-level list/dict of data read by the code is included; rebinding is seen."""
    source = """
GRID = [0.1, 1.0]
NAMES = {"a": 1}


def score(x):
    return sum(GRID) * x + NAMES["a"]
"""
    mod = modules.write("grid", source)
    before = code_version(mod.score)
    edited = modules.write("grid", source.replace("[0.1, 1.0]", "[0.1, 10.0]"))
    assert code_version(edited.score) != before
    edited = modules.write("grid", source)
    assert code_version(edited.score) == before
    edited.GRID = [0.1, 2.0]  # a re-run notebook cell rebinds the name
    assert code_version(edited.score) != before


def test_mutable_state_does_not_churn_the_version(modules: Modules) -> None:
    """A module-level memo dict filling up in place keeps the version stable (no endless misses)."""
    source = """
_MEMO = {}


def slow_square(x):
    if x not in _MEMO:
        _MEMO[x] = x * x
    return _MEMO[x]
"""
    mod = modules.write("memo", source)
    before = code_version(mod.slow_square)
    for i in range(5):
        mod.slow_square(i)
    assert code_version(mod.slow_square) == before


def test_names_in_annotations_are_not_followed(modules: Modules) -> None:
    """A type named only in annotations does not make its code part of the reader's version."""
    source = """
class Upstream:
    def run(self):
        return 1


class Reader:
    def __call__(self, up: Upstream) -> "Upstream":
        value: Upstream = up
        return value
"""
    mod = modules.write("annotated", source)
    before = code_version(mod.Reader)
    edited = modules.write("annotated", source.replace("return 1", "return 2"))
    assert code_version(edited.Reader) == before


def test_pickling_an_instance_does_not_change_its_class_version(modules: Modules) -> None:
    """copyreg caches __slotnames__ on a class when an instance is pickled: not a code change."""
    import pickle

    mod = modules.write("boxmod", "class Box:\n    def __init__(self, v):\n        self.v = v\n")
    before = code_version(mod.Box)
    pickle.dumps(mod.Box(1))
    assert "__slotnames__" in vars(mod.Box)
    assert code_version(mod.Box) == before


# -- nothing is left out silently -------------------------------------------------------------

UNFINGERPRINTABLE = """
import io
from incgraph.core.processor import Processor

HANDLE = io.BytesIO(b"data")


class Reads(Processor):
    def process(self, x: int) -> int:
        return x + len(HANDLE.getvalue())
"""


def test_an_unfingerprintable_object_raises_naming_the_name_and_the_fix(modules: Modules) -> None:
    """A module-level object with no content hash stops code_version with a HashingError."""
    from incgraph.errors import HashingError

    mod = modules.write("handle", UNFINGERPRINTABLE)
    with pytest.raises(HashingError) as info:
        code_version(mod.Reads)
    message = str(info.value)
    assert "Reads" in message and "HANDLE" in message and "io.BytesIO" in message
    assert "code_ignore" in message and "input" in message


def test_the_run_stops_before_anything_computes(modules: Modules) -> None:
    """A graph whose last node cannot be fingerprinted computes nothing, and the error names
    the node."""
    from incgraph import ProcessGraph, Processor
    from incgraph.errors import HashingError

    mod = modules.write("handle", UNFINGERPRINTABLE)
    calls: list[int] = []

    class First(Processor):
        def process(self, x: int) -> int:
            calls.append(x)
            return x

    graph = ProcessGraph(store=":memory:")
    first = graph.add_node(1, First, {"x": 1})
    last = graph.add_node(2, mod.Reads, {"x": first})
    with pytest.raises(HashingError, match="node 2") as info:
        graph.run_upto(last)
    assert "HANDLE" in str(info.value) and calls == []
    with pytest.raises(HashingError, match="HANDLE"):
        graph.process_batch([1], [last], lambda i, item: None, progress=False)
    assert calls == []


def test_code_ignore_leaves_a_name_out(modules: Modules) -> None:
    """A name listed in code_ignore is not fingerprinted, so editing it changes nothing."""
    source = UNFINGERPRINTABLE.replace(
        "class Reads(Processor):", "class Reads(Processor):\n    code_ignore = ('HANDLE',)"
    )
    mod = modules.write("ignored", source)
    before = code_version(mod.Reads)
    edited = modules.write("ignored", source.replace('b"data"', 'b"other"'))
    assert code_version(edited.Reads) == before
    edited = modules.write("ignored", source.replace("x + len", "x - len"))
    assert code_version(edited.Reads) != before


def test_code_ignore_must_be_a_tuple_of_names(modules: Modules) -> None:
    """code_ignore = 'name' (a bare string) is refused with the fix in the message."""
    from incgraph.errors import HashingError

    source = UNFINGERPRINTABLE.replace(
        "class Reads(Processor):", "class Reads(Processor):\n    code_ignore = 'HANDLE'"
    )
    mod = modules.write("badignore", source)
    with pytest.raises(HashingError, match=r"code_ignore = \('name',\)"):
        code_version(mod.Reads)


def test_allowlisted_objects_need_no_fingerprint(modules: Modules) -> None:
    """Loggers, locks, thread-locals and write-only files can be used without an error."""
    source = """
import logging
import os
import threading

log = logging.getLogger("mine")
OUT = open(os.devnull, "w")
LOCK = threading.Lock()
LOCAL = threading.local()


def work(x):
    with LOCK:
        log.info("working")
        LOCAL.last = x
        OUT.write("done")
        return x + 1
"""
    mod = modules.write("allowed", source)
    before = code_version(mod.work)
    mod.work(1)
    mod.OUT.close()
    assert code_version(mod.work) == before


def test_a_factory_makes_processors_with_different_versions(modules: Modules) -> None:
    """Two processors made by one factory around different arrays get different keys in one
    graph; equal arrays give equal versions."""
    import numpy as np

    from incgraph import ProcessGraph

    source = """
from incgraph.core.processor import Processor


def make(weights):
    class Weighted(Processor):
        def process(self, x: int) -> float:
            return float((weights * x).sum())

    return Weighted
"""
    mod = modules.write("factory", source)
    one, two = mod.make(np.array([1.0, 2.0])), mod.make(np.array([3.0, 4.0]))
    assert code_version(one) != code_version(two)
    assert code_version(one) == code_version(mod.make(np.array([1.0, 2.0])))
    graph = ProcessGraph(store=":memory:")
    a, b = graph.add_node(1, one, {"x": 1}), graph.add_node(2, two, {"x": 1})
    assert graph.run_upto(a) == 3.0 and graph.run_upto(b) == 7.0


def test_version_one_and_version_true_differ() -> None:
    """Two nodes of one processor with version=1 and version=True do not share a key."""
    from incgraph import ProcessGraph, Processor

    class Same(Processor):
        def process(self, x: int) -> int:
            return x

    graph = ProcessGraph(store=":memory:")
    one = graph.add_node(1, Same, {"x": 1}, version=1)
    true = graph.add_node(2, Same, {"x": 1}, version=True)
    assert one.code_version() != true.code_version()


# -- scoping and state ------------------------------------------------------------------------


def test_a_local_name_does_not_pull_in_a_global_of_the_same_name(modules: Modules) -> None:
    """``for t in ...`` inside a function does not make a module-level ``t`` part of it."""
    source = """
t = 1.0


def count(words):
    return sum(1 for t in words if t)
"""
    mod = modules.write("shadow", source)
    before = code_version(mod.count)
    mod.t = 2.0
    assert code_version(mod.count) == before


def test_state_rebound_at_run_time_is_not_code(modules: Modules) -> None:
    """Counters, lazily loaded class attributes and global counters keep the version stable."""
    source = """
import io

from incgraph.core.processor import Processor

N = 0


class Counted(Processor):
    calls = 0
    model = None

    def process(self, x: int) -> int:
        global N
        N += 1
        Counted.calls += 1
        if type(self).model is None:
            type(self).model = io.BytesIO(b"weights")
        return x
"""
    mod = modules.write("state", source)
    before = code_version(mod.Counted)
    mod.Counted().process(1)
    assert mod.Counted.calls == 1 and mod.N == 1
    assert code_version(mod.Counted) == before
    edited = modules.write("state", source.replace("calls = 0", "calls = 5"))
    assert code_version(edited.Counted) != before  # the definition's source counts


def test_a_filled_registry_follows_its_functions(modules: Modules) -> None:
    """A registry filled by a decorator is state for its data but not for the code it holds."""
    source = """
REGISTRY = {}


def register(fn):
    REGISTRY[fn.__name__] = fn
    return fn


@register
def double(x):
    return 2 * x


def apply(name, x):
    return REGISTRY[name](x)
"""
    mod = modules.write("registry", source)
    before = code_version(mod.apply)
    edited = modules.write("registry", source.replace("2 * x", "3 * x"))
    assert code_version(edited.apply) != before


def test_the_classes_of_inputs_are_part_of_a_processor(modules: Modules) -> None:
    """A processor depends on the code of the user classes its process() annotations name."""
    source = """
import dataclasses

from incgraph.core.processor import Processor


@dataclasses.dataclass
class Rect:
    w: int
    h: int

    def area(self):
        return self.w * self.h


class Area(Processor):
    def process(self, r: "list[Rect] | None") -> int:
        return sum(x.area() for x in r or [])
"""
    mod = modules.write("inputs", source)
    before = code_version(mod.Area)
    edited = modules.write("inputs", source.replace("self.w * self.h", "self.w + self.h"))
    assert code_version(edited.Area) != before


def test_singledispatch_and_metaclasses_are_followed(modules: Modules) -> None:
    """Registered singledispatch implementations and metaclass methods are part of the code."""
    source = """
from functools import singledispatch


@singledispatch
def size(x):
    return 0


@size.register
def _(x: str):
    return len(x)


class Meta(type):
    def unit(cls):
        return 1


class Uses(metaclass=Meta):
    def run(self, x):
        return size(x) * type(self).unit()
"""
    mod = modules.write("dispatch", source)
    before = code_version(mod.Uses)
    assert code_version(modules.write("dispatch", source.replace("len(x)", "2"))) != before
    assert code_version(modules.write("dispatch", source.replace("return 1", "return 2"))) != (
        before
    )


def test_a_setting_changed_before_the_run_is_not_state(modules: Modules) -> None:
    """A global that only a setter outside the processor's code rebinds enters by value."""
    source = """
MODE = "fast"


def set_mode(mode):
    global MODE
    MODE = mode


def work(x):
    return x * (2 if MODE == "fast" else 3)
"""
    mod = modules.write("setting", source)
    before = code_version(mod.work)
    mod.set_mode("slow")
    assert code_version(mod.work) != before
    mod.set_mode("fast")
    assert code_version(mod.work) == before


def test_state_found_late_in_the_walk_is_still_state(modules: Modules) -> None:
    """A counter read by one function and rebound by a helper walked after it is state."""
    source = """
COUNT = 0


def report(x):
    return x + 0 * COUNT + bump()


def bump():
    global COUNT
    COUNT += 1
    return 0
"""
    mod = modules.write("late", source)
    before = code_version(mod.report)
    mod.report(1)
    assert mod.COUNT == 1 and code_version(mod.report) == before


LIBRARY_SHAPES = """
import argparse
import collections

import attrs


@attrs.frozen
class Frozen:
    x: int

    def double(self):
        return 2 * self.x


ARGS = argparse.Namespace(k=2, names=["a"])
QUEUE = collections.deque([1, 2])


def use(x):
    return Frozen(x).double() * ARGS.k + len(QUEUE)
"""


def test_library_objects_written_in_python_enter_by_their_attributes(modules: Modules) -> None:
    """An argparse.Namespace or a deque at module level counts by value; attrs classes (whose
    generated __hash__ is salted per hash seed) give the same version in every process."""
    mod = modules.write("shapes", LIBRARY_SHAPES)
    before = code_version(mod.use)
    mod.ARGS = __import__("argparse").Namespace(k=3, names=["a"])
    assert code_version(mod.use) != before
    mod = modules.write("shapes", LIBRARY_SHAPES)
    assert code_version(mod.use) == before
    assert code_version(modules.write("shapes", LIBRARY_SHAPES.replace("[1, 2]", "[1]"))) != (
        before
    )
    mod = modules.write("shapes", LIBRARY_SHAPES)
    script = (
        "import importlib, sys\n"
        "from incgraph.hashing import code_version\n"
        f"m = importlib.import_module({mod.__name__!r})\n"
        "sys.stdout.write(code_version(m.use))\n"
    )
    for seed in ("1", "2"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2]), str(modules.root)]
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.stdout == before, done.stderr


def test_a_lazily_loaded_global_read_before_its_loader_is_state(modules: Modules) -> None:
    """A global a helper loads lazily (``global _model``) is state even when another function
    reads it first and its loaded value cannot be fingerprinted."""
    source = """
import io

_model = None


def predict(x):
    if _model is None:
        load()
    return x + len(_model.getvalue())


def load():
    global _model
    _model = io.BytesIO(b"weights")
"""
    mod = modules.write("lazy", source)
    before = code_version(mod.predict)
    assert mod.predict(1) == 8
    for _ in range(3):
        assert code_version(mod.predict) == before


def test_objects_whose_attribute_lookups_raise_are_fingerprinted(modules: Modules) -> None:
    """A module-level proxy whose __getattr__ raises is fingerprinted by its class and
    attributes, without calling __getattr__."""
    source = """
class Proxy:
    __slots__ = ()

    def __getattr__(self, name):
        raise RuntimeError("no backend configured")


PROXY = Proxy()


def use(x):
    return PROXY.compute(x)
"""
    mod = modules.write("proxy", source)
    assert code_version(mod.use) == code_version(mod.use)
