"""Keys from what was used: ForEach tasks keyed by value, layers keyed by the params they read."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import FlowError
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.flow.reads import EVERYTHING, Reads, layer_reads


class Grid(Flow): ...


@Grid.register
class Values(Layer):
    def __call__(self) -> None:
        self.shard(lr=self.params.lrs, depth=self.params.depths)


@Grid.register(
    foreach=ForEach(
        parameters=[
            Parameter(layer=Values, attribute="lr"),
            Parameter(layer=Values, attribute="depth"),
        ]
    )
)
class Train(Layer):
    def __call__(self, values: Values) -> None:
        self.score = values.lr * 100 + values.depth


@Grid.register
class Best(Layer):
    def __call__(self, train: Train) -> None:
        self.best = max(train.score)


class Positional(Flow): ...


@Positional.register
class Items(Layer):
    def __call__(self) -> None:
        self.shard(x=self.params.xs)


@Positional.register(foreach=ForEach(parameters=[Parameter(layer=Items, attribute="x")]))
class Tag(Layer):
    def __call__(self, items: Items) -> None:
        self.tag = (self.index, items.x)


def _tasks(computed: list[str], layer: str) -> list[str]:
    return [c for c in computed if c.startswith(f"{layer}[")]


def test_growing_a_grid_computes_only_the_new_cells(tmp_path: Path) -> None:
    """Adding a value to one dimension of a 4x4 grid computes the 4 new cells, no others."""
    flow = Grid(store=tmp_path / "store")
    first = flow(lrs=[1, 2, 3, 4], depths=[10, 20, 30, 40])
    assert len(_tasks(first.computed, "Train")) == 16
    grown = flow(lrs=[1, 2, 3, 4, 5], depths=[10, 20, 30, 40])
    assert len(_tasks(grown.computed, "Train")) == 4
    assert sorted(grown[Train].score) == sorted(
        lr * 100 + d for lr in [1, 2, 3, 4, 5] for d in [10, 20, 30, 40]
    )


def test_inserting_a_value_computes_only_its_cells(tmp_path: Path) -> None:
    """Inserting a value in the middle of a 16-cell grid computes the 4 cells that are new."""
    flow = Grid(store=tmp_path / "store")
    flow(lrs=[1, 2, 4, 5], depths=[10, 20, 30, 40])
    inserted = flow(lrs=[1, 2, 3, 4, 5], depths=[10, 20, 30, 40])
    assert len(_tasks(inserted.computed, "Train")) == 4
    scores = list(inserted[Train].score)
    assert scores[:5] == [110, 210, 310, 410, 510]  # grid order: the first dimension fastest


def test_reordering_a_grid_computes_no_cell(tmp_path: Path) -> None:
    """Reversing a dimension computes no task; the join follows the new order."""
    flow = Grid(store=tmp_path / "store")
    flow(lrs=[1, 2, 3], depths=[10, 20])
    reordered = flow(lrs=[3, 2, 1], depths=[10, 20])
    assert _tasks(reordered.computed, "Train") == []
    assert list(reordered[Train].score) == [310, 210, 110, 320, 220, 120]


def test_a_layer_reading_its_index_is_keyed_by_position(tmp_path: Path) -> None:
    """A task that reads self.index recomputes when its position changes, and is right."""
    flow = Positional(store=tmp_path / "store")
    flow(xs=["a", "b", "c"])
    inserted = flow(xs=["z", "a", "b", "c"])
    assert len(_tasks(inserted.computed, "Tag")) == 4
    assert list(inserted[Tag].tag) == [(0, "z"), (1, "a"), (2, "b"), (3, "c")]
    grown = flow(xs=["z", "a", "b", "c", "d"])
    assert _tasks(grown.computed, "Tag") == ["Tag[4]"]


class Params(Flow): ...


@Params.register
class Load(Layer):
    def __call__(self) -> None:
        self.data = [1, 2, 3]


@Params.register
class Fit(Layer):
    def __call__(self, load: Load) -> None:
        self.model = [x * self.params.lr for x in load.data]


@Params.register
class Report(Layer):
    def __call__(self, fit: Fit) -> None:
        self.text = f"{fit.model} after {self.params['epochs']} epochs"


@Params.register
class Everything(Layer):
    def __call__(self, load: Load) -> None:
        self.seen = sorted(self.params)


def test_an_unread_parameter_change_recomputes_only_its_readers(tmp_path: Path) -> None:
    """Changing epochs recomputes the layers that read it (or all params), not Load or Fit."""
    flow = Params(store=tmp_path / "store")
    first = flow(lr=2, epochs=1)
    assert sorted(first.computed) == ["Everything", "Fit", "Load", "Report"]
    second = flow(lr=2, epochs=5)
    assert sorted(second.computed) == ["Everything", "Report"]
    assert second[Report].text == "[2, 4, 6] after 5 epochs"
    third = flow(lr=3, epochs=5)
    assert sorted(third.computed) == ["Everything", "Fit", "Report"]
    assert third[Report].text == "[3, 6, 9] after 5 epochs"


def test_a_new_parameter_a_layer_reads_with_a_default_changes_its_key(tmp_path: Path) -> None:
    """self.params.get("x", default): passing x later recomputes; leaving it out is a hit."""

    class Opt(Flow): ...

    @Opt.register
    class Step(Layer):
        def __call__(self) -> None:
            self.value = self.params.get("scale", 1) * 10

    flow = Opt(store=tmp_path / "store")
    assert flow()[Step].value == 10
    assert flow(other=1).computed == []
    scaled = flow(scale=3)
    assert scaled.computed == ["Step"] and scaled[Step].value == 30


def test_indirect_index_read_fails_instead_of_storing(tmp_path: Path) -> None:
    """A task reading self.index where the analysis cannot see it fails; nothing is stored."""

    class Sneaky(Flow): ...

    @Sneaky.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    def position() -> int:
        frame = inspect.currentframe()
        assert frame is not None and frame.f_back is not None
        return int(frame.f_back.f_locals["me"].index)

    @Sneaky.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Use(Layer):
        def __call__(me_too, src: Src) -> None:
            me = vars()["me_too"]  # noqa: F841 - read by position() through the frame
            me_too.out = position()

    assert layer_reads(Use, "v") == EVERYTHING  # vars() makes it opaque: keyed by everything

    @Sneaky.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Hidden(Layer):
        def __call__(self, src: Src) -> None:
            self.out = _peek_index()

    assert layer_reads(Hidden, "v").index is False
    store = tmp_path / "store"
    with pytest.raises(FlowError, match=r"Hidden\[0\] read self.index.*not stored"):
        Sneaky(store=store)()
    with pytest.raises(FlowError, match=r"Hidden\[0\] read self.index"):
        Sneaky(store=store)()  # nothing was stored: it fails again rather than hit


def _peek_index() -> Any:
    """Reads the calling layer's index through the frame: invisible to the code reading."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_locals["self"].index


def test_indirect_param_read_fails_instead_of_storing(tmp_path: Path) -> None:
    """A layer reading a parameter through a path the analysis cannot see fails, named."""

    class Sneaky(Flow): ...

    @Sneaky.register
    class Peek(Layer):
        def __call__(self) -> None:
            self.lr = _peek_param("lr")

    assert layer_reads(Peek, "v").params == frozenset()
    with pytest.raises(FlowError, match=r"Peek read flow parameter 'lr'.*not stored"):
        Sneaky(store=tmp_path / "store")(lr=1)


def _peek_param(name: str) -> Any:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_locals["self"].params[name]


class _Base(Layer):
    def helper(self) -> int:
        return self.index

    @property
    def rate(self) -> float:
        return float(self.params.lr)


@pytest.mark.parametrize(
    ("body", "index", "params"),
    [
        ("self.out = 1", False, frozenset()),
        ("self.out = self.params.lr", False, frozenset({"lr"})),
        ("self.out = self.params['lr']", False, frozenset({"lr"})),
        ("self.out = self.params.get('lr', 0)", False, frozenset({"lr"})),
        ("self.out = 'lr' in self.params", False, frozenset({"lr"})),
        ("self.out = 'lr' not in self.params", False, frozenset({"lr"})),
        ("self.out = self.params in ('lr',)", False, None),
        ("self.out = getattr(self.params, 'lr')", False, frozenset({"lr"})),
        ("self.out = getattr(self.params, 'lr', 0)", False, frozenset({"lr"})),
        ("self.out = hasattr(self.params, 'lr')", False, frozenset({"lr"})),
        ("self.out = getattr(self.params, name)", False, None),
        ("self.out = getattr(self.params, '_values')", False, None),
        ("self.out = len(self.params)", False, None),
        ("self.out = self.params.keys()", False, None),
        ("self.out = [self.params[k] for k in ('a', 'b')]", False, None),
        ("self.out = dict(self.params)", False, None),
        ("self.out = self.index", True, frozenset()),
        ("self.out = self.helper()", True, frozenset()),
        ("self.out = self.rate", False, frozenset({"lr"})),
        ("self.out = (lambda: self.params.lr)()", False, frozenset({"lr"})),
        ("self.out = getattr(self, 'index')", True, frozenset()),
        ("self.out = getattr(self, 'rate', 0.1)", False, frozenset({"lr"})),
        ("self.out = hasattr(self, 'helper')", True, frozenset()),
        ("self.out = getattr(self, 'params').lr", False, None),
        ("self.out = getattr(self, name)", True, None),
        ("self.out = getattr(self, '__dict__')", True, None),
        ("self.out = str(self)", True, None),
        ("self.out = self.__dict__", True, None),
        ("self.out = self._incgraph_state.index", True, None),
        ("self._scratch = 1", False, frozenset()),
        ("self.out = super().__repr__()", True, None),
        ("self.out = vars()", True, None),
        ("self.out = type(self).__name__ + self.params.tag", False, frozenset({"tag"})),
        ("self.out = self.__class__.__name__", False, frozenset()),
        ("self.out = type(self, 'x')", True, None),
    ],
)
def test_layer_reads_patterns(body: str, index: bool, params: frozenset[str] | None) -> None:
    """The code reading finds direct reads and falls back to everything on any other use."""
    namespace: dict[str, Any] = {"_Base": _Base}
    source = f"class L(_Base):\n    def __call__(self):\n        {body}\n"
    path = Path(__file__).with_name("_reads_generated.py")
    import linecache

    linecache.cache[str(path)] = (len(source), None, source.splitlines(True), str(path))
    try:
        exec(compile(source, str(path), "exec"), namespace)
        reads = layer_reads(namespace["L"], body)
    finally:
        linecache.cache.pop(str(path), None)
    assert (reads.index, reads.params) == (index, params)


def test_layer_without_source_is_keyed_by_everything() -> None:
    """A layer whose source cannot be read is keyed by position and every parameter."""
    namespace: dict[str, Any] = {"Layer": Layer}
    exec("class L(Layer):\n    def __call__(self):\n        self.out = 1\n", namespace)
    assert layer_reads(namespace["L"], "v") == EVERYTHING


def test_attribute_hooks_make_a_layer_opaque() -> None:
    """A layer that overrides __getattr__ (code runs on any attribute) is keyed by everything."""

    class Magic(Layer):
        def __getattr__(self, name: str) -> Any:
            return 1

        def __call__(self) -> None:
            self.out = 1

    assert layer_reads(Magic, "v") == EVERYTHING


def test_equal_cells_share_a_result(tmp_path: Path) -> None:
    """Two cells with equal values (and a layer not reading its index) give equal results."""
    flow = Grid(store=tmp_path / "store")
    run = flow(lrs=[1, 1, 2], depths=[10])
    assert list(run[Train].score) == [110, 110, 210]
    assert max(run[Best].best for _ in [0]) == 210


def test_value_keys_hold_under_the_processes_executor(tmp_path: Path) -> None:
    """Worker processes get the task's keying (position, parameters) and compute the same."""
    flow = Grid(store=tmp_path / "store", executor="processes")
    flow(lrs=[1, 2], depths=[10])
    grown = Grid(store=tmp_path / "store", executor="processes")(lrs=[1, 2, 3], depths=[10])
    assert _tasks(grown.computed, "Train") == ["Train[2]"]
    assert list(grown[Train].score) == [110, 210, 310]


class _ScaleMixin:
    def scaled(self) -> float:
        return float(self.params.lr) * 2  # type: ignore[attr-defined]

    def position(self) -> int:
        return int(self.index)  # type: ignore[attr-defined]


def test_a_mixin_listed_after_layer_is_read_like_a_base_class(tmp_path: Path) -> None:
    """Methods of a mixin after Layer in the bases are followed: keyed by what they read, no error."""

    class Mixed(Flow): ...

    @Mixed.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=self.params.xs)

    @Mixed.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Use(Layer, _ScaleMixin):
        def __call__(self, src: Src) -> None:
            self.out = (self.position(), src.x, self.scaled())

    assert layer_reads(Use, "v") == Reads(index=True, params=frozenset({"lr"}))
    flow = Mixed(store=tmp_path / "store")
    assert list(flow(xs=["a", "b"], lr=1)[Use].out) == [(0, "a", 2.0), (1, "b", 2.0)]
    changed = flow(xs=["a", "b"], lr=2)
    assert _tasks(changed.computed, "Use") == ["Use[0]", "Use[1]"]
    assert list(changed[Use].out) == [(0, "a", 4.0), (1, "b", 4.0)]


GRID_SCRIPT = textwrap.dedent(
    """
    import sys
    from incgraph.flow import Flow, ForEach, Layer, Parameter

    class Described:
        def describe(self, cell):
            return f"{type(self).__name__} {cell.lr}/{cell.depth} x{self.params.get('scale', 1)}"

    class Sweep(Flow): ...

    @Sweep.register
    class Cells(Layer):
        def __call__(self):
            self.shard(lr=self.params.lrs, depth=self.params.depths)

    @Sweep.register(
        foreach=ForEach(
            parameters=[Parameter(layer=Cells, attribute="lr"), Parameter(layer=Cells, attribute="depth")]
        )
    )
    class Fit(Layer, Described):
        def __call__(self, cells: Cells):
            self.text = self.describe(cells)

    @Sweep.register
    class Table(Layer):
        def __call__(self, fit: Fit):
            self.rows = list(fit.text)

    if flow := Sweep(store=sys.argv[1]):
        run = flow(**eval(sys.argv[2]))
        print(sorted(c for c in run.computed if c.startswith("Fit[")), run[Table].rows)
    """
)


def _sweep(script: Path, store: Path, params: str) -> tuple[list[str], list[str]]:
    out = subprocess.run(
        [sys.executable, str(script), str(store), params],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    ).stdout
    computed, rows = ast.literal_eval(out.replace("] [", "], [", 1))
    return computed, rows


def test_a_grid_grown_in_a_new_process_computes_only_the_new_cells(tmp_path: Path) -> None:
    """Each run a fresh process: growing, reordering and rescaling compute only new cells."""
    script = tmp_path / "sweep.py"
    script.write_text(GRID_SCRIPT)
    store = tmp_path / "store"
    computed, _ = _sweep(script, store, "dict(lrs=[1, 2], depths=[3, 4])")
    assert len(computed) == 4
    steps = [
        ("dict(lrs=[1, 5, 2], depths=[3, 4])", ["Fit[1]", "Fit[4]"]),
        ("dict(lrs=[2, 5, 1], depths=[4, 3])", []),
        ("dict(lrs=[2, 5, 1], depths=[4, 3], unused=1)", []),
        ("dict(lrs=[2, 1], depths=[4], scale=2)", ["Fit[0]", "Fit[1]"]),
    ]
    for params, expected in steps:
        computed, rows = _sweep(script, store, params)
        assert computed == expected
        p = eval(params)
        scale = p.get("scale", 1)
        assert rows == [f"Fit {lr}/{d} x{scale}" for d in p["depths"] for lr in p["lrs"]]


def test_getattr_hasattr_and_in_on_params_key_by_that_parameter(tmp_path: Path) -> None:
    """getattr/hasattr/`in` with a literal name key a task by that parameter alone."""

    class Opt(Flow): ...

    @Opt.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=self.params.xs)

    @Opt.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Scale(Layer):
        def __call__(self, src: Src) -> None:
            bias = 0
            if "bias" in self.params:
                bias = self.params.bias
            lr = getattr(self.params, "lr", 1) if hasattr(self.params, "lr") else 1
            self.out = src.x * lr + bias

    flow = Opt(store=tmp_path / "store")
    assert list(flow(xs=[1, 2])[Scale].out) == [1, 2]
    grown = flow(xs=[1, 2, 3])
    assert _tasks(grown.computed, "Scale") == ["Scale[2]"]
    scaled = flow(xs=[1, 2, 3], lr=10, bias=1)
    assert list(scaled[Scale].out) == [11, 21, 31]
    assert len(_tasks(scaled.computed, "Scale")) == 3
    assert _tasks(flow(xs=[1, 2, 3], lr=10, bias=1, other=5).computed, "Scale") == []
