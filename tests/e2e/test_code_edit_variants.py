"""More code edited on disk between runs in real processes: variants users write every day.

Same protocol as ``test_code_edits``: every pattern runs as version 1 twice on a store S, then
version 2 on S and on a fresh store F (equal values; a relevant edit recomputes, an irrelevant
one does not), then version 2 on S again (all hits). Each script also reruns in-process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_code_edits import (
    HEAD,
    Pattern,
    Project,
    check_all_hits,
    check_recomputed,
    one,
    run_script,
)


def proc(body: str, pre: str = "", ret: str = "int") -> str:
    """A module defining processor ``P`` whose ``process(self, x: int)`` runs ``body``."""
    lines = "".join("        " + line + "\n" for line in body.splitlines())
    return f"{HEAD}{pre}class P(Processor):\n    def process(self, x: int) -> {ret}:\n{lines}"


def same(body: str, pre: str, old: str, new: str, ret: str = "int", **helpers: Any) -> Pattern:
    """A pattern whose module-level prelude changes ``old`` into ``new``."""
    return one(proc(body, pre, ret), proc(body, pre.replace(old, new), ret), **helpers)


def helper_edit(
    body: str, pre: str, helpers: dict[str, tuple[str, str]], ret: str = "int"
) -> Pattern:
    """A pattern whose processor module stays and whose helper files change."""
    return one(proc(body, pre, ret), proc(body, pre, ret), **helpers)


def state(body: str, pre: str = "", ret: str = "int") -> Pattern:
    """A pattern with no edit at all: every rerun must be a hit."""
    return one(proc(body, pre, ret), proc(body, pre, ret), relevant=False)


NP = "import numpy as np\n"
MEMO_MODULE = (
    "import logging\nlog = logging.getLogger(__name__)\n_CACHE = {}\nCALLS = 0\n"
    "def f(x):\n    global CALLS\n    CALLS += 1\n    if x not in _CACHE:\n"
    "        _CACHE[x] = x * 2\n    return _CACHE[x]\n"
)
LOCKED = proc(
    "with self.lock:\n    self.log.info('hi')\n    return x * 2", "import logging, threading\n"
)
LOCK_ATTRS = "    lock = threading.RLock()\n    log = logging.getLogger('q')\n"

PATTERNS: dict[str, Pattern] = {
    # -- library chains and library callables ---------------------------------------------
    "np_linalg_ord": same(
        "return int(np.linalg.norm(np.ones(x) * 2, ord=ORD) ** 2)", NP + "ORD = 2\n", "2\n", "1\n"
    ),
    "np_linalg_fn": same(
        "return int(round(float(FN(np.ones((x, x)) + np.eye(x)))))",
        NP + "FN = np.linalg.det\n",
        "np.linalg.det",
        "np.linalg.matrix_rank",
    ),
    "np_rng_seed": same(
        "return int(np.random.default_rng(SEED).integers(0, 10**6))",
        NP + "SEED = 0\n",
        "0\n",
        "1\n",
    ),
    "np_dtype_64": same(
        "return np.zeros(x, dtype=DTYPE).nbytes",
        NP + "DTYPE = np.float32\n",
        "np.float32",
        "np.float64",
    ),
    "np_dtype_obj": same(
        "return np.zeros(x, dtype=DTYPE).nbytes",
        NP + "DTYPE = np.dtype('float32')\n",
        "float32",
        "float64",
    ),
    "sklearn_class": same(
        "m = MODEL(alpha=1.0).fit(np.arange(8.0).reshape(4, 2), np.arange(4.0))\n"
        "return int(round(float(m.coef_.sum()) * 1000))",
        NP + "from sklearn.linear_model import Ridge, Lasso\nMODEL = Ridge\n",
        "MODEL = Ridge",
        "MODEL = Lasso",
    ),
    "math_callable": same(
        "return ACT(x / 2)", "import math\nACT = math.floor\n", "math.floor", "math.ceil"
    ),
    "itemgetter": same(
        "return GET((x, x * 10))",
        "from operator import itemgetter\nGET = itemgetter(0)\n",
        "itemgetter(0)",
        "itemgetter(1)",
    ),
    "methodcaller": same(
        "return len(CALL('a-b-c' * x))",
        "from operator import methodcaller\nCALL = methodcaller('split', '-')\n",
        "'-'",
        "'b'",
    ),
    "np_ufunc_reduce": same(
        "return int(OP.reduce(np.arange(1, x + 2)))", NP + "OP = np.add\n", "np.add", "np.multiply"
    ),
    # -- user helpers in a package ----------------------------------------------------------
    "pkg_from_import": helper_edit(
        "return f(x)",
        "from q_pkg1.helpers import f\n",
        {
            "q_pkg1/__init__.py": ("", ""),
            "q_pkg1/helpers.py": ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n"),
        },
    ),
    "pkg_import_as": helper_edit(
        "return h.f(x)",
        "import q_pkg2.helpers as h\n",
        {
            "q_pkg2/__init__.py": ("", ""),
            "q_pkg2/helpers.py": ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n"),
        },
    ),
    "pkg_relative": helper_edit(
        "return f(x)",
        "from q_pkg3.helpers import f\n",
        {
            "q_pkg3/__init__.py": ("", ""),
            "q_pkg3/helpers.py": (
                "from .core import g\nfrom . import consts\n"
                "def f(x):\n    return g(x) + consts.K\n",
                "from .core import g\nfrom . import consts\n"
                "def f(x):\n    return g(x) + consts.K\n",
            ),
            "q_pkg3/core.py": ("def g(x):\n    return x * 2\n", "def g(x):\n    return x * 3\n"),
            "q_pkg3/consts.py": ("K = 1\n", "K = 1\n"),
        },
    ),
    "pkg_relative_const": helper_edit(
        "return f(x)",
        "from q_pkg4.helpers import f\n",
        {
            "q_pkg4/__init__.py": ("", ""),
            "q_pkg4/helpers.py": (
                "from . import consts\ndef f(x):\n    return x + consts.K\n",
                "from . import consts\ndef f(x):\n    return x + consts.K\n",
            ),
            "q_pkg4/consts.py": ("K = 1\n", "K = 4\n"),
        },
    ),
    "pkg_reexport": helper_edit(
        "return q_pkg5.f(x)",
        "import q_pkg5\n",
        {
            "q_pkg5/__init__.py": ("from .impl import f\n", "from .impl import f\n"),
            "q_pkg5/impl.py": ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n"),
        },
    ),
    # -- helper classes -----------------------------------------------------------------------
    "class_method_edit": same(
        "return Tool(x).run()",
        "class Tool:\n    def __init__(self, v):\n        self.v = v\n"
        "    def run(self):\n        return self.v * 2\n",
        "self.v * 2",
        "self.v * 3",
    ),
    "class_property": same(
        "return Tool(x).twice",
        "class Tool:\n    def __init__(self, v):\n        self.v = v\n"
        "    @property\n    def twice(self):\n        return self.v * 2\n",
        "self.v * 2",
        "self.v * 5",
    ),
    "class_staticmethod": same(
        "return Tool.scale(x)",
        "class Tool:\n    @staticmethod\n    def scale(v):\n        return v * 2\n",
        "v * 2",
        "v * 5",
    ),
    "class_classmethod": same(
        "return Tool.make(x)",
        "class Tool:\n    K = 2\n    @classmethod\n    def make(cls, v):\n        return v * cls.K\n",
        "K = 2",
        "K = 6",
    ),
    "class_init_default": same(
        "return Tool().k * x",
        "class Tool:\n    def __init__(self, k=2):\n        self.k = k\n",
        "k=2",
        "k=7",
    ),
    "class_in_other_module": helper_edit(
        "return Tool(x).run()",
        "from q_tool import Tool\n",
        {
            "q_tool.py": (
                "class Tool:\n    def __init__(self, v):\n        self.v = v\n"
                "    def run(self):\n        return self._twice()\n"
                "    def _twice(self):\n        return self.v * 2\n",
                "class Tool:\n    def __init__(self, v):\n        self.v = v\n"
                "    def run(self):\n        return self._twice()\n"
                "    def _twice(self):\n        return self.v * 9\n",
            )
        },
    ),
    # -- inheritance --------------------------------------------------------------------------
    "subclass_base_process": one(
        "from q_base import Base\nclass P(Base):\n    pass\n",
        "from q_base import Base\nclass P(Base):\n    pass\n",
        **{
            "q_base.py": (
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x + 1\n",
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x + 2\n",
            )
        },
    ),
    "subclass_base_helper": one(
        "from q_base2 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return self.step(x) * 10\n",
        "from q_base2 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return self.step(x) * 10\n",
        **{
            "q_base2.py": (
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x\n    def step(self, x):\n        return x + 1\n",
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x\n    def step(self, x):\n        return x + 2\n",
            )
        },
    ),
    "subclass_super": one(
        "from q_base3 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return super().process(x) * 10\n",
        "from q_base3 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return super().process(x) * 10\n",
        **{
            "q_base3.py": (
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x + 1\n",
                HEAD + "class Base(Processor):\n    def process(self, x: int) -> int:\n"
                "        return x + 3\n",
            )
        },
    ),
    "mixin": one(
        HEAD + "from q_mixin import Mix\nclass P(Mix, Processor):\n"
        "    def process(self, x: int) -> int:\n        return self.bump(x)\n",
        HEAD + "from q_mixin import Mix\nclass P(Mix, Processor):\n"
        "    def process(self, x: int) -> int:\n        return self.bump(x)\n",
        **{
            "q_mixin.py": (
                "class Mix:\n    def bump(self, x):\n        return x + 1\n",
                "class Mix:\n    def bump(self, x):\n        return x + 4\n",
            )
        },
    ),
    "base_class_attr": one(
        "from q_base4 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return x * self.K\n",
        "from q_base4 import Base\nclass P(Base):\n"
        "    def process(self, x: int) -> int:\n        return x * self.K\n",
        **{
            "q_base4.py": (
                HEAD + "class Base(Processor):\n    K = 2\n",
                HEAD + "class Base(Processor):\n    K = 3\n",
            )
        },
    ),
    # -- module-level config objects ------------------------------------------------------------
    "frozen_dataclass": same(
        "return x * CFG.k",
        "from dataclasses import dataclass\n@dataclass(frozen=True)\nclass C:\n    k: int\n"
        "CFG = C(2)\n",
        "C(2)",
        "C(3)",
    ),
    "dataclass_default": same(
        "return x * CFG.k",
        "from dataclasses import dataclass, field\n@dataclass\nclass C:\n    k: int = 2\n"
        "    tags: list = field(default_factory=list)\nCFG = C()\n",
        "k: int = 2",
        "k: int = 5",
    ),
    "dict_of_dicts": same(
        "return x * CFG['model']['k']",
        "CFG = {'model': {'k': 2, 'name': 'a'}, 'data': {'n': 1}}\n",
        "'k': 2",
        "'k': 3",
    ),
    "enum_member": same(
        "return x * MODE.value",
        "import enum\nclass Mode(enum.Enum):\n    A = 2\n    B = 3\nMODE = Mode.A\n",
        "MODE = Mode.A",
        "MODE = Mode.B",
    ),
    "enum_value": same(
        "return x * Mode.A.value",
        "import enum\nclass Mode(enum.Enum):\n    A = 2\n    B = 3\n",
        "A = 2",
        "A = 4",
    ),
    "namedtuple": same(
        "return x * CFG.k",
        "from typing import NamedTuple\nclass C(NamedTuple):\n    k: int\nCFG = C(2)\n",
        "C(2)",
        "C(3)",
    ),
    "path_const": same(
        "return x + len(str(ROOT / 'data'))",
        "from pathlib import Path\nROOT = Path('/tmp/a')\n",
        "/tmp/a",
        "/tmp/abc",
    ),
    "regex": same(
        "return x + len(PAT.findall('a1b22c333'))",
        "import re\nPAT = re.compile(r'\\d')\n",
        "\\d'",
        "\\d+'",
    ),
    "regex_flags": same(
        "return x + len(PAT.findall('aAaA'))",
        "import re\nPAT = re.compile('a')\n",
        "'a')",
        "'a', re.I)",
    ),
    "datetime_const": same(
        "return x + START.day",
        "import datetime\nSTART = datetime.date(2024, 1, 2)\n",
        "1, 2)",
        "1, 5)",
    ),
    "timedelta_const": same(
        "return x + int(WINDOW.total_seconds())",
        "from datetime import timedelta\nWINDOW = timedelta(seconds=5)\n",
        "=5",
        "=9",
    ),
    "decimal_const": same(
        "return int(RATE * x * 100)",
        "from decimal import Decimal\nRATE = Decimal('0.5')\n",
        "0.5",
        "0.25",
        ret="int",
    ),
    "fraction_const": same(
        "return int(RATE * x * 100)",
        "from fractions import Fraction\nRATE = Fraction(1, 2)\n",
        "1, 2",
        "1, 4",
    ),
    "frozenset_const": same(
        "return sum(1 for w in ('a', 'b', 'c') if w in ALLOWED) + x",
        "ALLOWED = frozenset({'a', 'b'})\n",
        "'a', 'b'",
        "'a', 'b', 'c'",
    ),
    # -- allowlisted objects: must not break and must be hits ----------------------------------
    "logger": state(
        "log.debug('x=%s', x)\nreturn x * 2", "import logging\nlog = logging.getLogger(__name__)\n"
    ),
    "lock": state("with LOCK:\n    return x * 2", "import threading\nLOCK = threading.Lock()\n"),
    "lock_and_logger_on_class": one(
        LOCKED.replace("class P(Processor):\n", "class P(Processor):\n" + LOCK_ATTRS),
        LOCKED.replace("class P(Processor):\n", "class P(Processor):\n" + LOCK_ATTRS),
        relevant=False,
    ),
    # -- functions inside process -------------------------------------------------------------------
    "lambda_in_process": same("f = lambda v: v * K\nreturn f(x)", "K = 2\n", "K = 2", "K = 3"),
    "nested_in_process": same(
        "def inner(v):\n    return v * K\nreturn inner(x)", "K = 2\n", "K = 2", "K = 3"
    ),
    "genexpr_global": same("return sum(v * K for v in range(x))", "K = 2\n", "K = 2", "K = 3"),
    "comprehension_helper": same(
        "return sum([f(v) for v in range(x)])",
        "def f(v):\n    return v * 2\n",
        "v * 2",
        "v * 3",
    ),
    "wraps_decorator": same(
        "return f(x)",
        "import functools\ndef deco(fn):\n    @functools.wraps(fn)\n"
        "    def wrapper(*a):\n        return fn(*a)\n    return wrapper\n"
        "@deco\ndef f(v):\n    return v * 2\n",
        "v * 2",
        "v * 3",
    ),
    "wraps_decorator_edit": same(
        "return f(x)",
        "import functools\ndef deco(fn):\n    @functools.wraps(fn)\n"
        "    def wrapper(*a):\n        return fn(*a) + 1\n    return wrapper\n"
        "@deco\ndef f(v):\n    return v * 2\n",
        "fn(*a) + 1",
        "fn(*a) + 5",
    ),
    "lru_cache": same(
        "return f(x)",
        "import functools\n@functools.lru_cache(maxsize=None)\ndef f(v):\n    return v * 2\n",
        "v * 2",
        "v * 3",
    ),
    "cache_decorator": same(
        "return f(x) + f(x)",
        "from functools import cache\n@cache\ndef f(v):\n    return v * 2\n",
        "v * 2",
        "v * 3",
    ),
    "decorator_with_args": same(
        "return f(x)",
        "def times(k):\n    def deco(fn):\n        def wrapper(v):\n            return fn(v) * k\n"
        "        return wrapper\n    return deco\n@times(2)\ndef f(v):\n    return v + 1\n",
        "@times(2)",
        "@times(3)",
    ),
    # -- state: must be hits ------------------------------------------------------------------------
    "self_class_counter": one(
        proc("self.__class__.calls += 1\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    calls = 0\n"
        ),
        proc("self.__class__.calls += 1\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    calls = 0\n"
        ),
        relevant=False,
    ),
    "type_self_counter": one(
        proc("type(self).calls += 1\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    calls = 0\n"
        ),
        proc("type(self).calls += 1\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    calls = 0\n"
        ),
        relevant=False,
    ),
    "module_list_append": state("SEEN.append(x)\nreturn x * 2", "SEEN = []\n"),
    "module_dict_memo_in_process": state(
        "if x not in CACHE:\n    CACHE[x] = x * x\nreturn CACHE[x]", "CACHE = {}\n"
    ),
    "helper_counter_global": state(
        "return f(x)",
        "CALLS = 0\ndef f(v):\n    global CALLS\n    CALLS += 1\n    return v * 2\n",
    ),
    "lazy_model_global": state(
        "global MODEL\nif MODEL is None:\n    MODEL = {'k': 2}\nreturn x * MODEL['k']",
        "MODEL = None\n",
    ),
    "lazy_model_setup": one(
        proc("return x * self.model['k']").replace(
            "class P(Processor):\n",
            "class P(Processor):\n    def setup(self):\n        self.model = {'k': 2}\n",
        ),
        proc("return x * self.model['k']").replace(
            "class P(Processor):\n",
            "class P(Processor):\n    def setup(self):\n        self.model = {'k': 2}\n",
        ),
        relevant=False,
    ),
    "class_cache_dict": one(
        proc("type(self).cache[x] = x\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    cache = {}\n"
        ),
        proc("type(self).cache[x] = x\nreturn x * 2").replace(
            "class P(Processor):\n", "class P(Processor):\n    cache = {}\n"
        ),
        relevant=False,
    ),
    # -- more library values ---------------------------------------------------------------------
    "torch_activation": same(
        "return int(ACT(torch.tensor(float(x) - 4)).item() * 1000)",
        "import torch\nACT = torch.relu\n",
        "torch.relu",
        "torch.sigmoid",
    ),
    "sklearn_instance": same(
        "m = clone(MODEL).fit(np.arange(8.0).reshape(4, 2), np.arange(4.0))\n"
        "return int(round(float(m.coef_.sum()) * 1000))",
        NP + "from sklearn.base import clone\nfrom sklearn.linear_model import Ridge\n"
        "MODEL = Ridge(alpha=1.0)\n",
        "alpha=1.0",
        "alpha=5.0",
    ),
    "np_linspace_const": same(
        "return int(GRID.sum() * 100) + x", NP + "GRID = np.linspace(0, 1, 5)\n", "5)", "9)"
    ),
    "dataframe_const": same(
        "return int(TABLE['a'].sum()) + x",
        "import pandas as pd\nTABLE = pd.DataFrame({'a': [1, 2]})\n",
        "[1, 2]",
        "[1, 5]",
    ),
    "default_factory": same(
        "return x + sum(C().ws)",
        "from dataclasses import dataclass, field\n@dataclass\nclass C:\n"
        "    ws: list = field(default_factory=lambda: [1, 2])\n",
        "[1, 2]",
        "[1, 7]",
    ),
    "enum_method": same(
        "return Mode.A.scale(x)",
        "import enum\nclass Mode(enum.Enum):\n    A = 1\n"
        "    def scale(self, v):\n        return v * 2\n",
        "v * 2",
        "v * 3",
    ),
    "cached_property": same(
        "return Tool(x).twice",
        "import functools\nclass Tool:\n    def __init__(self, v):\n        self.v = v\n"
        "    @functools.cached_property\n    def twice(self):\n        return self.v * 2\n",
        "self.v * 2",
        "self.v * 5",
    ),
    "generator_helper": same(
        "return sum(steps(x))",
        "def steps(n):\n    for i in range(n):\n        yield i * 2\n",
        "i * 2",
        "i * 3",
    ),
    "nested_class_in_processor": one(
        proc("return self.Inner().k * x").replace(
            "class P(Processor):\n", "class P(Processor):\n    class Inner:\n        k = 2\n"
        ),
        proc("return self.Inner().k * x").replace(
            "class P(Processor):\n", "class P(Processor):\n    class Inner:\n        k = 3\n"
        ),
    ),
    "helper_class_counter": state(
        "Stats.calls += 1\nStats.seen.append(x)\nreturn x * 2",
        "class Stats:\n    calls = 0\n    seen = []\n",
    ),
    "classmethod_counter": one(
        proc("self.bump()\nreturn x * 2").replace(
            "class P(Processor):\n",
            "class P(Processor):\n    calls = 0\n    @classmethod\n    def bump(cls):\n"
            "        cls.calls += 1\n",
        ),
        proc("self.bump()\nreturn x * 2").replace(
            "class P(Processor):\n",
            "class P(Processor):\n    calls = 0\n    @classmethod\n    def bump(cls):\n"
            "        cls.calls += 1\n",
        ),
        relevant=False,
    ),
    "lazy_class_model_helper": one(
        proc(
            "if P.model is None:\n    P.model = load()\nreturn x * P.model['k']",
            "def load():\n    return {'k': 2}\n",
        ).replace("class P(Processor):\n", "class P(Processor):\n    model = None\n"),
        proc(
            "if P.model is None:\n    P.model = load()\nreturn x * P.model['k']",
            "def load():\n    return {'k': 2}\n",
        ).replace("class P(Processor):\n", "class P(Processor):\n    model = None\n"),
        relevant=False,
    ),
    "registry_setdefault": state(
        "REG.setdefault(x, {})['n'] = REG.get(x, {}).get('n', 0) + 1\nreturn x * 2", "REG = {}\n"
    ),
    # -- a user module used as a value: every name it holds can be read --------------------------
    "module_getattr_literal": helper_edit(
        "return getattr(q_ops1, 'g')(x)",
        "import q_ops1\n",
        {"q_ops1.py": ("def g(x):\n    return x + 1\n", "def g(x):\n    return x + 2\n")},
    ),
    "module_getattr_by_name": helper_edit(
        "name = 'g' if x > 0 else 'h'\nreturn getattr(q_ops2, name)(x)",
        "import q_ops2\n",
        {
            "q_ops2.py": (
                "def g(x):\n    return x + 1\ndef h(x):\n    return 0\n",
                "def g(x):\n    return x + 2\ndef h(x):\n    return 0\n",
            )
        },
    ),
    "module_vars": helper_edit(
        "return x * vars(q_cfg)['K']", "import q_cfg\n", {"q_cfg.py": ("K = 2\n", "K = 3\n")}
    ),
    "module_dict": helper_edit(
        "return q_cfg2.__dict__['g'](x)",
        "import q_cfg2\n",
        {"q_cfg2.py": ("def g(x):\n    return x + 1\n", "def g(x):\n    return x + 2\n")},
    ),
    "module_lazy_getattr": helper_edit(
        "return x * q_lazy.K",
        "import q_lazy\n",
        {
            "q_lazy.py": (
                "def __getattr__(name):\n    return 2\n",
                "def __getattr__(name):\n    return 3\n",
            )
        },
    ),
    "module_getattr_with_state": one(
        proc("return getattr(q_memo, 'f')(x)", "import q_memo\n"),
        proc("return getattr(q_memo, 'f')(x)", "import q_memo\n"),
        relevant=False,
        **{"q_memo.py": (MEMO_MODULE, MEMO_MODULE)},
    ),
    "eval_reads_globals": same("return eval('x * K')", "K = 2\n", "K = 2", "K = 3"),
    "globals_lookup": same("return x * globals()['K']", "K = 2\n", "K = 2", "K = 3"),
    "eval_hit": state("return eval('x * K')", "K = 2\nSEEN = []\nSEEN.append(1)\n"),
    # -- names imported from libraries are library code ---------------------------------------
    "from_random_import": same(
        "items = list(range(x + 5))\nseed(SEED)\nshuffle(items)\nreturn items[0] * 100 + items[1]",
        "from random import seed, shuffle\nSEED = 1\n",
        "SEED = 1",
        "SEED = 2",
    ),
    "from_numpy_random_import": same(
        "np.random.seed(SEED)\nreturn int(rand(3).sum() * 1000)",
        NP + "from numpy.random import rand\nSEED = 1\n",
        "SEED = 1",
        "SEED = 2",
    ),
    "from_scipy_stats_import": same(
        "return int(DIST.cdf(x / 4) * 1000)",
        "from scipy.stats import norm, expon\nDIST = norm\n",
        "DIST = norm",
        "DIST = expon",
    ),
    "from_random_import_hit": state(
        "seed(x)\nreturn randint(0, 100)", "from random import seed, randint\n"
    ),
    "operator_getters_hit": state(
        "return GET((x, 1)) + len(CALL('a b')) + len(ATTR(str))",
        "from operator import attrgetter, itemgetter, methodcaller\n"
        "GET = itemgetter(0)\nCALL = methodcaller('split', sep=' ')\nATTR = attrgetter('__name__')\n",
    ),
}


# Objects whose state running code changes: the run stops before anything computes, naming
# the processor, the name and the fix.
UNFINGERPRINTABLE: dict[str, Pattern] = {
    "module_rng": state(
        "return x + int(RNG.integers(0, 1))", NP + "RNG = np.random.default_rng(0)\n"
    ),
    "module_counter": state(
        "return x + next(TICKS)", "import itertools\nTICKS = itertools.count()\n"
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every pattern's runs: v1 twice on S, v2 on S and on a fresh store, v2 again on S."""
    project = Project(tmp_path_factory.mktemp("variants"))
    names = sorted(PATTERNS)
    project.write("v1", PATTERNS)
    project.write("v1", UNFINGERPRINTABLE)
    first = project.run("S", [*names, *UNFINGERPRINTABLE])
    again = project.run("S", names)
    project.write("v2", PATTERNS)
    edited = project.run("S", names)
    fresh = project.run("F", names)
    settled = project.run("S", names)
    steps = {"first": first, "again": again, "edited": edited, "fresh": fresh, "settled": settled}
    every = [*names, *UNFINGERPRINTABLE]
    return {
        name: {step: runs[name] for step, runs in steps.items() if name in runs} for name in every
    }


RELEVANT = sorted(name for name, p in PATTERNS.items() if p.relevant)
IRRELEVANT = sorted(name for name, p in PATTERNS.items() if not p.relevant)


@pytest.mark.parametrize("name", RELEVANT)
def test_an_edit_recomputes_and_equals_a_fresh_run(
    outcomes: dict[str, dict[str, Any]], name: str
) -> None:
    """After a relevant edit the rerun recomputes and returns what a fresh run returns."""
    check_recomputed(outcomes[name])


@pytest.mark.parametrize("name", IRRELEVANT)
def test_no_relevant_change_is_a_hit_in_every_new_process(
    outcomes: dict[str, dict[str, Any]], name: str
) -> None:
    """State, allowlisted objects and unchanged code never make a rerun recompute."""
    check_all_hits(outcomes[name])


@pytest.mark.parametrize("name", sorted(UNFINGERPRINTABLE))
def test_state_held_in_a_module_stops_the_run_naming_the_name(
    outcomes: dict[str, dict[str, Any]], name: str
) -> None:
    """A module-level generator or counter raises a HashingError naming node, name and fix."""
    error = outcomes[name]["first"][0]["error"]
    assert error.startswith("HashingError: node ") and f"{name}/P" in error
    assert "RNG" in error or "TICKS" in error
    assert "code_ignore" in error and "as an input" in error


# -- the same patterns through every front-end -----------------------------------------------

FRONT_ENDS = textwrap.dedent(
    """
    import json, os, sys
    import incgraph.queues as iq
    from incgraph import ProcessGraph
    import fe_variants as fe

    store = sys.argv[1]
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node("x", "x")
    node = graph.add_node("p", fe.P, {"x": x})
    stats = graph.process_batch([1, 2, 3], [node], lambda i, item: x.set_value(item))
    batch = []
    for item in [1, 2, 3]:
        x.set_value(item)
        batch.append(graph.run_upto(node))
    execution = fe.Chain(store=store)()
    pipeline = iq.Pipeline(store=store)
    out = pipeline.map(fe.task, iq.Queue([1, 2, 3]))
    report = pipeline.run()
    cached = [fe.mwork.check_call_in_cache(item) for item in [1, 2, 3]]
    memo = [fe.mwork(item) for item in [1, 2, 3]]
    print(json.dumps({
        "batch": {"computed": stats.computed, "values": batch},
        "flow": {"computed": sorted(execution.computed), "y": execution[fe.L].y},
        "queue": {"computed": report.computed, "values": list(out)},
        "memoize": {"computed": cached.count(False), "values": memo},
    }))
    """
)
FE_VARIANTS = textwrap.dedent(
    """
    import functools, os
    from dataclasses import dataclass
    from random import Random
    from fe_pkg.helpers import scale
    from incgraph import Processor, memoize
    from incgraph.flow import Flow, Layer

    @dataclass
    class Cfg:
        k: int

    CFG = Cfg(2)
    SEEN = []
    _MEMO = {}

    @functools.lru_cache(maxsize=None)
    def offset(v):
        return v + 1

    def work(x):
        SEEN.append(x)
        if x not in _MEMO:
            _MEMO[x] = scale(x) * CFG.k + offset(x) + Random(x).randint(0, 0)
        return _MEMO[x]

    class P(Processor):
        calls = 0

        def process(self, x: int) -> int:
            type(self).calls += 1
            return work(x)

    class Chain(Flow): ...

    @Chain.register
    class L(Layer):
        def __call__(self) -> None:
            self.y = work(4)

    def task(x):
        return work(x)

    @memoize(store=os.environ["FE_STORE"])
    def mwork(x):
        return work(x)
    """
)
HELPERS = "from . import consts\ndef scale(x):\n    return x * consts.K\n"


def front_ends(project: Project, store: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every front-end's values and how much of it computed, in a new process."""
    monkeypatch.setenv("FE_STORE", str(store))
    return run_script(project, FRONT_ENDS, str(store))


def computed_anything(run: dict[str, Any]) -> bool:
    counts = [run["batch"]["computed"], run["queue"]["computed"], run["memoize"]["computed"]]
    return any(counts) or bool(run["flow"]["computed"])


def all_computed(run: dict[str, Any]) -> bool:
    counts = [run["batch"]["computed"], run["queue"]["computed"], run["memoize"]["computed"]]
    return counts == [3, 3, 3] and run["flow"]["computed"] == ["L"]


def test_front_ends_see_package_and_config_edits_and_keep_state_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """process_batch, a Flow layer, a queue task and memoize: state never recomputes; an edit to
    a package's constant or a module-level dataclass config recomputes and equals a fresh run."""
    project = Project(tmp_path)
    (project.code / "fe_pkg").mkdir()
    (project.code / "fe_pkg" / "__init__.py").write_text("")
    (project.code / "fe_pkg" / "helpers.py").write_text(HELPERS)
    consts = project.code / "fe_pkg" / "consts.py"
    consts.write_text("K = 10\n")
    module = project.code / "fe_variants.py"
    module.write_text(FE_VARIANTS)
    first = front_ends(project, tmp_path / "S", monkeypatch)
    assert all_computed(first) and first["batch"]["values"] == [22, 43, 64]
    assert not computed_anything(front_ends(project, tmp_path / "S", monkeypatch))
    for step, edit in enumerate(
        [
            lambda: consts.write_text("K = 20\n"),
            lambda: module.write_text(FE_VARIANTS.replace("Cfg(2)", "Cfg(3)")),
        ]
    ):
        edit()
        edited = front_ends(project, tmp_path / "S", monkeypatch)
        fresh = front_ends(project, tmp_path / f"F{step}", monkeypatch)
        assert all_computed(edited) and all_computed(fresh)
        assert edited == fresh
        again = front_ends(project, tmp_path / "S", monkeypatch)
        assert not computed_anything(again)
    assert edited["batch"]["values"] == [62, 123, 184]
