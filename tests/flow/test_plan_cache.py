"""A flow's plan is resolved once and kept until the next register on that class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import FlowDefinitionError
from incgraph.flow import Flow, Layer
from incgraph.flow import flow as flow_module


@pytest.fixture
def resolves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The flow names resolve() is called for, in order."""
    calls: list[str] = []
    real = flow_module.resolve

    def counting(name: str, registrations: Any) -> Any:
        calls.append(name)
        return real(name, registrations)

    monkeypatch.setattr(flow_module, "resolve", counting)
    return calls


def test_calls_of_a_flow_resolve_it_once(tmp_path: Path, resolves: list[str]) -> None:
    """Three runs and a plan() call resolve the flow's layers once."""

    class Once(Flow): ...

    @Once.register
    class Make(Layer):
        def __call__(self) -> None:
            self.value = 1

    with Once(store=tmp_path / "s") as flow:
        for _ in range(3):
            assert flow()[Make].value == 1
    assert Once.plan() is Once.plan()
    assert resolves == ["Once"]


def test_registering_a_layer_replaces_the_plan(resolves: list[str]) -> None:
    """A layer registered after the plan was resolved is in the next plan."""

    class Growing(Flow): ...

    @Growing.register
    class First(Layer):
        def __call__(self) -> None: ...

    assert [lp.name for lp in Growing.plan().layers] == ["First"]

    @Growing.register
    class Second(Layer):
        def __call__(self, first: First) -> None: ...

    assert [lp.name for lp in Growing.plan().layers] == ["First", "Second"]
    assert resolves == ["Growing", "Growing"]


def test_a_plan_that_cannot_be_resolved_yet_is_not_kept() -> None:
    """A forward reference to a layer not registered yet fails now and resolves once it is."""

    class Later(Flow): ...

    @Later.register
    class Reads(Layer):
        def __call__(self, source: "Source") -> None: ...  # noqa: UP037

    with pytest.raises(FlowDefinitionError, match="Source"):
        Later.plan()

    @Later.register
    class Source(Layer):
        def __call__(self) -> None: ...

    assert [lp.name for lp in Later.plan().layers] == ["Source", "Reads"]


def test_a_subclass_keeps_its_own_plan() -> None:
    """A flow subclass starts from its parent's layers; registering on it leaves the parent's plan."""

    class Parent(Flow): ...

    @Parent.register
    class Base(Layer):
        def __call__(self) -> None: ...

    parent_plan = Parent.plan()

    class Child(Parent): ...

    @Child.register
    class Extra(Layer):
        def __call__(self, base: Base) -> None: ...

    assert [lp.name for lp in Child.plan().layers] == ["Base", "Extra"]
    assert Parent.plan() is parent_plan and [lp.name for lp in parent_plan.layers] == ["Base"]
