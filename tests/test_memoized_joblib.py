"""``@incgraph.memoize`` used the way ``joblib.Memory(...).cache`` users use it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import incgraph
from incgraph import HashingError, memoize


def _python(script: Path, cwd: Path) -> str:
    """Run ``script`` in a new interpreter; its output (it must succeed)."""
    env = {
        "PYTHONPATH": str(Path(incgraph.__file__).parents[1]),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ignore_none_ignores_nothing(tmp_path: Path) -> None:
    """``ignore=None`` (joblib's default) is accepted and keys every argument."""

    @memoize(store=tmp_path / "s", ignore=None)
    def add(a: int, b: int = 1) -> int:
        return a + b

    assert add.ignore == frozenset()
    assert add.call(1) == (2, False) and add.call(1, 1) == (2, True)
    assert add.call(1, 2) == (3, False)


def test_memoize_over_staticmethod_and_classmethod(tmp_path: Path) -> None:
    """``@memoize`` above ``@staticmethod`` stays unbound; above ``@classmethod`` gets the class."""
    store = tmp_path / "s"

    class Tool:
        factor = 3

        @memoize(store=store)
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

        @memoize(store=store)
        @classmethod
        def scaled(cls, x: int) -> int:
            return cls.factor * x

    class Other(Tool):
        factor = 5

    assert Tool.double(4) == 8 and Tool().double(4) == 8
    assert Tool.double.call(4).hit and Tool().double.check_call_in_cache(4)
    assert Tool.scaled(2) == 6 and Tool().scaled(2) == 6
    assert Tool.scaled.call(2).hit
    assert Other.scaled(2) == 10  # the class is an argument: another class, another key


def test_joblib_parallel_calls_a_function_of_the_main_script(tmp_path: Path) -> None:
    """``joblib.Parallel`` workers call a memoized function of ``__main__`` (fib recursion
    included) and store under the keys the script then hits."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import incgraph
            from joblib import Parallel, delayed

            @incgraph.memoize(store="cache")
            def fib(n):
                return n if n < 2 else fib(n - 1) + fib(n - 2)

            def make(k):
                @incgraph.memoize(store="cache")
                def add(x):
                    return x + k
                return add

            if __name__ == "__main__":
                print(Parallel(n_jobs=2)(delayed(fib)(n) for n in (10, 15, 20)))
                print(all(fib.call(n).hit for n in (2, 10, 15, 20)))
                add3 = make(3)
                print(Parallel(n_jobs=2)(delayed(add3)(x) for x in range(3)))
                print(all(add3.call(x).hit for x in range(3)), make(4)(0))
            """
        )
    )
    out = _python(script, tmp_path).splitlines()
    assert out == ["[55, 610, 6765]", "True", "[3, 4, 5]", "True 4"]


def test_a_memoized_closure_pickles_by_value_with_the_same_keys(tmp_path: Path) -> None:
    """A memoized closure (no importable name) unpickles in a new process keying as here."""

    def make(k: int) -> incgraph.MemoizedFunction:
        @memoize(store=tmp_path / "s")
        def add(x: int) -> int:
            return x + k

        return add  # type: ignore[return-value]

    add = make(3)
    (tmp_path / "add.pickle").write_bytes(pickle.dumps(add))
    script = tmp_path / "load.py"
    script.write_text(
        "import pickle\n"
        "add = pickle.load(open('add.pickle', 'rb'))\n"
        "print(add.key(1), *add.call(1))\n"
    )
    assert _python(script, tmp_path) == f"{add.key(1)} 4 False"
    assert add.call(1) == (4, True)


def test_editing_a_method_a_memoized_method_calls_recomputes(tmp_path: Path) -> None:
    """A memoized method is keyed with its class's code: a new process sees an edited
    method it calls through ``self`` (a miss), but not an edited comment (a hit)."""
    tools = tmp_path / "tools.py"
    source = textwrap.dedent(
        """
        import dataclasses
        import incgraph

        @dataclasses.dataclass
        class Tool:
            k: int

            def offset(self, x):
                return {body}

            @incgraph.memoize(store="cache")
            def compute(self, x):
                return self.offset(x) * 2
        """
    )
    tools.write_text(source.format(body="x + self.k"))
    script = tmp_path / "job.py"
    script.write_text("from tools import Tool\nprint(*Tool(1).compute.call(3))\n")
    assert _python(script, tmp_path) == "8 False"
    assert _python(script, tmp_path) == "8 True"
    tools.write_text(source.format(body="x + self.k  # plus k"))
    assert _python(script, tmp_path) == "8 True"
    tools.write_text(source.format(body="x + 10 * self.k"))
    assert _python(script, tmp_path) == "26 False"


def test_a_closure_on_a_store_object_keys_alike_in_the_process_it_is_sent_to(
    tmp_path: Path,
) -> None:
    """Sent by value, a memoized closure keeps its store's declared packages in its keys,
    and one on a memory store stays on a memory store (no folder is made where it runs)."""

    def make(store: object) -> incgraph.MemoizedFunction:
        @memoize(store=store)  # type: ignore[call-overload]
        def add(x: int) -> int:
            return x + 1

        return add  # type: ignore[return-value]

    on_disk = make(incgraph.open_store(tmp_path / "s", packages=["numpy"]))
    in_memory = make(incgraph.memory_store())
    (tmp_path / "sent.pickle").write_bytes(pickle.dumps((on_disk, in_memory)))
    work = tmp_path / "work"
    work.mkdir()
    script = work / "load.py"
    script.write_text(
        "import pickle\n"
        "on_disk, in_memory = pickle.load(open('../sent.pickle', 'rb'))\n"
        "print(on_disk.key(1), in_memory.key(1), *in_memory.call(1))\n"
    )
    assert _python(script, work) == f"{on_disk.key(1)} {in_memory.key(1)} 2 False"
    assert sorted(p.name for p in work.iterdir()) == ["load.py"]


def test_unhashable_argument_error_says_where_inside_it_and_fits_a_function() -> None:
    """The HashingError names the function, where in the argument the value sits, and fixes
    that apply to a function (no node's ``cache=False``)."""
    import threading

    @memoize(store=":memory:")
    def configure(cfg: dict[str, object]) -> int:
        return len(cfg)

    with pytest.raises(HashingError) as caught:
        configure({"a": [1, threading.Lock()]})
    message = str(caught.value)
    assert "configure: argument 'cfg'['a'][1]: cannot hash" in message
    assert "ignore=['cfg']" in message and "cache=False" not in message


def test_partials_callable_instances_and_library_functions_can_be_memoized() -> None:
    """A partial (named after its function, keyed with its bound arguments), a callable
    instance (keyed with its state) and a numpy ufunc (called with the arguments as given,
    not with every default spelled out) are memoized like functions."""
    import functools

    import numpy as np

    def add(a: int, b: int) -> int:
        return a + b

    class Offset:
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, x: int) -> int:
            return x + self.k

    one, five = (memoize(functools.partial(add, k), store=":memory:") for k in (1, 5))
    assert one.label.endswith(".add") and one.call(2) == (3, False) and one.call(b=2).hit
    assert five.call(2) == (7, False)
    offset = memoize(Offset(10), store=":memory:")
    assert offset.label.endswith(".Offset") and offset.call(1) == (11, False)
    assert offset.call(1).hit
    sqrt = memoize(np.sqrt, store=":memory:")
    assert sqrt.label == "numpy.sqrt" and sqrt.call(4.0) == (2.0, False) and sqrt.call(4.0).hit


def test_cli_invalidate_of_one_call_is_seen_by_the_next_process(tmp_path: Path) -> None:
    """`incgraph invalidate KEY` (its `--dry-run` changes nothing) makes exactly that call
    compute again in a new process; the function's other calls stay hits."""
    (tmp_path / "funcs.py").write_text(
        "import incgraph\n\n@incgraph.memoize(store='cache')\ndef f(x):\n    return x * 3\n"
    )
    script = tmp_path / "use.py"
    script.write_text("import funcs\nprint([tuple(funcs.f.call(x)) for x in (1, 2)])\n")
    assert _python(script, tmp_path) == "[(3, False), (6, False)]"
    (tmp_path / "key.py").write_text("import funcs\nprint(funcs.f.key(1))\n")
    key = _python(tmp_path / "key.py", tmp_path)
    cli = [sys.executable, "-m", "incgraph.cli", "invalidate", "--store", "cache", key]
    env = {"PYTHONPATH": str(Path(incgraph.__file__).parents[1]), "PATH": "/usr/bin:/bin"}
    for extra in (["--dry-run"], []):
        done = subprocess.run([*cli, *extra], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert done.returncode == 0 and "1 result(s)" in done.stdout, done.stderr
        if extra:
            assert _python(script, tmp_path) == "[(3, True), (6, True)]"
    assert _python(script, tmp_path) == "[(3, False), (6, True)]"
