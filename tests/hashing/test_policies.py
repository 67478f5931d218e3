"""One policy per ambiguity: dict order, memory layout, dataclass attributes, and opting out."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np

from incgraph import ProcessGraph, Processor, hashing
from incgraph.flow.processors import FlowContext
from incgraph.hashing import data_version


@dataclasses.dataclass
class Config:
    lr: float
    note: str = dataclasses.field(default="", compare=False)

    @functools.cached_property
    def doubled(self) -> float:
        return 2 * self.lr


@dataclasses.dataclass
class Derived:
    n: int

    def __post_init__(self) -> None:
        self.squares = [i * i for i in range(self.n)]


@dataclasses.dataclass(frozen=True)
class Opted:
    lr: float


hashing.register_hasher(Opted, lambda c: c.lr)


def test_dict_order_is_part_of_the_data_version() -> None:
    """Two dicts with the same items in another order are different inputs."""
    assert data_version({"a": 1, "b": 2}) != data_version({"b": 2, "a": 1})


def test_sorting_a_dict_opts_out_of_its_order() -> None:
    """Sorting the items first makes equal dicts hash equal whatever their order."""

    def canonical(d: dict[str, int]) -> dict[str, int]:
        return dict(sorted(d.items()))

    assert data_version(canonical({"a": 1, "b": 2})) == data_version(canonical({"b": 2, "a": 1}))


def test_set_order_is_not_part_of_the_data_version() -> None:
    """Equal sets hash equal, whatever order they were built (and iterate) in."""
    assert data_version({"x", "y", "z"}) == data_version({"z", "y", "x"})
    assert data_version(set(range(100))) == data_version(set(reversed(range(100))))


def test_node_init_kwargs_order_does_not_change_the_key(tmp_path: Path) -> None:
    """Init kwargs are keyword arguments: the order they are given in does not matter."""
    g = ProcessGraph(store=tmp_path)
    a = g.add_node("a", Scaled, {"x": 1}, node_init_kwargs={"k": 2, "m": 3})
    b = g.add_node("b", Scaled, {"x": 1}, node_init_kwargs={"m": 3, "k": 2})
    assert a.init_version() == b.init_version()
    c = g.add_node("c", Scaled, {"x": 1}, node_init_kwargs={"k": 3, "m": 2})
    assert a.init_version() != c.init_version()


def test_flow_parameters_are_hashed_in_the_callers_order() -> None:
    """flow(**params) reaches layers as a mapping they may iterate: like a dict, order counts."""
    one = FlowContext({"lr": 0.1, "epochs": 3}, None)
    other = FlowContext({"epochs": 3, "lr": 0.1}, None)
    assert data_version(one) != data_version(other)
    assert data_version(one) == data_version(FlowContext({"lr": 0.1, "epochs": 3}, None))


class Scaled(Processor):
    def __init__(self, k: int, m: int) -> None:
        self.k, self.m = k, m

    def process(self, x: int) -> int:
        return x * self.k + self.m


def test_fortran_and_c_order_arrays_hash_equal() -> None:
    """An array is hashed by its values: memory layout (C, Fortran, strided) does not count."""
    a = np.arange(12.0).reshape(3, 4)
    assert data_version(a) == data_version(np.asfortranarray(a))
    assert data_version(a[:, ::2]) == data_version(np.ascontiguousarray(a[:, ::2]))
    assert data_version(a) != data_version(a.T)  # the values' shape and order do count


class Layout(Processor):
    def process(self, a: np.ndarray) -> bool:
        return bool(a.flags.f_contiguous and not a.flags.c_contiguous)


class LayoutAware(Processor):
    def process(self, a: np.ndarray, order: str) -> bool:
        return order == "F"


def test_layout_dependent_code_is_a_hit_unless_the_layout_is_an_input(tmp_path: Path) -> None:
    """Arrays equal by value share a key; passing the layout as an input separates them."""
    a = np.arange(6.0).reshape(2, 3)
    g = ProcessGraph(store=tmp_path)
    c = g.add_constant_node("a", "a", value=a)
    node = g.add_node("layout", Layout, {"a": c})
    assert g.run_upto(node) is False
    c.set_value(np.asfortranarray(a))
    assert g.run_upto(node) is False  # equal values: a hit, as documented
    assert g.last_run.hits == [node]
    order = g.add_constant_node("order", "order", value="C")
    aware = g.add_node("aware", LayoutAware, {"a": c, "order": order})
    assert g.run_upto(aware) is False
    order.set_value("F")
    assert g.run_upto(aware) is True


def test_dataclass_attributes_beyond_its_fields_count() -> None:
    """An attribute set on a dataclass instance outside its fields changes its data version."""
    plain, tagged = Config(0.1), Config(0.1)
    tagged.extra = "seen by process"  # type: ignore[attr-defined]
    assert data_version(plain) != data_version(tagged)


def test_dataclass_fields_hidden_from_eq_count() -> None:
    """A compare=False field is still part of what the instance holds, so it counts."""
    assert Config(0.1, note="a") == Config(0.1, note="b")
    assert data_version(Config(0.1, note="a")) != data_version(Config(0.1, note="b"))


def test_dataclass_cached_property_values_do_not_count() -> None:
    """Reading a cached_property (stored in __dict__) does not change the data version."""
    cfg = Config(0.1)
    before = data_version(cfg)
    assert cfg.doubled == 0.2
    assert data_version(cfg) == before


def test_dataclass_attributes_set_in_post_init_are_deterministic() -> None:
    """Attributes derived in __post_init__ count, and equal fields give equal hashes."""
    assert data_version(Derived(3)) == data_version(Derived(3))
    assert data_version(Derived(3)) != data_version(Derived(4))


def test_a_registered_hasher_opts_a_dataclass_out_of_its_attributes() -> None:
    """register_hasher decides what counts: here only ``lr``."""
    one, other = Opted(0.1), Opted(0.1)
    object.__setattr__(other, "cache", [1, 2])
    assert data_version(one) == data_version(other)


def test_instance_attribute_order_does_not_count() -> None:
    """Attributes are hashed by name: the order they were first set in does not count."""
    one: Any = Derived(2)
    other: Any = Derived(2)
    one.a, one.b = 1, 2
    other.b, other.a = 2, 1
    assert data_version(one) == data_version(other)
