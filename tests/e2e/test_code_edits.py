"""Code edited on disk between runs in real processes: every rerun equals a fresh run.

Each pattern is a module (``p_<name>.py``, sometimes with helpers) defining a processor.
One module-scoped fixture runs all patterns together in a handful of subprocesses:

1. version 1 on store S (everything computes), then again in a new process (all hits);
2. version 2 on store S, and on a fresh store F: the values must be equal (a hit is
   what a fresh run returns); a relevant edit must recompute, an irrelevant one must not;
3. version 2 on S once more: all hits.

Every script also runs its graph twice in-process: the second run is always all hits.
Each process gets a different ``PYTHONHASHSEED``, so nothing may depend on set order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WORKTREE = Path(__file__).resolve().parents[2]

RUNNER = textwrap.dedent(
    """
    import importlib, json, sys
    from incgraph import ProcessGraph

    graph = ProcessGraph(store=sys.argv[1])
    out = {}
    for name in sys.argv[2].split(","):
        try:
            mod = importlib.import_module("p_" + name)
            x = graph.add_constant_node(name + "/x", "x", value=3)
            build = getattr(mod, "build", None)
            if build is not None:
                node = build(graph, x, name)
            else:
                node = graph.add_node(name + "/P", mod.P, {"x": x})
            runs = []
            for _ in range(2):
                value = graph.run_upto(node)
                computed = sorted(str(n.id) for n in graph.last_run.computed)
                runs.append({"value": repr(value), "computed": computed})
            out[name] = runs
        except Exception as exc:
            out[name] = [{"error": f"{type(exc).__name__}: {exc}"}]
    print(json.dumps(out))
    """
)


@dataclass(frozen=True)
class Pattern:
    """Files of version 1 and version 2; whether the edit changes the result."""

    v1: dict[str, str]
    v2: dict[str, str]
    relevant: bool = True


def one(v1: str, v2: str, relevant: bool = True, **helpers: tuple[str, str]) -> Pattern:
    """A pattern whose processor module changes from v1 to v2 (helpers likewise)."""
    files1 = {"": v1, **{k: a for k, (a, _) in helpers.items()}}
    files2 = {"": v2, **{k: b for k, (_, b) in helpers.items()}}
    return Pattern(files1, files2, relevant)


HEAD = "from incgraph import Processor\n"

PATTERNS: dict[str, Pattern] = {
    # -- library callables and types bound to names -----------------------------------
    "operator": one(
        HEAD + "import operator\nOP = operator.add\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return OP(x, 3)\n",
        HEAD + "import operator\nOP = operator.mul\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return OP(x, 3)\n",
    ),
    "dtype": one(
        HEAD + "import numpy as np\nDTYPE = np.float32\n"
        "class P(Processor):\n    def process(self, x: int) -> str:\n"
        "        return str(np.zeros(x, dtype=DTYPE).dtype)\n",
        HEAD + "import numpy as np\nDTYPE = np.float64\n"
        "class P(Processor):\n    def process(self, x: int) -> str:\n"
        "        return str(np.zeros(x, dtype=DTYPE).dtype)\n",
    ),
    "import_as": one(
        HEAD + "from math import sqrt as op\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return round(op(x + 1), 6)\n",
        HEAD + "from math import log as op\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return round(op(x + 1), 6)\n",
    ),
    "ufunc": one(
        HEAD + "import numpy as np\nACT = np.sqrt\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return round(float(ACT(x)), 6)\n",
        HEAD + "import numpy as np\nACT = np.exp\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return round(float(ACT(x)), 6)\n",
    ),
    # -- partials and containers of functions -------------------------------------------
    "partial": one(
        HEAD + "from functools import partial\ndef f(x, k):\n    return x * k\n"
        "SCALE = partial(f, k=2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return SCALE(x)\n",
        HEAD + "from functools import partial\ndef f(x, k):\n    return x * k\n"
        "SCALE = partial(f, k=3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return SCALE(x)\n",
    ),
    "registry": one(
        HEAD + "def dbl(x):\n    return 2 * x\ndef tpl(x):\n    return 3 * x\n"
        'OPS = {"f": dbl}\n'
        'class P(Processor):\n    def process(self, x: int) -> int:\n        return OPS["f"](x)\n',
        HEAD + "def dbl(x):\n    return 2 * x\ndef tpl(x):\n    return 3 * x\n"
        'OPS = {"f": tpl}\n'
        'class P(Processor):\n    def process(self, x: int) -> int:\n        return OPS["f"](x)\n',
    ),
    "pipeline_order": one(
        HEAD + "def inc(x):\n    return x + 1\ndef dbl(x):\n    return 2 * x\n"
        "PIPELINE = [inc, dbl]\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        for step in PIPELINE:\n            x = step(x)\n        return x\n",
        HEAD + "def inc(x):\n    return x + 1\ndef dbl(x):\n    return 2 * x\n"
        "PIPELINE = [dbl, inc]\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        for step in PIPELINE:\n            x = step(x)\n        return x\n",
    ),
    "pipeline_member_body": one(
        HEAD + "STEPS = (lambda x: x + 1, lambda x: 2 * x)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        for step in STEPS:\n            x = step(x)\n        return x\n",
        HEAD + "STEPS = (lambda x: x + 1, lambda x: 5 * x)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        for step in STEPS:\n            x = step(x)\n        return x\n",
    ),
    # -- module-level instances ---------------------------------------------------------
    "instance_state": one(
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k\nmodel = Model(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return model.predict(x)\n",
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k\nmodel = Model(3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return model.predict(x)\n",
    ),
    "instance_method": one(
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k\nmodel = Model(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return model.predict(x)\n",
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k + 1\nmodel = Model(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return model.predict(x)\n",
    ),
    "dataclass_config": one(
        HEAD + "from dataclasses import dataclass\n@dataclass\nclass Config:\n    lr: float\n"
        "CFG = Config(0.5)\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n        return x * CFG.lr\n",
        HEAD + "from dataclasses import dataclass\n@dataclass\nclass Config:\n    lr: float\n"
        "CFG = Config(0.25)\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n        return x * CFG.lr\n",
    ),
    "callable_instance": one(
        HEAD + "class Scaler:\n    def __init__(self, k):\n        self.k = k\n"
        "    def __call__(self, x):\n        return x * self.k\nSCALER = Scaler(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return SCALER(x)\n",
        HEAD + "class Scaler:\n    def __init__(self, k):\n        self.k = k\n"
        "    def __call__(self, x):\n        return x * self.k\nSCALER = Scaler(3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return SCALER(x)\n",
    ),
    "bound_method": one(
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k\nF = Model(2).predict\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return F(x)\n",
        HEAD + "class Model:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return x * self.k\nF = Model(3).predict\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return F(x)\n",
    ),
    "namespace": one(
        HEAD + "from types import SimpleNamespace\nNS = SimpleNamespace(k=2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return x * NS.k\n",
        HEAD + "from types import SimpleNamespace\nNS = SimpleNamespace(k=3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return x * NS.k\n",
    ),
    "incgraph_hash": one(
        HEAD + "class Obj:\n    def __init__(self, k):\n        self.k = k\n"
        "    def __incgraph_hash__(self):\n        return self.k\nOBJ = Obj(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return x * OBJ.k\n",
        HEAD + "class Obj:\n    def __init__(self, k):\n        self.k = k\n"
        "    def __incgraph_hash__(self):\n        return self.k\nOBJ = Obj(3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return x * OBJ.k\n",
    ),
    # -- numpy constants ----------------------------------------------------------------
    "numpy_scalar": one(
        HEAD + "import numpy as np\nEPS = np.float64(0.5)\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return float(x * EPS)\n",
        HEAD + "import numpy as np\nEPS = np.float64(0.25)\n"
        "class P(Processor):\n    def process(self, x: int) -> float:\n"
        "        return float(x * EPS)\n",
    ),
    "numpy_array": one(
        HEAD + "import numpy as np\nW = np.array([1, 2])\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return int(W.sum()) * x\n",
        HEAD + "import numpy as np\nW = np.array([1, 3])\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return int(W.sum()) * x\n",
    ),
    # -- imports and chains -------------------------------------------------------------
    "local_import": one(
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        from h_local import f\n        return f(x)\n",
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        from h_local import f\n        return f(x)\n",
        **{"h_local.py": ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n")},
    ),
    "local_import_module": one(
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        import h_localmod as h\n        return h.f(x)\n",
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        import h_localmod as h\n        return h.f(x)\n",
        **{"h_localmod.py": ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n")},
    ),
    "dotted_chain": one(
        HEAD + "import h_chainpkg.sub\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return h_chainpkg.sub.f(x)\n",
        HEAD + "import h_chainpkg.sub\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return h_chainpkg.sub.f(x)\n",
        **{
            "h_chainpkg/__init__.py": ("", ""),
            "h_chainpkg/sub.py": (
                "SCALE = 2\ndef f(x):\n    return x * SCALE\n",
                "SCALE = 5\ndef f(x):\n    return x * SCALE\n",
            ),
        },
    ),
    # -- the classes of inputs (with early cutoff upstream) -----------------------------
    "input_class": one(
        HEAD + "from h_rect import Rect\n"
        "class Make(Processor):\n    def process(self, x: int) -> Rect:\n        return Rect(x, 2)\n"
        "class Use(Processor):\n    def process(self, r: Rect) -> int:\n        return r.area()\n"
        "def build(graph, x, name):\n"
        '    made = graph.add_node(name + "/make", Make, {"x": x})\n'
        '    return graph.add_node(name + "/use", Use, {"r": made})\n',
        HEAD + "from h_rect import Rect\n"
        "class Make(Processor):\n    def process(self, x: int) -> Rect:\n        return Rect(x, 2)\n"
        "class Use(Processor):\n    def process(self, r: Rect) -> int:\n        return r.area()\n"
        "def build(graph, x, name):\n"
        '    made = graph.add_node(name + "/make", Make, {"x": x})\n'
        '    return graph.add_node(name + "/use", Use, {"r": made})\n',
        **{
            "h_rect.py": (
                "from dataclasses import dataclass\n@dataclass\nclass Rect:\n"
                "    w: int\n    h: int\n    def area(self):\n        return self.w * self.h\n",
                "from dataclasses import dataclass\n@dataclass\nclass Rect:\n"
                "    w: int\n    h: int\n    def area(self):\n        return self.w * self.h + 1\n",
            )
        },
    ),
    # -- captured values ----------------------------------------------------------------
    "default_arg": one(
        HEAD + "def make(k):\n    def inner(x, k=k):\n        return x * k\n    return inner\n"
        "MUL = make(2)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return MUL(x)\n",
        HEAD + "def make(k):\n    def inner(x, k=k):\n        return x * k\n    return inner\n"
        "MUL = make(3)\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return MUL(x)\n",
    ),
    "lambda_default": one(
        HEAD + "K = 2\nMUL = lambda x, k=K: x * k\nK = 7\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return MUL(x)\n",
        HEAD + "K = 3\nMUL = lambda x, k=K: x * k\nK = 7\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return MUL(x)\n",
    ),
    "closure_array": one(
        HEAD + "import numpy as np\n"
        "def make(w):\n    class P(Processor):\n        def process(self, x: int) -> int:\n"
        "            return int(w.sum()) * x\n    return P\n"
        "P = make(np.array([1, 2]))\n",
        HEAD + "import numpy as np\n"
        "def make(w):\n    class P(Processor):\n        def process(self, x: int) -> int:\n"
        "            return int(w.sum()) * x\n    return P\n"
        "P = make(np.array([1, 5]))\n",
    ),
    "singledispatch": one(
        HEAD + "from functools import singledispatch\n"
        "@singledispatch\ndef f(x):\n    return 0\n"
        "@f.register\ndef _(x: int):\n    return 2 * x\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return f(x)\n",
        HEAD + "from functools import singledispatch\n"
        "@singledispatch\ndef f(x):\n    return 0\n"
        "@f.register\ndef _(x: int):\n    return 3 * x\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        return f(x)\n",
    ),
    "metaclass": one(
        HEAD + "class Meta(type):\n    def factor(cls):\n        return 2\n"
        "class P(Processor, metaclass=Meta):\n    def process(self, x: int) -> int:\n"
        "        return x * type(self).factor()\n",
        HEAD + "class Meta(type):\n    def factor(cls):\n        return 3\n"
        "class P(Processor, metaclass=Meta):\n    def process(self, x: int) -> int:\n"
        "        return x * type(self).factor()\n",
    ),
    # -- state is not code: these must be hits after the (irrelevant) edit -------------------
    "call_counter": one(
        HEAD + "class P(Processor):\n    calls = 0\n    def process(self, x: int) -> int:\n"
        "        P.calls += 1\n        return x + 200\n",
        HEAD + "class P(Processor):\n    calls = 0\n    def process(self, x: int) -> int:\n"
        "        P.calls += 1\n        return x + 200\n",
        relevant=False,
    ),
    "global_counter": one(
        HEAD + "N = 0\nclass P(Processor):\n    def process(self, x: int) -> int:\n"
        "        global N\n        N += 1\n        return x * 2\n",
        HEAD + "N = 0\nclass P(Processor):\n    def process(self, x: int) -> int:\n"
        "        global N\n        N += 1\n        return x * 2\n",
        relevant=False,
    ),
    "lazy_model": one(
        HEAD + "import io\nclass P(Processor):\n    model = None\n"
        "    def process(self, x: int) -> int:\n        if type(self).model is None:\n"
        '            type(self).model = io.StringIO("abc")\n'
        "        self.__class__.seen = io.StringIO()\n"
        "        return x + len(type(self).model.getvalue())\n",
        HEAD + "import io\nclass P(Processor):\n    model = None\n"
        "    def process(self, x: int) -> int:\n        if type(self).model is None:\n"
        '            type(self).model = io.StringIO("abc")\n'
        "        self.__class__.seen = io.StringIO()\n"
        "        return x + len(type(self).model.getvalue())\n",
        relevant=False,
    ),
    "memo_dict": one(
        HEAD + "_MEMO = {}\ndef slow(x):\n    if x not in _MEMO:\n        _MEMO[x] = x * x\n"
        "    return _MEMO[x]\n"
        "class A(Processor):\n    def process(self, x: int) -> int:\n        return slow(x)\n"
        "class B(Processor):\n    def process(self, a: int) -> int:\n        return slow(a + 1)\n"
        "def build(graph, x, name):\n"
        '    a = graph.add_node(name + "/a", A, {"x": x})\n'
        '    return graph.add_node(name + "/b", B, {"a": a})\n',
        HEAD + "_MEMO = {}\ndef slow(x):\n    if x not in _MEMO:\n        _MEMO[x] = x * x\n"
        "    return _MEMO[x]\n"
        "class A(Processor):\n    def process(self, x: int) -> int:\n        return slow(x)\n"
        "class B(Processor):\n    def process(self, a: int) -> int:\n        return slow(a + 1)\n"
        "def build(graph, x, name):\n"
        '    a = graph.add_node(name + "/a", A, {"x": x})\n'
        '    return graph.add_node(name + "/b", B, {"a": a})\n',
        relevant=False,
    ),
    "local_shadows_global": one(
        HEAD + "import time\nt = time.perf_counter()\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        total = 0\n"
        "        for t in range(x):\n            total += t\n        return total\n",
        HEAD + "import time\nt = time.perf_counter()\n"
        "class P(Processor):\n    def process(self, x: int) -> int:\n        total = 0\n"
        "        for t in range(x):\n            total += t\n        return total\n",
        relevant=False,
    ),
    "set_constant": one(
        HEAD + 'WORDS = list({"alpha", "beta", "gamma", "delta", "epsilon"})\n'
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return x + sum(len(w) for w in WORDS)\n",
        HEAD + 'WORDS = list({"alpha", "beta", "gamma", "delta", "epsilon"})\n'
        "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return x + sum(len(w) for w in WORDS)\n",
        relevant=False,
    ),
    "release_and_resource": one(
        HEAD + 'class P(Processor):\n    resource = "gpu"\n'
        "    def process(self, x: int) -> int:\n        return x - 1\n"
        "    def release(self):\n        pass\n",
        HEAD + 'class P(Processor):\n    resource = "cpu"\n'
        "    def process(self, x: int) -> int:\n        return x - 1\n"
        "    def release(self):\n        print('released')\n",
        relevant=False,
    ),
    "comment_only": one(
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n        return x * 7\n",
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        # seven times\n        return x * 7\n",
        relevant=False,
    ),
}


class Project:
    """A folder of pattern modules, and real subprocesses that run them on a store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code = root / "code"
        self.code.mkdir()
        self.seed = 0

    def write(self, version: str, patterns: dict[str, Pattern]) -> None:
        for name, pattern in patterns.items():
            files = pattern.v1 if version == "v1" else pattern.v2
            for path, text in files.items():
                target = self.code / (path or f"p_{name}.py")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)

    def env(self) -> dict[str, str]:
        self.seed += 1
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(WORKTREE), str(self.code)])
        env["PYTHONHASHSEED"] = str(self.seed)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(self, store: str, names: list[str], *flags: str) -> dict[str, Any]:
        script = self.root / "runner.py"
        script.write_text(RUNNER)
        done = subprocess.run(
            [sys.executable, *flags, str(script), str(self.root / store), ",".join(names)],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every pattern's runs: v1 twice on S, v2 on S and on a fresh store, v2 again on S."""
    project = Project(tmp_path_factory.mktemp("edits"))
    names = sorted(PATTERNS)
    project.write("v1", PATTERNS)
    first = project.run("S", names)
    again = project.run("S", names)
    project.write("v2", PATTERNS)
    edited = project.run("S", names)
    fresh = project.run("F", names)
    settled = project.run("S", names)
    return {
        name: {
            "first": first[name],
            "again": again[name],
            "edited": edited[name],
            "fresh": fresh[name],
            "settled": settled[name],
        }
        for name in names
    }


def value(run: list[dict[str, Any]]) -> str:
    assert "error" not in run[0], run[0]["error"]
    return str(run[0]["value"])


def computed(run: list[dict[str, Any]]) -> list[str]:
    assert "error" not in run[0], run[0]["error"]
    assert run[1]["computed"] == [], "a second run in the same process must be all hits"
    assert run[1]["value"] == run[0]["value"]
    return list(run[0]["computed"])


def check_recomputed(runs: dict[str, Any]) -> None:
    """A relevant edit recomputes, equals a fresh run, and the run after it hits."""
    assert computed(runs["first"]) and computed(runs["again"]) == []
    assert value(runs["again"]) == value(runs["first"])
    assert value(runs["edited"]) == value(runs["fresh"])
    assert value(runs["edited"]) != value(runs["first"]), "the edit must change the result"
    assert computed(runs["edited"])
    assert computed(runs["settled"]) == [] and value(runs["settled"]) == value(runs["fresh"])


def check_all_hits(runs: dict[str, Any]) -> None:
    """Without a relevant change, every run after the first hits with the first's value."""
    assert computed(runs["first"])
    for step in ("again", "edited", "settled"):
        assert computed(runs[step]) == [], step
        assert value(runs[step]) == value(runs["first"])
    assert value(runs["fresh"]) == value(runs["first"])


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
    """State, set order, comments, release() and resource never make a rerun recompute."""
    check_all_hits(outcomes[name])


# -- one pattern through every front-end -----------------------------------------------------

FRONT_ENDS = textwrap.dedent(
    """
    import json, sys
    import incgraph.queues as iq
    from incgraph import ProcessGraph
    from incgraph.flow import Flow
    import fe_mod

    store = sys.argv[1]
    graph = ProcessGraph(store=store)
    x = graph.add_constant_node("x", "x")
    node = graph.add_node("p", fe_mod.P, {"x": x})
    stats = graph.process_batch([1, 2, 3], [node], lambda i, item: x.set_value(item))
    batch = []
    for item in [1, 2, 3]:
        x.set_value(item)
        batch.append(graph.run_upto(node))

    execution = fe_mod.Chain(store=store)()
    flow = {"computed": sorted(execution.computed), "y": execution[fe_mod.L].y}

    pipeline = iq.Pipeline(store=store)
    out = pipeline.map(fe_mod.task, iq.Queue([1, 2, 3]))
    report = pipeline.run()
    print(json.dumps({
        "batch": {"computed": stats.computed, "values": batch},
        "flow": flow,
        "queue": {"computed": report.computed, "values": list(out)},
    }))
    """
)
FE_MODULE = textwrap.dedent(
    """
    import operator
    from incgraph import Processor
    from incgraph.flow import Flow, Layer

    OP = operator.add

    class P(Processor):
        def process(self, x: int) -> int:
            return OP(x, 10)

    class Chain(Flow): ...

    @Chain.register
    class L(Layer):
        def __call__(self) -> None:
            self.y = OP(4, 10)

    def task(x):
        return OP(x, 100)
    """
)


def run_script(project: Project, text: str, *args: str, flags: tuple[str, ...] = ()) -> Any:
    script = project.root / "script.py"
    script.write_text(text)
    done = subprocess.run(
        [sys.executable, *flags, str(script), *args],
        capture_output=True,
        text=True,
        env=project.env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_batches_flows_and_queues_see_edits_and_hit_otherwise(tmp_path: Path) -> None:
    """process_batch, a Flow and a queue pipeline recompute after an edit, equal a fresh run,
    and are all hits when nothing changed."""
    project = Project(tmp_path)
    module = project.code / "fe_mod.py"
    module.write_text(FE_MODULE)
    first = run_script(project, FRONT_ENDS, str(tmp_path / "S"))
    again = run_script(project, FRONT_ENDS, str(tmp_path / "S"))
    assert first["batch"]["computed"] == 3 and again["batch"]["computed"] == 0
    assert first["flow"]["computed"] == ["L"] and again["flow"]["computed"] == []
    assert first["queue"]["computed"] == 3 and again["queue"]["computed"] == 0
    module.write_text(FE_MODULE.replace("operator.add", "operator.mul"))
    edited = run_script(project, FRONT_ENDS, str(tmp_path / "S"))
    fresh = run_script(project, FRONT_ENDS, str(tmp_path / "F"))
    assert edited == fresh
    assert edited["batch"]["values"] == [10, 20, 30] and edited["flow"]["y"] == 40
    assert edited["queue"]["values"] == [100, 200, 300]
    settled = run_script(project, FRONT_ENDS, str(tmp_path / "S"))
    assert settled["batch"]["computed"] == settled["queue"]["computed"] == 0
    assert settled["flow"]["computed"] == []


# -- code that is not what the file on disk says ---------------------------------------------

SERVER = textwrap.dedent(
    """
    import json, sys
    from incgraph import ProcessGraph
    import p_live

    print("ready", flush=True)
    for line in sys.stdin:
        graph = ProcessGraph(store=sys.argv[1])
        x = graph.add_constant_node("x", "x", value=3)
        node = graph.add_node("p", p_live.P, {"x": x})
        value = graph.run_upto(node)
        print(json.dumps({"value": value, "computed": len(graph.last_run.computed)}), flush=True)
    """
)
LIVE = (
    HEAD + "def scale(x, k=2):\n    return x * k\n"
    "class P(Processor):\n    def process(self, x: int) -> int:\n        return scale(x)\n"
)


def test_a_long_lived_process_never_stores_old_code_under_the_new_key(tmp_path: Path) -> None:
    """A default edited on disk while a process keeps the old module: a new process with the new
    code does not hit what the old code computed."""
    project = Project(tmp_path)
    (project.code / "p_live.py").write_text(LIVE)
    (tmp_path / "server.py").write_text(SERVER)
    server = subprocess.Popen(
        [sys.executable, str(tmp_path / "server.py"), str(tmp_path / "S")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=project.env(),
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        assert server.stdout.readline() == "ready\n"  # imported; then the file is edited
        (project.code / "p_live.py").write_text(LIVE.replace("k=2", "k=3"))
        server.stdin.write("run\n")
        server.stdin.flush()
        assert json.loads(server.stdout.readline()) == {"value": 6, "computed": 1}  # old code
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    new = run_script(
        project,
        SERVER.replace("for line in sys.stdin:", "for line in ['run']:"),
        str(tmp_path / "S"),
    )
    assert new == {"value": 9, "computed": 1}


NO_SOURCE = textwrap.dedent(
    """
    import json, sys
    from incgraph import ProcessGraph, Processor

    class P(Processor):
        def process(self, x: int) -> int:
            return x * FACTOR

    FACTOR = 2

    graph = ProcessGraph(store=sys.argv[1])
    x = graph.add_constant_node("x", "x", value=3)
    node = graph.add_node("p", P, {"x": x})
    value = graph.run_upto(node)
    print(json.dumps({"value": value, "computed": len(graph.last_run.computed)}))
    """
)


@pytest.mark.parametrize("how", ["stdin", "exec"])
def test_code_without_a_source_file_is_fingerprinted(tmp_path: Path, how: str) -> None:
    """``python - < script.py`` and ``exec`` of a string: reruns hit, edits recompute."""
    project = Project(tmp_path)
    runner = "import sys\nexec(compile(sys.stdin.read(), '<generated>', 'exec'))\n"

    def run(text: str, store: str) -> Any:
        args = ["-", store] if how == "stdin" else [str(tmp_path / "exec.py"), store]
        (tmp_path / "exec.py").write_text(runner)
        done = subprocess.run(
            [sys.executable, *args],
            input=text,
            capture_output=True,
            text=True,
            env=project.env(),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    store = str(tmp_path / "S")
    assert run(NO_SOURCE, store) == {"value": 6, "computed": 1}
    assert run(NO_SOURCE, store) == {"value": 6, "computed": 0}
    edited = NO_SOURCE.replace("x * FACTOR", "x * FACTOR + 1")
    assert run(edited, store) == {"value": 7, "computed": 1}
    assert run(NO_SOURCE.replace("FACTOR = 2", "FACTOR = 5"), store) == {"value": 15, "computed": 1}


OPTIMIZE = textwrap.dedent(
    """
    import json, sys
    from incgraph import ProcessGraph
    import p_debug

    graph = ProcessGraph(store=sys.argv[1])
    x = graph.add_constant_node("x", "x", value=3)
    node = graph.add_node("p", p_debug.P, {"x": x})
    value = graph.run_upto(node)
    print(json.dumps({"value": value, "computed": len(graph.last_run.computed)}))
    """
)


def test_python_O_and_plain_python_do_not_share_results_of_debug_code(tmp_path: Path) -> None:
    """Code with ``__debug__`` or ``assert`` gets a key per optimization level; other code does
    not."""
    project = Project(tmp_path)
    (project.code / "p_debug.py").write_text(
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n"
        "        return x + (1 if __debug__ else 0)\n"
    )
    store = str(tmp_path / "S")
    assert run_script(project, OPTIMIZE, store) == {"value": 4, "computed": 1}
    assert run_script(project, OPTIMIZE, store, flags=("-O",)) == {"value": 3, "computed": 1}
    assert run_script(project, OPTIMIZE, store) == {"value": 4, "computed": 0}
    assert run_script(project, OPTIMIZE, store, flags=("-O",)) == {"value": 3, "computed": 0}
    (project.code / "p_debug.py").write_text(
        HEAD + "class P(Processor):\n    def process(self, x: int) -> int:\n        return x + 1\n"
    )
    assert run_script(project, OPTIMIZE, store) == {"value": 4, "computed": 1}
    assert run_script(project, OPTIMIZE, store, flags=("-O",)) == {"value": 4, "computed": 0}
