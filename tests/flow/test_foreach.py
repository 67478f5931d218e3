"""ForEach: grid order, broadcasting, alignment, task indices, empty fan-outs and joins."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incgraph.errors import FlowError
from incgraph.flow import Accessor, Flow, ForEach, Layer, Parameter
from incgraph.flow.foreach import grid_points


@given(st.lists(st.integers(min_value=0, max_value=4), max_size=4))
def test_grid_points_first_dimension_fastest(sizes: list[int]) -> None:
    """Point k of the grid has coordinate d = (k // prod(sizes[:d])) % sizes[d]."""
    points = list(grid_points(sizes))
    assert len(points) == math.prod(sizes)
    for k, point in enumerate(points):
        stride = 1
        for d, n in enumerate(sizes):
            assert point[d] == (k // stride) % n
            stride *= n


def grid_flow(foo: list[object], bar: list[object]) -> tuple[type[Flow], type[Layer], type[Layer]]:
    class Grid(Flow): ...

    @Grid.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=foo, bar=bar)

    @Grid.register(
        foreach=ForEach(
            parameters=[
                Parameter(layer=Shard, attribute="foo"),
                Parameter(layer=Shard, attribute="bar"),
            ]
        )
    )
    class Process(Layer):
        def __call__(self, shard: Shard) -> None:
            self.pair = (self.index, shard.foo, shard.bar)

    @Grid.register
    class Join(Layer):
        def __call__(self, process: Process) -> None:
            self.pairs = list(process.pair)

    return Grid, Process, Join


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(), max_size=4),
    st.lists(st.text(max_size=3), max_size=3),
)
def test_grid_is_the_product_with_first_fastest_and_rerun_equals_fresh(
    foo: list[int], bar: list[str]
) -> None:
    """Tasks cover foo x bar, foo varying fastest; a cached rerun returns the same join."""
    Grid, _, Join = grid_flow(foo, bar)
    flow = Grid(store=":memory:")
    expected = [(i, f, b) for i, (b, f) in enumerate((b, f) for b in bar for f in foo)]
    first = flow()
    assert first[Join].pairs == expected
    again = flow()
    assert again.computed == []
    assert again[Join].pairs == expected


def test_task_sees_its_element_not_an_accessor(tmp_path: Path) -> None:
    """Inside a task the fanned-out attribute is the element; other shards stay Accessors."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[10, 20], other=[1, 2, 3])
            self.label = "L"

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Task(Layer):
        def __call__(self, src: Src) -> None:
            assert not isinstance(src.x, Accessor)
            assert isinstance(src.other, Accessor)
            self.seen = (src.x, list(src.other), src.label)

    seen = list(F(store=tmp_path)()[Task].seen)
    assert seen == [(10, [1, 2, 3], "L"), (20, [1, 2, 3], "L")]


def test_index_is_zero_outside_foreach(tmp_path: Path) -> None:
    """self.index is 0 in a layer that is not a ForEach."""

    class F(Flow): ...

    @F.register
    class Plain(Layer):
        def __call__(self) -> None:
            self.i = self.index

    assert F(store=tmp_path)()[Plain].i == 0


def empty_flow() -> tuple[type[Flow], type[Layer]]:
    class Empty(Flow): ...

    @Empty.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[])

    @Empty.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Fan(Layer):
        def __call__(self, src: Src) -> None:
            raise AssertionError("no task should run")

    @Empty.register
    class After(Layer):
        def __call__(self, fan: Fan) -> None:
            self.n = len(fan.anything)
            self.kind = type(fan.anything).__name__

    return Empty, After


def test_empty_foreach_runs_no_task_and_joins_empty(tmp_path: Path) -> None:
    """An empty shard runs zero tasks; the join reads as an empty Accessor and the flow goes on."""
    Empty, After = empty_flow()
    execution = Empty(store=tmp_path)()
    assert (execution[After].n, execution[After].kind) == (0, "Accessor")
    assert execution.layers["Fan"].tasks == 0
    assert Empty(store=tmp_path)().computed == []


def test_aligned_parameters_zip(tmp_path: Path) -> None:
    """index=None parameters of a plain layer are zipped, not crossed."""

    class Zip(Flow): ...

    @Zip.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(a=[1, 2, 3], b=["x", "y", "z"])

    @Zip.register(
        foreach=ForEach(
            parameters=[
                Parameter(layer=Src, attribute="a", index=None),
                Parameter(layer=Src, attribute="b", index=None),
            ]
        )
    )
    class Pair(Layer):
        def __call__(self, src: Src) -> None:
            self.p = f"{src.a}{src.b}"

    assert list(Zip(store=tmp_path)()[Pair].p) == ["1x", "2y", "3z"]


def test_aligned_lengths_must_match(tmp_path: Path) -> None:
    """Zipping shards of different lengths is an error naming both parameters."""

    class Zip(Flow): ...

    @Zip.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(a=[1, 2, 3], b=["x"])

    @Zip.register(
        foreach=ForEach(
            parameters=[
                Parameter(layer=Src, attribute="a", index=None),
                Parameter(layer=Src, attribute="b", index=None),
            ]
        )
    )
    class Pair(Layer):
        def __call__(self, src: Src) -> None: ...

    with pytest.raises(FlowError, match=r"Src\.a \(3 elements\) with Src\.b \(1 elements\)"):
        Zip(store=tmp_path)()


def test_chained_task_sees_whole_upstream_task(tmp_path: Path) -> None:
    """With index=None on a ForEach, task i reads every attribute of upstream task i."""

    class Chain(Flow): ...

    @Chain.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    @Chain.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class First(Layer):
        def __call__(self, src: Src) -> None:
            self.foo = src.x
            self.double = 2 * src.x
            self.shard(parts=[src.x] * src.x)

    @Chain.register(
        foreach=ForEach(parameters=[Parameter(layer=First, attribute="foo", index=None)])
    )
    class Second(Layer):
        def __call__(self, first: First) -> None:
            self.got = (self.index, first.foo, first.double, list(first.parts))

    got = list(Chain(store=tmp_path)()[Second].got)
    assert got == [(0, 1, 2, [1]), (1, 2, 4, [2, 2])]


def test_task_index_reads_one_upstream_task(tmp_path: Path) -> None:
    """Parameter(index=k) on a ForEach fans out over what its task k sharded."""

    class Nested(Flow): ...

    @Nested.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(n=[2, 3])

    @Nested.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="n")]))
    class Make(Layer):
        def __call__(self, src: Src) -> None:
            self.shard(items=list(range(src.n)))

    @Nested.register(
        foreach=ForEach(parameters=[Parameter(layer=Make, attribute="items", index=1)])
    )
    class Use(Layer):
        def __call__(self, make: Make) -> None:
            self.item = make.items

    @Nested.register
    class Check(Layer):
        def __call__(self, make: Make) -> None:
            self.nested = [list(a) for a in make.items]

    execution = Nested(store=tmp_path)()
    assert list(execution[Use].item) == [0, 1, 2]
    assert execution[Check].nested == [[0, 1], [0, 1, 2]]


def test_task_index_out_of_range(tmp_path: Path) -> None:
    """Reading a task index the upstream ForEach does not have is an error saying how many ran."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(n=[1])

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="n")]))
    class A(Layer):
        def __call__(self, src: Src) -> None:
            self.v = src.n

    @F.register(foreach=ForEach(parameters=[Parameter(layer=A, attribute="v", index=5)]))
    class B(Layer):
        def __call__(self, a: A) -> None: ...

    with pytest.raises(FlowError, match=r"reads task 5, but A ran 1 task"):
        F(store=tmp_path)()


def test_independent_foreach_layers_run_in_one_wave(tmp_path: Path) -> None:
    """Two ForEach layers over the same data are compiled and run together."""

    class Two(Flow): ...

    @Two.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2, 3])

    @Two.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Inc(Layer):
        def __call__(self, src: Src) -> None:
            self.v = src.x + 1

    @Two.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Dec(Layer):
        def __call__(self, src: Src) -> None:
            self.v = src.x - 1

    @Two.register
    class Sum(Layer):
        def __call__(self, inc: Inc, dec: Dec) -> None:
            self.total = sum(inc.v) + sum(dec.v)

    execution = Two(store=tmp_path)()
    assert execution[Sum].total == 12
    assert sorted(execution.computed) == sorted(
        ["Src", "Inc[0]", "Inc[1]", "Inc[2]", "Inc", "Dec[0]", "Dec[1]", "Dec[2]", "Dec", "Sum"]
    )


def test_grid_tasks_hash_as_tasks_built_one_by_one() -> None:
    """The grid's fast task assembly gives each task the content (and so the cache key) that
    ``Task(index, elements, whole)`` computes, for crossed, constant and whole contributions."""
    from incgraph.flow.artifacts import Manifest, Task, inline
    from incgraph.flow.grid import Grid

    upstream_task = Manifest({"score": inline(0.5)})
    grid = Grid(
        dims=[
            [[("A", "x", inline(i))] for i in range(3)],
            [[("B", "y", inline(f"s{j}")), ("C", None, upstream_task)] for j in range(2)],
        ],
        constant=[("A", "k", inline(7))],
    )
    tasks = grid.tasks()
    assert [t.index for t in tasks] == list(range(6))
    for task in tasks:
        assert task.elements["A"]["k"] == ("v", 7)  # a constant merges into a crossed layer
        rebuilt = Task(task.index, task.elements, task.whole)
        assert task.content == rebuilt.content
    assert len({t.content for t in tasks}) == 6
    assert tasks[4].elements["A"]["x"] == ("v", 1) and tasks[4].elements["B"]["y"] == ("v", "s1")
    single = Grid(dims=[[[("A", "x", inline(i)), ("C", None, upstream_task)] for i in range(3)]])
    for task in single.tasks():  # one dimension, nothing constant: the fast path
        assert task.content == Task(task.index, task.elements, task.whole).content
        assert task.elements["A"]["x"] == ("v", task.index) and task.whole["C"] is upstream_task


def test_a_join_pickles_compactly_and_loads_as_manifests_with_the_same_contents() -> None:
    """A join round-trips through pickle as a Join of Manifests with equal entries, contents
    and join content; joins pickled the older way (Manifest objects) still load."""
    import pickle

    from incgraph.flow.artifacts import Join, Manifest, inline, ref

    join = Join([Manifest({"y": inline(i), "m": ref(f"{i:032x}")}) for i in range(3)])
    loaded = pickle.loads(pickle.dumps(join))
    assert isinstance(loaded, Join) and loaded == join and loaded.content == join.content
    assert all(type(m) is Manifest for m in loaded)
    assert [m.content for m in loaded] == [m.content for m in join]
    assert [dict(m) for m in loaded] == [dict(m) for m in join]
    older = pickle.loads(pickle.dumps((Join, (join.manifests, join.content))))
    assert older[0](*older[1]) == join


def test_a_layers_own_init_runs_before_each_call(tmp_path: Path) -> None:
    """A layer that defines __init__ (no arguments) has it run on a fresh instance per task."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2])

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Count(Layer):
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, src: Src) -> None:
            self.calls += 1
            self.x = src.x

    run = F(store=tmp_path)()
    assert list(run[Count].calls) == [1, 1] and list(run[Count].x) == [1, 2]
