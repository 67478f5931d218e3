"""Registering layers and resolving a flow: annotations, forward references, early errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from incgraph.errors import FlowDefinitionError
from incgraph.flow import Flow, ForEach, Layer, Parameter


class OtherFlow(Flow): ...


@OtherFlow.register
class Elsewhere(Layer):
    def __call__(self) -> None: ...


def test_forward_reference_and_free_parameter_names(tmp_path: Path) -> None:
    """A string annotation names a layer registered later; the parameter name is free."""

    class Fwd(Flow): ...

    @Fwd.register
    class Second(Layer):
        def __call__(self, whatever_name: "First") -> None:  # noqa: UP037
            self.out = whatever_name.value + 1

    @Fwd.register
    class First(Layer):
        def __call__(self) -> None:
            self.value = 41

    plan = Fwd.plan()
    assert [lp.name for lp in plan.layers] == ["First", "Second"]
    assert plan["Second"].call_args == (("whatever_name", "First"),)
    assert Fwd(store=tmp_path)()[Second].out == 42


def test_several_upstream_layers() -> None:
    """A layer may read several upstream layers; order follows the dependencies."""

    class Multi(Flow): ...

    @Multi.register
    class C(Layer):
        def __call__(self, a: A, b: B) -> None: ...

    @Multi.register
    class B(Layer):
        def __call__(self, a: A) -> None: ...

    @Multi.register
    class A(Layer):
        def __call__(self) -> None: ...

    assert [lp.name for lp in Multi.plan().layers] == ["A", "B", "C"]


def test_unresolvable_annotation_fails_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An annotation that names nothing raises FlowDefinitionError and no layer runs."""

    class Broken(Flow): ...

    @Broken.register
    class Ok(Layer):
        def __call__(self) -> None:
            print("ran")

    @Broken.register
    class Bad(Layer):
        def __call__(self, ok: "Missing") -> None: ...  # noqa: F821, UP037

    with pytest.raises(FlowDefinitionError, match=r"layer Bad .*parameter 'ok'.*'Missing'"):
        Broken(store=tmp_path)()
    assert capsys.readouterr().out == ""


def test_annotation_must_be_a_registered_layer() -> None:
    """Annotating with a Layer of another flow, or a non-layer, is reported with the names."""

    class Mine(Flow): ...

    @Mine.register
    class Reads(Layer):
        def __call__(self, x: Elsewhere) -> None: ...

    with pytest.raises(FlowDefinitionError, match="Elsewhere, which is not a layer registered"):
        Mine.plan()

    class Typed(Flow): ...

    @Typed.register
    class Num(Layer):
        def __call__(self, x: int) -> None: ...

    with pytest.raises(FlowDefinitionError, match="annotated int"):
        Typed.plan()


def test_missing_annotation_is_reported() -> None:
    """A __call__ parameter without an annotation says to annotate it."""

    class NoAnn(Flow): ...

    @NoAnn.register
    class L(Layer):
        def __call__(self, up) -> None: ...  # type: ignore[no-untyped-def]

    with pytest.raises(FlowDefinitionError, match="parameter 'up' has no annotation"):
        NoAnn.plan()


def test_cycle_is_reported_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Layers that read each other raise FlowDefinitionError naming the cycle; nothing runs."""

    class Loop(Flow): ...

    @Loop.register
    class Start(Layer):
        def __call__(self) -> None:
            print("ran")

    @Loop.register
    class A(Layer):
        def __call__(self, b: "B", s: Start) -> None: ...  # noqa: UP037

    @Loop.register
    class B(Layer):
        def __call__(self, a: A) -> None: ...

    with pytest.raises(FlowDefinitionError, match=r"cycle: (A -> B -> A|B -> A -> B)"):
        Loop(store=tmp_path)()
    assert capsys.readouterr().out == ""


def test_self_reference_is_a_cycle() -> None:
    """A layer annotated with itself is a cycle."""

    class Selfish(Flow): ...

    @Selfish.register
    class Me(Layer):
        def __call__(self, me: "Me") -> None: ...  # noqa: UP037

    with pytest.raises(FlowDefinitionError, match="cycle: Me -> Me"):
        Selfish.plan()


def test_registration_errors() -> None:
    """register refuses Flow itself, non-layers, bad foreach values and name clashes."""

    class L(Layer):
        def __call__(self) -> None: ...

    with pytest.raises(FlowDefinitionError, match="subclass of Flow"):
        Flow.register(L)

    class F(Flow): ...

    with pytest.raises(FlowDefinitionError, match="takes a Layer subclass"):
        F.register(int)
    with pytest.raises(FlowDefinitionError, match="takes a ForEach"):
        F.register(foreach=[Parameter(layer=L, attribute="x")])(L)  # type: ignore[arg-type]
    F.register(L)
    F.register(L)  # registering the same class again is harmless

    def other() -> type[Layer]:
        class L(Layer):
            def __call__(self) -> None: ...

        return L

    with pytest.raises(FlowDefinitionError, match="already has a layer named L"):
        F.register(other())


def test_layer_without_call() -> None:
    """A layer class with no __call__ is reported."""

    class F(Flow): ...

    @F.register
    class Empty(Layer):
        pass

    with pytest.raises(FlowDefinitionError, match="no __call__ method"):
        F.plan()


def test_flows_have_separate_registries() -> None:
    """Layers registered on one Flow subclass do not appear on another."""

    class One(Flow): ...

    class Two(Flow): ...

    @One.register
    class OnlyOne(Layer):
        def __call__(self) -> None: ...

    assert [lp.name for lp in One.plan().layers] == ["OnlyOne"]
    assert Two.plan().layers == ()


def test_subclass_inherits_layers_without_changing_parent() -> None:
    """A subclass of a flow starts with its parent's layers and adds its own."""

    class Base(Flow): ...

    @Base.register
    class Common(Layer):
        def __call__(self) -> None: ...

    class Extended(Base): ...

    @Extended.register
    class Extra(Layer):
        def __call__(self, c: Common) -> None: ...

    assert [lp.name for lp in Extended.plan().layers] == ["Common", "Extra"]
    assert [lp.name for lp in Base.plan().layers] == ["Common"]


def test_parameter_and_foreach_validation() -> None:
    """Bad Parameter/ForEach arguments fail when they are written."""
    with pytest.raises(FlowDefinitionError, match="at least one Parameter"):
        ForEach(parameters=[])
    with pytest.raises(FlowDefinitionError, match="attribute must be the name"):
        Parameter(layer="A", attribute="not valid")
    with pytest.raises(FlowDefinitionError, match="index must be an int"):
        Parameter(layer="A", attribute="x", index="0")  # type: ignore[arg-type]
    with pytest.raises(FlowDefinitionError, match="twice"):
        ForEach(
            parameters=[Parameter(layer="A", attribute="x"), Parameter(layer="A", attribute="x")]
        )
    with pytest.raises(FlowDefinitionError, match="takes Parameter objects"):
        ForEach(parameters=["x"])  # type: ignore[list-item]


def test_parameter_on_unregistered_layer() -> None:
    """A ForEach Parameter naming a layer not on the flow is reported."""

    class F(Flow): ...

    @F.register(foreach=ForEach(parameters=[Parameter(layer="Nowhere", attribute="x")]))
    class L(Layer):
        def __call__(self) -> None: ...

    with pytest.raises(FlowDefinitionError, match=r"Nowhere.*not registered on F"):
        F.plan()


def test_task_index_only_on_foreach_layers() -> None:
    """Parameter(index=k) with k != 0 needs the upstream to be a ForEach layer."""

    class F(Flow): ...

    @F.register
    class Src(Layer):
        def __call__(self) -> None: ...

    @F.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="x", index=2)]))
    class L(Layer):
        def __call__(self, s: Src) -> None: ...

    with pytest.raises(FlowDefinitionError, match="Src is not a ForEach layer"):
        F.plan()


def test_parameter_layer_is_a_dependency(tmp_path: Path) -> None:
    """A layer only named in a Parameter (not annotated) still runs first."""

    class F(Flow): ...

    @F.register(foreach=ForEach(parameters=[Parameter(layer="Src", attribute="x")]))
    class Fan(Layer):
        def __call__(self) -> None:
            self.seen = self.index

    @F.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(x=[1, 2, 3])

    assert [lp.name for lp in F.plan().layers] == ["Src", "Fan"]
    assert list(F(store=tmp_path)()[Fan].seen) == [0, 1, 2]
