"""Caching: reruns compute nothing, changes recompute only what they reach, early cutoff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import HashingError, NodeError
from incgraph.flow import Flow, ForEach, Layer, Parameter


def chain_flow(factor: int, offset: int = 0) -> tuple[type[Flow], dict[str, type[Layer]]]:
    """A -> B -> D <- C; A's code reads ``factor``/``offset`` (closure values: part of its code)."""

    class Chain(Flow): ...

    @Chain.register
    class A(Layer):
        def __call__(self) -> None:
            self.x = 10 * factor + offset

    @Chain.register
    class B(Layer):
        def __call__(self, a: A) -> None:
            self.y = a.x + 1

    @Chain.register
    class C(Layer):
        def __call__(self) -> None:
            self.z = 5

    @Chain.register
    class D(Layer):
        def __call__(self, b: B, c: C) -> None:
            self.total = b.y + c.z

    return Chain, {"A": A, "B": B, "C": C, "D": D}


def test_rerun_computes_nothing(tmp_path: Path) -> None:
    """A second run of an unchanged flow, from a new flow object, is all hits."""
    Chain, layers = chain_flow(1)
    first = Chain(store=tmp_path)()
    assert sorted(first.computed) == ["A", "B", "C", "D"]
    again = Chain(store=tmp_path)()
    assert again.computed == []
    assert sorted(again.cached) == ["A", "B", "C", "D"]
    assert again[layers["D"]].total == 16


def test_code_change_recomputes_that_layer_and_downstream(tmp_path: Path) -> None:
    """Changing A's code recomputes A, B and D; C is untouched."""
    Chain, _ = chain_flow(1)
    Chain(store=tmp_path)()
    Changed, layers = chain_flow(2)
    execution = Changed(store=tmp_path)()
    assert sorted(execution.computed) == ["A", "B", "D"]
    assert execution.cached == ["C"]
    assert execution[layers["D"]].total == 26


def test_early_cutoff_when_result_is_unchanged(tmp_path: Path) -> None:
    """A recomputed layer whose artifacts did not change leaves its dependents as hits."""
    Chain, _ = chain_flow(1, 0)
    Chain(store=tmp_path)()
    Same, layers = chain_flow(2, -10)  # different code, same x == 10
    execution = Same(store=tmp_path)()
    assert execution.computed == ["A"]
    assert execution[layers["D"]].total == 16


def fan_flow(values: tuple[int, ...]) -> tuple[type[Flow], dict[str, type[Layer]]]:
    """Data shards ``values``; Work squares each; Sum joins. ``values`` is part of Data's code."""

    class Fan(Flow): ...

    @Fan.register
    class Data(Layer):
        def __call__(self) -> None:
            self.shard(x=list(values))

    @Fan.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="x")]))
    class Work(Layer):
        def __call__(self, data: Data) -> None:
            self.y = data.x**2

    @Fan.register
    class Sum(Layer):
        def __call__(self, work: Work) -> None:
            self.total = sum(work.y)

    return Fan, {"Data": Data, "Work": Work, "Sum": Sum}


def test_changing_one_element_recomputes_only_its_task(tmp_path: Path) -> None:
    """One changed shard element recomputes Data, that one task, the join and what reads it."""
    Fan, _ = fan_flow((1, 2, 3, 4))
    Fan(store=tmp_path)()
    Changed, layers = fan_flow((1, 2, 30, 4))
    execution = Changed(store=tmp_path)()
    assert sorted(execution.computed) == ["Data", "Sum", "Work", "Work[2]"]
    assert execution[layers["Sum"]].total == 1 + 4 + 900 + 16


def test_task_with_unchanged_result_cuts_off_the_join(tmp_path: Path) -> None:
    """If the changed element gives the same task result, the join and downstream are hits."""
    Fan, _ = fan_flow((1, 2, 3, 4))
    Fan(store=tmp_path)()
    Changed, _ = fan_flow((1, 2, -3, 4))  # (-3)**2 == 3**2
    execution = Changed(store=tmp_path)()
    assert sorted(execution.computed) == ["Data", "Work[2]"]
    assert "Sum" in execution.cached


def test_grid_change_recomputes_only_tasks_that_see_it(tmp_path: Path) -> None:
    """Changing one value of the second grid parameter recomputes only its row of tasks."""

    def make(bar: tuple[str, ...]) -> type[Flow]:
        class G(Flow): ...

        @G.register
        class Shard(Layer):
            def __call__(self) -> None:
                self.shard(foo=[1, 2, 3], bar=list(bar))

        @G.register(
            foreach=ForEach(
                parameters=[
                    Parameter(layer=Shard, attribute="foo"),
                    Parameter(layer=Shard, attribute="bar"),
                ]
            )
        )
        class Process(Layer):
            def __call__(self, shard: Shard) -> None:
                self.v = f"{shard.foo}{shard.bar}"

        return G

    make(("a", "b"))(store=tmp_path)()
    execution = make(("a", "c"))(store=tmp_path)()
    tasks = sorted(n for n in execution.computed if n.startswith("Process["))
    assert tasks == ["Process[3]", "Process[4]", "Process[5]"]


def test_fully_cached_rerun_adds_no_task_nodes(tmp_path: Path) -> None:
    """A rerun with nothing changed answers the ForEach from one memo record, without task nodes."""
    Fan, _ = fan_flow(tuple(range(50)))
    first = Fan(store=tmp_path)()
    assert "Work[49]" in [str(n.id) for n in first.graph]
    again = Fan(store=tmp_path)()
    assert "Work[49]" not in [str(n.id) for n in again.graph]
    assert len(again.cached) == 53  # Data, 50 tasks, the join, Sum


def params_flow() -> tuple[type[Flow], type[Layer]]:
    class P(Flow): ...

    @P.register
    class Scale(Layer):
        def __call__(self) -> None:
            self.value = self.params.factor * self.params["base"]

    return P, Scale


def test_params_are_readable_and_part_of_the_key(tmp_path: Path) -> None:
    """flow(**params) reaches layers as self.params; changing a param recomputes, restoring hits."""
    P, Scale = params_flow()
    assert P(store=tmp_path)(factor=2, base=10)[Scale].value == 20
    changed = P(store=tmp_path)(factor=3, base=10)
    assert (changed.computed, changed[Scale].value) == (["Scale"], 30)
    back = P(store=tmp_path)(factor=2, base=10)
    assert (back.computed, back[Scale].value) == ([], 20)


def test_missing_param_names_the_ones_given(tmp_path: Path) -> None:
    """Reading a param that was not passed says which ones were."""
    P, _ = params_flow()
    with pytest.raises(NodeError, match=r"flow parameter 'base' was not passed; flow.*got: factor"):
        P(store=tmp_path)(factor=2)


def test_unhashable_param_is_refused(tmp_path: Path) -> None:
    """A param without a content hash raises HashingError naming it, before running."""
    P, _ = params_flow()
    with pytest.raises(HashingError, match="flow parameter 'factor'"):
        P(store=tmp_path)(factor=object(), base=1)


class Model:
    """A value the hasher does not know (like a fitted estimator)."""

    def __init__(self, w: int) -> None:
        self.w = w


def test_unhashable_artifacts_are_stored_and_cached(tmp_path: Path) -> None:
    """An artifact with no content hash is stored under a version derived from its inputs."""

    class M(Flow): ...

    @M.register
    class Fit(Layer):
        def __call__(self) -> None:
            self.model = Model(3)

    @M.register
    class Use(Layer):
        def __call__(self, fit: Fit) -> None:
            self.out = fit.model.w * 2

    first = M(store=tmp_path)()
    assert first[Use].out == 6
    again = M(store=tmp_path)()
    assert again.computed == []
    assert again[Fit].model.w == 3


def failing_flow(fail_at: int) -> tuple[type[Flow], type[Layer]]:
    class Fails(Flow): ...

    @Fails.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[0, 1, 2, 3])

    @Fails.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Work(Layer):
        def __call__(self, src: Src) -> None:
            if src.x == fail_at:
                raise ValueError(f"bad element {src.x}")
            self.y = src.x * 10

    return Fails, Work


def test_failing_task_names_layer_and_index(tmp_path: Path) -> None:
    """A task that raises is a NodeError naming Work[2] and carrying the original exception."""
    Fails, _ = failing_flow(2)
    with pytest.raises(
        NodeError, match=r"Work\[2\] \(Work\) failed: ValueError: bad element 2"
    ) as info:
        Fails(store=tmp_path)()
    assert isinstance(info.value.exception, ValueError)
    Fixed, Work = failing_flow(-1)  # the fix changes Work's code: every task recomputes
    fixed = Fixed(store=tmp_path)()
    assert list(fixed[Work].y) == [0, 10, 20, 30]


def test_succeeded_tasks_are_hits_after_a_failure(tmp_path: Path) -> None:
    """After a task failed, the tasks that had succeeded are hits on the rerun."""

    def make(values: tuple[int, ...]) -> tuple[type[Flow], type[Layer]]:
        class Retry(Flow): ...

        @Retry.register
        class Src(Layer):
            def __call__(self) -> None:
                self.shard(x=list(values))

        @Retry.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
        class Inv(Layer):
            def __call__(self, src: Src) -> None:
                self.y = 12 // src.x

        return Retry, Inv

    Retry, _ = make((1, 2, 0, 3))
    with pytest.raises(NodeError, match=r"Inv\[2\]"):
        Retry(store=tmp_path)()
    Fixed, Inv = make((1, 2, 4, 3))
    execution = Fixed(store=tmp_path)()
    assert {"Inv[0]", "Inv[1]"} <= set(execution.cached)
    assert "Inv[2]" in execution.computed
    assert list(execution[Inv].y) == [12, 6, 3, 4]


def test_the_memo_row_reuses_the_joins_blob(tmp_path: Path, monkeypatch: Any) -> None:
    """After a ForEach computes, its memo key is one more index row naming the join's blob:
    the join is encoded and written once, and the rerun's memo hit loads the same join."""
    from incgraph.flow.artifacts import Join
    from incgraph.store import file_blobs
    from incgraph.store.codecs import Captured

    encoded_joins: list[int] = []
    real = file_blobs.FileBlobStore.put_many

    def counting(self: Any, items: Any, **kw: Any) -> Any:
        items = list(items)
        values = [v.value() if isinstance(v, Captured) else v for _, v in items]
        encoded_joins.extend(1 for v in values if isinstance(v, Join))
        return real(self, items, **kw)

    monkeypatch.setattr(file_blobs.FileBlobStore, "put_many", counting)
    Fan, _ = fan_flow(tuple(range(20)))
    first = Fan(store=tmp_path)()
    assert encoded_joins == [1]
    with Fan(store=tmp_path) as flow:
        again = flow()
        memo = [r for r in flow.store.index.records() if r.node.endswith("Work[*]")]
        join = [r for r in flow.store.index.records() if r.node.endswith("/Work")]
    assert len(memo) == 1 and memo[0].data_version == join[0].data_version
    assert memo[0].size == join[0].size > 0 and memo[0].created > 0
    assert "Work[19]" not in [str(n.id) for n in again.graph] and encoded_joins == [1]
    assert list(again["Work"].y) == list(first["Work"].y)


def test_runs_of_one_flow_reuse_its_generated_processors(tmp_path: Path) -> None:
    """Two runs of a flow class use the same generated processor class per layer (its
    signature and code version are read once); registering a layer makes new ones."""
    from incgraph.flow.processors import ForEachJoin, LayerProcessor

    def generated(execution: Any) -> set[type]:
        return {n.processor for n in execution.graph if n.processor is not None} - {ForEachJoin}

    Fan, _ = fan_flow((1, 2))
    first = Fan(store=tmp_path)()
    again = Fan(store=tmp_path / "other")()
    procs = generated(first)
    assert len(procs) == 3 and all(issubclass(p, LayerProcessor) for p in procs)
    assert procs == generated(again)

    @Fan.register
    class Extra(Layer):
        def __call__(self) -> None:
            self.z = 1

    later = Fan(store=tmp_path / "third")()
    assert len(generated(later)) == 4 and not procs & generated(later)
