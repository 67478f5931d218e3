"""Errors a flow raises while running name the layers and attributes involved."""

from __future__ import annotations

from pathlib import Path

import pytest

from incgraph.errors import ArtifactNotFoundError, FlowDefinitionError, FlowError
from incgraph.flow import Flow, ForEach, Layer, Parameter


def test_reading_an_attribute_never_set(tmp_path: Path) -> None:
    """ArtifactNotFoundError names the reading layer, the upstream layer and the attribute."""

    class F(Flow): ...

    @F.register
    class Up(Layer):
        def __call__(self) -> None:
            self.real = 1

    @F.register
    class Down(Layer):
        def __call__(self, up: Up) -> None:
            self.v = up.typo

    with pytest.raises(ArtifactNotFoundError) as info:
        F(store=tmp_path)()
    message = str(info.value)
    assert "layer Down read 'typo' from layer Up" in message
    assert "it set: real" in message
    assert isinstance(info.value, AttributeError)


def test_join_reports_the_task_that_lacks_the_attribute(tmp_path: Path) -> None:
    """Reading a joined attribute that one task did not set names that task."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[0, 1])

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x")]))
    class Maybe(Layer):
        def __call__(self, src: Src) -> None:
            if src.x:
                self.out = src.x

    @F.register
    class Read(Layer):
        def __call__(self, maybe: Maybe) -> None:
            self.all = list(maybe.out)

    with pytest.raises(ArtifactNotFoundError, match=r"layer Read read 'out' from layer Maybe\[0\]"):
        F(store=tmp_path)()


def test_foreach_over_an_attribute_never_set(tmp_path: Path) -> None:
    """A ForEach Parameter on an attribute the upstream did not set fails before any task runs."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1])

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="y")]))
    class Fan(Layer):
        def __call__(self, src: Src) -> None:
            raise AssertionError("must not run")

    with pytest.raises(ArtifactNotFoundError, match=r"Fan fans out over Src\.y.*it set: x"):
        F(store=tmp_path)()


def run_layer(store: Path, call: object) -> None:
    """Run a one-layer flow whose __call__ is ``call``."""

    class One(Flow): ...

    One.register(type("L", (Layer,), {"__call__": call}))
    One(store=store)()


def sets_index(self: Layer) -> None:
    self.index = 3  # type: ignore[misc]


def shards_an_int(self: Layer) -> None:
    self.shard(foo=5)  # type: ignore[arg-type]


def sets_and_shards(self: Layer) -> None:
    self.foo = 1
    self.shard(foo=[1])


def test_reserved_names_and_bad_shards(tmp_path: Path) -> None:
    """Setting self.index, sharding a non-iterable, or setting and sharding one name fail."""
    with pytest.raises(FlowError, match="'index' is reserved"):
        run_layer(tmp_path, sets_index)
    with pytest.raises(FlowDefinitionError, match=r"shard\(foo=...\) needs an iterable, got int"):
        run_layer(tmp_path, shards_an_int)
    with pytest.raises(FlowDefinitionError, match=r"both set self\.foo and sharded 'foo'"):
        run_layer(tmp_path, sets_and_shards)


def test_upstream_views_are_read_only(tmp_path: Path) -> None:
    """A layer cannot set attributes on the upstream layer it reads."""

    class F(Flow): ...

    @F.register
    class Up(Layer):
        def __call__(self) -> None:
            self.a = 1

    @F.register
    class Down(Layer):
        def __call__(self, up: Up) -> None:
            up.a = 2

    with pytest.raises(
        FlowError, match=r"layer Down tried to set Up\.a; upstream layers are read-only"
    ):
        F(store=tmp_path)()


def test_private_attributes_are_not_artifacts(tmp_path: Path) -> None:
    """Attributes starting with _ are scratch space: not stored, not readable downstream."""

    class F(Flow): ...

    @F.register
    class Up(Layer):
        def __call__(self) -> None:
            self._scratch = object()
            self.kept = 1

    view = F(store=tmp_path)()[Up]
    assert view.kept == 1
    with pytest.raises(AttributeError):
        view._scratch  # noqa: B018


def test_params_outside_a_run(tmp_path: Path) -> None:
    """self.params and self.shard() outside a running layer raise FlowError."""

    class L(Layer):
        def __call__(self) -> None: ...

    with pytest.raises(FlowError, match="only available while the flow runs"):
        L().params  # noqa: B018
    with pytest.raises(FlowError, match="can only be called while the layer runs"):
        L().shard(x=[1])


def test_an_unstorable_artifact_names_the_layer_the_attribute_and_a_fix(tmp_path: Path) -> None:
    """An artifact that cannot be pickled fails in its layer, naming it; the `_name` fix works."""
    import threading

    from incgraph.errors import StoreError

    class F(Flow): ...

    @F.register
    class Model(Layer):
        def __call__(self) -> None:
            self.weights = [1.0, 2.0]
            self.lock = threading.Lock()

    with pytest.raises(StoreError) as info:
        F(store=tmp_path)()
    message = str(info.value)
    assert message.startswith("layer Model: artifact self.lock (a lock) cannot be stored")
    assert "name it self._lock" in message

    class G(Flow): ...

    @G.register
    class Fixed(Layer):
        def __call__(self) -> None:
            self.weights = [1.0, 2.0]
            self._lock = threading.Lock()

    assert G(store=tmp_path / "fixed")()[Fixed].weights == [1.0, 2.0]


@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_an_unstorable_artifact_of_a_foreach_task_is_an_unstorable_result_error(
    tmp_path: Path, executor: str
) -> None:
    """A task's unpicklable artifact raises UnstorableResultError on every executor, naming the
    task and the part; the other tasks' artifacts are stored."""
    import threading

    from incgraph.errors import UnstorableResultError
    from incgraph.store import open_store

    class F(Flow): ...

    @F.register
    class Shard(Layer):
        def __call__(self) -> None:
            self.shard(foo=[1, 2, 3])

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Shard, attribute="foo")]))
    class Task(Layer):
        def __call__(self, shard: Shard) -> None:
            self.out = threading.Lock() if shard.foo == 2 else shard.foo * 10

    with pytest.raises(UnstorableResultError, match=r"layer Task\[1\]: artifact self.out") as info:
        F(store=tmp_path, executor=executor)()
    assert info.value.part == "self.out: _thread.lock"
    with open_store(tmp_path, read_only=True) as store:
        assert {record.node for record in store.index.records()} >= {"F/Shard", "F/Task[0]"}
