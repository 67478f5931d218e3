"""Processor.packages and open_store(packages=...): installed versions in the cache key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from incgraph import GraphDefinitionError, ProcessGraph, Processor, open_store

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from incgraph import ProcessGraph, Processor, open_store

    CALLS = []

    class Fit(Processor):
        packages = ("fakelib",)
        def process(self, x: int) -> int:
            CALLS.append("fit")
            return x + 1

    class Plain(Processor):
        def process(self, x: int) -> int:
            CALLS.append("plain")
            return x * 2

    store_packages = json.loads(sys.argv[2])
    store = open_store(sys.argv[1], packages=store_packages)
    g = ProcessGraph(store=store)
    g.run_upto([g.add_node("fit", Fit, {"x": 1}), g.add_node("plain", Plain, {"x": 1})])
    print(json.dumps(sorted(CALLS)))
    """
)


def _install_fakelib(site: Path, version: str) -> None:
    """A real (metadata-only) distribution ``fakelib`` at ``version`` in ``site``."""
    for old in site.glob("fakelib-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"fakelib-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakelib\nVersion: {version}\n")


def _run(tmp_path: Path, site: Path, store_packages: tuple[str, ...] = ()) -> list[str]:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), json.dumps(list(store_packages))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_upgrading_a_declared_package_recomputes_exactly_its_nodes(tmp_path: Path) -> None:
    """A new version of a declared package recomputes the nodes declaring it, and no others."""
    site = tmp_path / "site"
    _install_fakelib(site, "1.0")
    assert _run(tmp_path, site) == ["fit", "plain"]
    assert _run(tmp_path, site) == []
    _install_fakelib(site, "1.1")
    assert _run(tmp_path, site) == ["fit"]
    assert _run(tmp_path, site) == []
    _install_fakelib(site, "1.0")
    assert _run(tmp_path, site) == []  # the 1.0 results are still stored


def test_store_packages_enter_every_key(tmp_path: Path) -> None:
    """A store opened with packages=[...] recomputes every node when one of them is upgraded."""
    site = tmp_path / "site"
    _install_fakelib(site, "2.0")
    assert _run(tmp_path, site, ("fakelib",)) == ["fit", "plain"]
    assert _run(tmp_path, site, ("fakelib",)) == []
    _install_fakelib(site, "2.1")
    assert _run(tmp_path, site, ("fakelib",)) == ["fit", "plain"]


def test_unknown_package_raises_at_add_node(tmp_path: Path) -> None:
    """A declared package that is not installed fails at add_node, naming node and package."""

    class Fit(Processor):
        packages = ("no-such-package-xyz",)

        def process(self, x: int) -> int:
            return x

    g = ProcessGraph(store=tmp_path / "store")
    with pytest.raises(GraphDefinitionError, match=r"node 3 \(Fit\).*'no-such-package-xyz'"):
        g.add_node(3, Fit, {"x": 1})


def test_packages_given_as_a_string_raises(tmp_path: Path) -> None:
    """packages = "torch" (a string, not a tuple) is refused with the fix."""

    class Fit(Processor):
        packages = "xxhash"

        def process(self, x: int) -> int:
            return x

    g = ProcessGraph(store=tmp_path / "store")
    with pytest.raises(GraphDefinitionError, match=r"node 1 \(Fit\).*packages = \('xxhash',\)"):
        g.add_node(1, Fit, {"x": 1})


def test_unknown_store_package_raises_at_open(tmp_path: Path) -> None:
    """open_store(packages=[...]) with a package that is not installed names it."""
    with pytest.raises(GraphDefinitionError, match=r"the store.*'no-such-package-xyz'"):
        open_store(tmp_path / "store", packages=["no-such-package-xyz"])


def test_declared_package_changes_the_key_and_explain_says_why(tmp_path: Path) -> None:
    """Declaring a package changes the node's key; explain names the packages as a reason."""

    class Fit(Processor):
        def process(self, x: int) -> int:
            return x

    class FitPinned(Fit):
        packages = ("xxhash",)

    g = ProcessGraph(store=tmp_path / "store")
    plain, pinned = g.add_node(1, Fit, {"x": 1}), g.add_node(2, FitPinned, {"x": 1})
    assert plain.init_version() != pinned.init_version()
    assert pinned.packages() == ("xxhash",)
    g.run_upto(pinned)
    with open_store(tmp_path / "store", packages=["typing-extensions"]) as store:
        g2 = ProcessGraph(store=store)
        node = g2.add_node(2, FitPinned, {"x": 1})
        decision = g2.explain(node).decisions[-1]
        assert decision.action == "compute"
        assert "typing-extensions, xxhash" in decision.reason


FRONT_ENDS = textwrap.dedent(
    """
    import json, sys
    import incgraph.queues as iq
    from incgraph import open_store
    from incgraph.flow import Flow, ForEach, Layer, Parameter

    class Grid(Flow): ...

    @Grid.register
    class Values(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Values, attribute="x")]))
    class Square(Layer):
        def __call__(self, values: Values) -> None:
            self.y = values.x ** 2

    def double(x):
        return 2 * x

    store = open_store(sys.argv[1], packages=["fakelib"])
    run = Grid(store=store)()
    p = iq.Pipeline(store=store)
    p.map(double, iq.Queue([1, 2, 3]))
    report = p.run()
    print(json.dumps([len(run.computed), report.computed]))
    """
)


def test_store_packages_reach_flows_and_queues(tmp_path: Path) -> None:
    """Upgrading a store-level package recomputes every flow task and queue item, once."""
    site = tmp_path / "site"
    script = tmp_path / "front_ends.py"
    script.write_text(FRONT_ENDS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])

    def run() -> list[int]:
        out = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "store")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return list(json.loads(out.stdout.strip().splitlines()[-1]))

    _install_fakelib(site, "1.0")
    assert run() == [4, 3]  # Values, Square[0], Square[1], the join; three queue items
    assert run() == [0, 0]
    _install_fakelib(site, "2.0")
    assert run() == [4, 3]
    assert run() == [0, 0]


LAYERS = textwrap.dedent(
    """
    import json, sys
    from incgraph.flow import Flow, ForEach, Layer, Parameter

    class Grid(Flow): ...

    @Grid.register
    class Values(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Values, attribute="x")]))
    class Fit(Layer):
        packages = ("fakelib",)
        def __call__(self, values: Values) -> None:
            self.y = values.x * 10

    @Grid.register
    class Plain(Layer):
        def __call__(self, values: Values) -> None:
            self.n = len(values.x)

    run = Grid(store=sys.argv[1])()
    print(json.dumps(sorted(run.computed)))
    """
)


def test_layer_packages_recompute_only_that_layer(tmp_path: Path) -> None:
    """A Layer declaring packages recomputes its tasks on an upgrade; other layers are hits."""
    site = tmp_path / "site"
    script = tmp_path / "layers.py"
    script.write_text(LAYERS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])

    def run() -> list[str]:
        out = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "store")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return list(json.loads(out.stdout.strip().splitlines()[-1]))

    _install_fakelib(site, "1.0")
    assert run() == ["Fit", "Fit[0]", "Fit[1]", "Plain", "Values"]
    assert run() == []
    _install_fakelib(site, "1.5")
    assert run() == ["Fit[0]", "Fit[1]"]  # the tasks; their join is unchanged: a hit


def test_unknown_layer_package_raises(tmp_path: Path) -> None:
    """A layer declaring a package that is not installed fails naming the layer and package."""
    from incgraph.flow import Flow, Layer

    class Broken(Flow): ...

    @Broken.register
    class Train(Layer):
        packages = ("no-such-package-xyz",)

        def __call__(self) -> None:
            self.y = 1

    with pytest.raises(GraphDefinitionError, match=r"Train.*'no-such-package-xyz'"):
        Broken(store=tmp_path / "store")()
