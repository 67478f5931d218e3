"""``@incgraph.memoize``: calls cached in a real store, keyed like nodes."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import incgraph
from incgraph import ConfigurationError, HashingError, NotCachedError, memoize, open_store
from incgraph.cli import main
from incgraph.errors import ReadOnlyStoreError

CALLS: list[object] = []


@memoize(store=None)
def module_level(x: int) -> int:
    """A memoized function importable by reference (for pickling)."""
    return x * 10


def test_hit_after_first_call_and_binding_is_by_parameter(tmp_path: Path) -> None:
    """f(1, b=2), f(1, 2) and f(a=1, b=2) are one call; defaults count as given."""
    calls = []

    @memoize(store=tmp_path / "s")
    def add(a: int, b: int = 2) -> int:
        calls.append((a, b))
        return a + b

    assert add(1, b=2) == 3
    assert add(1, 2) == 3 and add(a=1, b=2) == 3 and add(1) == 3
    assert calls == [(1, 2)]
    assert add(1, 3) == 4 and calls == [(1, 2), (1, 3)]
    assert add.call(1).hit and not add.call(5).hit


def test_new_process_hits(tmp_path: Path) -> None:
    """A second Python process calling the same function with equal arguments loads the result."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import numpy as np
            import incgraph

            @incgraph.memoize(store={str(tmp_path / "store")!r})
            def total(a, scale=1.0):
                print("computing", flush=True)
                return float(a.sum()) * scale

            info = total.call(np.arange(1000.0), scale=2.0)
            print("hit" if info.hit else "miss", info.value)
            """
        )
    )
    env = {
        "PYTHONPATH": str(Path(incgraph.__file__).parents[1]),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    first = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    second = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert "computing" in first.stdout and "miss 999000.0" in first.stdout
    assert "computing" not in second.stdout and "hit 999000.0" in second.stdout, second.stderr


def test_arguments_are_keyed_by_content(tmp_path: Path) -> None:
    """An equal array (a different object) is a hit; a changed element is a miss."""
    calls = []

    @memoize(store=tmp_path / "s")
    def mean(a: np.ndarray) -> float:
        calls.append(1)
        return float(a.mean())

    a = np.arange(10.0)
    mean(a)
    mean(a.copy())
    b = a.copy()
    b[3] = 100
    mean(b)
    assert len(calls) == 2


def test_ignore_leaves_a_parameter_out_of_the_key(tmp_path: Path) -> None:
    """A call differing only in an ignored argument is a hit, and the function still gets it."""
    seen = []

    @memoize(store=tmp_path / "s", ignore=["verbose"])
    def work(x: int, verbose: bool = False) -> int:
        seen.append(verbose)
        return x + 1

    assert work(1, verbose=True) == 2 and work(1) == 2 and work(1, verbose=False) == 2
    assert seen == [True]


def test_ignore_of_an_unknown_parameter_is_an_error() -> None:
    """ignore= naming a parameter the function lacks raises, naming it and the function."""
    with pytest.raises(ConfigurationError, match=r"'verbos'.*x, verbose"):

        @memoize(ignore=["verbos"])
        def work(x: int, verbose: bool = False) -> int:
            return x


def test_code_change_recomputes_and_version_bump_too(tmp_path: Path) -> None:
    """Editing the function's body (a new definition) or its version is a miss."""
    store = tmp_path / "s"

    def make(body: int, version: object = None) -> incgraph.MemoizedFunction:
        namespace: dict[str, object] = {}
        exec(f"def f(x):\n    return x + {body}\n", namespace)
        fn = namespace["f"]
        fn.__module__ = "generated"  # type: ignore[attr-defined]
        return memoize(fn, store=store, version=version)  # type: ignore[arg-type]

    assert make(1).call(1) == (2, False)
    assert make(1).call(1).hit
    assert not make(2).call(1).hit
    assert not make(1, version=2).call(1).hit


def test_check_call_in_cache_and_clear(tmp_path: Path) -> None:
    """check_call_in_cache says hit or not without computing; clear forgets every call."""
    calls = []

    @memoize(store=tmp_path / "s")
    def sq(x: int) -> int:
        calls.append(x)
        return x * x

    assert not sq.check_call_in_cache(3) and calls == []
    sq(3)
    sq(4)
    assert sq.check_call_in_cache(3) and sq.check_call_in_cache(x=4)
    assert sq.invalidate(4) and not sq.invalidate(4) and not sq.check_call_in_cache(4)
    sq(4)
    assert sq.clear() == 2
    assert not sq.check_call_in_cache(3)
    sq(3)
    assert calls == [3, 4, 4, 3]


def test_exceptions_propagate_and_store_nothing(tmp_path: Path) -> None:
    """A call that raises raises the original exception and leaves no result or lease."""
    store = open_store(tmp_path / "s")

    @memoize(store=store)
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 1"):
        boom(1)
    assert list(store.index.records()) == [] and store.ledger.lease_states() == {}


def test_unhashable_argument_names_the_function_and_argument(tmp_path: Path) -> None:
    """An argument incgraph cannot hash raises a HashingError naming it and the fix."""

    class Opaque:
        __slots__ = ()

    @memoize(store=tmp_path / "s")
    def use(thing: object, n: int = 1) -> int:
        return n

    with pytest.raises(HashingError, match=r"use.*argument 'thing'.*ignore=\['thing'\]"):
        use(Opaque())


def test_records_show_in_cli_ls_and_lineage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Calls are listed by `incgraph ls` under the function's name, and lineage links them."""
    where = tmp_path / "s"

    @memoize(store=where)
    def load(n: int) -> list[int]:
        return list(range(n))

    @memoize(store=where)
    def total(values: list[int]) -> int:
        return sum(values)

    assert total(load(4)) == 6
    load.close()
    total.close()
    assert main(["ls", "--store", str(where), "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    nodes = {row["node"] for row in rows}
    assert any(n.endswith("load") for n in nodes) and any(n.endswith("total") for n in nodes)
    top = next(row for row in rows if row["node"].endswith("total"))
    assert main(["lineage", "--store", str(where), top["key"][:12]]) == 0
    out = capsys.readouterr().out
    assert "load" in out and "values" in out
    assert main(["runs", "--store", str(where), "--json"]) == 0
    assert {run["kind"] for run in json.loads(capsys.readouterr().out)} == {"memoize"}


def test_read_only_store_hits_and_refuses_to_compute(tmp_path: Path) -> None:
    """On a read-only store a stored call is a hit; a new one raises naming the function."""
    where = tmp_path / "s"

    @memoize(store=where)
    def inc(x: int) -> int:
        return x + 1

    inc(1)
    ro = open_store(where, read_only=True)
    frozen = memoize(inc.function, store=ro)
    assert frozen(1) == 2
    with pytest.raises(ReadOnlyStoreError, match="inc"):
        frozen(2)


def test_lost_blob_is_recomputed(tmp_path: Path) -> None:
    """A stored call whose bytes are gone is computed again, not failed."""
    store = open_store(tmp_path / "s")
    calls = []

    @memoize(store=store)
    def big(n: int) -> np.ndarray:
        calls.append(n)
        return np.zeros(n)

    big(100_000)
    for path in (tmp_path / "s" / "blobs").rglob("*"):
        if path.is_file():
            path.unlink()
    assert big(100_000).shape == (100_000,) and calls == [100_000, 100_000]


def test_threads_share_the_cache(tmp_path: Path) -> None:
    """Calls from several threads are cached alike and logged at close."""
    store = open_store(tmp_path / "s")

    @memoize(store=store)
    def sq(x: int) -> int:
        return x * x

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(sq(i % 3))) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sq.close()
    assert sorted(results) == [0, 0, 0, 1, 1, 1, 4, 4, 4]
    assert len(list(store.index.records())) == 3
    assert sum(run.hits + run.computed for run in store.runs()) >= 3


def test_staticmethod_and_method_use(tmp_path: Path) -> None:
    """A memoized staticmethod works; on a method the instance is an argument hashed by content."""

    class Tool:
        def __init__(self, k: int) -> None:
            self.k = k

        @staticmethod
        @memoize(store=tmp_path / "s")
        def double(x: int) -> int:
            return 2 * x

        @memoize(store=tmp_path / "s", ignore=["self"])
        def plus(self, x: int) -> int:
            return x + 1

    assert Tool(1).double(4) == 8 and Tool.double(4) == 8
    assert Tool(1).plus(1) == 2 and Tool.plus.check_call_in_cache(Tool(5), 1)
    assert Tool(7).plus.check_call_in_cache(1) and Tool(7).plus.call(1).hit
    assert not Tool(7).plus.check_call_in_cache(2)


def test_exactly_once_across_processes(tmp_path: Path) -> None:
    """A call one process is computing is waited for by another, then loaded: computed once."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            import incgraph

            tmp = Path({str(tmp_path)!r})

            @incgraph.memoize(store=tmp / "store")
            def slow(x):
                with open(tmp / "computed", "a") as f:
                    f.write(sys.argv[1] + "\\n")
                (tmp / "started").touch()
                for _ in range(500):  # until the other process is about to call, at most 5 s
                    if (tmp / "second").exists():
                        break
                    time.sleep(0.01)
                time.sleep(0.5)
                return x * 2

            if sys.argv[1] == "second":
                (tmp / "second").touch()
            info = slow.call(21)
            print(info.value, "hit" if info.hit else "miss")
            """
        )
    )
    env = {
        "PYTHONPATH": str(Path(incgraph.__file__).parents[1]),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    first = subprocess.Popen(
        [sys.executable, str(script), "first"], stdout=subprocess.PIPE, text=True, env=env
    )
    for _ in range(3000):  # wait (at most 30 s) until the first process computes, holding the lease
        if (tmp_path / "started").exists() or first.poll() is not None:
            break
        time.sleep(0.01)
    second = subprocess.run(
        [sys.executable, str(script), "second"], capture_output=True, text=True, env=env
    )
    out, _ = first.communicate(timeout=60)
    assert out.strip() == "42 miss"
    assert second.stdout.strip() == "42 hit", second.stderr
    assert (tmp_path / "computed").read_text().split() == ["first"]


def test_pickles_by_reference() -> None:
    """A module-level memoized function pickles as a reference to itself."""
    assert pickle.loads(pickle.dumps(module_level)) is module_level


def test_accept_after_a_refactor(tmp_path: Path) -> None:
    """accept() makes calls stored under the previous code hits for the new code."""
    store = tmp_path / "s"
    namespace: dict[str, object] = {}
    exec("def f(x):\n    return x + 1\n", namespace)
    old = memoize(namespace["f"], store=store, name="f")  # type: ignore[arg-type]
    with pytest.raises(NotCachedError, match="nothing to accept"):
        old.accept()
    old(1)
    old(2)
    exec("def f(x):\n    y = x\n    return y + 1\n", namespace)
    new = memoize(namespace["f"], store=store, name="f")  # type: ignore[arg-type]
    assert not new.check_call_in_cache(1)
    assert new.accept() == 2
    assert new.call(1).hit and new.call(2).hit and not new.call(3).hit


def test_declared_packages_enter_the_key(tmp_path: Path) -> None:
    """packages= puts installed versions in the key; an unknown package fails at decoration."""

    def f(x: int) -> int:
        return x

    plain = memoize(f, store=tmp_path / "s")
    pinned = memoize(f, store=tmp_path / "s", packages=("numpy",))
    assert plain.key(1) != pinned.key(1)
    with pytest.raises(incgraph.IncgraphError, match="no-such-package-xyz"):
        memoize(f, store=tmp_path / "s", packages=("no-such-package-xyz",))


def test_unstorable_result_and_async_functions_are_named(tmp_path: Path) -> None:
    """A result that cannot be stored raises naming the function; async defs are refused."""

    @memoize(store=tmp_path / "s")
    def lock(x: int) -> object:
        return threading.Lock()

    with pytest.raises(incgraph.StoreError, match=r"memoized function .*lock.*cannot keep"):
        lock(1)
    assert not lock.check_call_in_cache(1)

    async def fetch(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match=r"fetch.*coroutine"):
        memoize(fetch)


def test_forked_child_logs_its_own_calls(tmp_path: Path) -> None:
    """A child process forked after calls keeps caching and writes its own run-log row."""
    import os

    store = tmp_path / "s"

    @memoize(store=store)
    def inc(x: int) -> int:
        return x + 1

    inc(1)
    with warnings.catch_warnings():  # Python 3.12 warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: one hit, one miss, then exit without the parent's hooks
        code = 0 if inc.call(1).hit and not inc.call(2).hit else 1
        inc.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    inc.close()
    runs = open_store(store).runs()
    assert sum(run.computed for run in runs) == 2 and sum(run.hits for run in runs) == 1
    assert len({run.owner.split(":")[1] for run in runs}) == 2


def test_memory_store_and_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """store=":memory:" makes no folder; no store= uses $INCGRAPH_STORE like ProcessGraph."""

    @memoize(store=":memory:")
    def inc(x: int) -> int:
        return x + 1

    assert inc(1) == 2 and inc.call(1).hit and inc.store.path is None
    monkeypatch.setenv("INCGRAPH_STORE", str(tmp_path / "default"))

    @memoize
    def dec(x: int) -> int:
        return x - 1

    assert dec(1) == 0 and (tmp_path / "default" / "index.sqlite").exists()


def test_cli_accepts_an_edited_memoized_function(tmp_path: Path) -> None:
    """Edit a memoized function's module, `incgraph accept` it by name: the next call is a hit."""
    store = tmp_path / "store"
    module = tmp_path / "funcs.py"
    source = "import incgraph\n\n@incgraph.memoize(store={store!r})\ndef f(x):\n    return {body}\n"
    module.write_text(source.format(store=str(store), body="x + 1"))
    (tmp_path / "use.py").write_text("import funcs\nprint(tuple(funcs.f.call(1)))\n")
    env = {
        "PYTHONPATH": str(Path(incgraph.__file__).parents[1]),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, env=env
        )

    assert python("use.py").stdout.strip() == "(2, False)"
    module.write_text(source.format(store=str(store), body="1 + x"))
    assert python("use.py").stdout.strip() == "(2, False)"  # new code: computed again
    module.write_text(source.format(store=str(store), body="int(x) + 1"))
    done = python("-m", "incgraph.cli", "accept", "funcs.f", "--store", str(store))
    assert done.returncode == 0 and "accepted 1 result(s)" in done.stdout, done.stderr
    assert python("use.py").stdout.strip() == "(2, True)"


def test_editing_a_helper_in_another_module_recomputes(tmp_path: Path) -> None:
    """A new process sees an edited helper the function calls (a miss), but not a comment."""
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return 2 * x\n")
    (tmp_path / "job.py").write_text(
        textwrap.dedent(
            f"""
            import incgraph
            from helpers import scale

            @incgraph.memoize(store={str(tmp_path / "store")!r}, ignore="verbose")
            def work(x, verbose=False):
                return scale(x) + 1

            print(*work.call(5))
            """
        )
    )
    env = {
        "PYTHONPATH": f"{Path(incgraph.__file__).parents[1]}:{tmp_path}",
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",  # edits within one second must not reuse a .pyc
    }

    def run() -> str:
        done = subprocess.run([sys.executable, str(tmp_path / "job.py")], capture_output=True,
                              text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == "11 False" and run() == "11 True"
    (tmp_path / "helpers.py").write_text("def scale(x):\n    # times two\n    return 2 * x\n")
    assert run() == "11 True"
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return 3 * x\n")
    assert run() == "16 False"
