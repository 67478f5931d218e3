"""Accessor: lazy reads of sharded artifacts and ForEach joins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.flow import Accessor, Flow, ForEach, Layer, Parameter
from incgraph.flow.artifacts import inline, ref, shard
from incgraph.store import Store, open_store


class Loads:
    """A loader that records which data versions were loaded."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.calls: list[str] = []

    def __call__(self, dv: str) -> Any:
        self.calls.append(dv)
        return self.values[dv]


def refs(n: int) -> tuple[list[tuple[str, str]], Loads]:
    values = {f"{i:032x}": i * 10 for i in range(n)}
    return [ref(dv) for dv in values], Loads(values)


def test_len_reads_nothing() -> None:
    """len() of an accessor loads no element."""
    entries, load = refs(5)
    acc = Accessor(entries, load, "A.x")
    assert len(acc) == 5
    assert load.calls == []


def test_indexing_loads_one_element() -> None:
    """acc[i] and acc[-i] each load exactly the element asked for."""
    entries, load = refs(5)
    acc = Accessor(entries, load, "A.x")
    assert acc[1] == 10
    assert acc[-1] == 40
    assert load.calls == [f"{1:032x}", f"{4:032x}"]


def test_slices_return_lists_of_just_those_elements() -> None:
    """A slice returns a list and loads only the elements it covers."""
    entries, load = refs(6)
    acc = Accessor(entries, load, "A.x")
    assert acc[1:3] == [10, 20]
    assert acc[::-2] == [50, 30, 10]
    assert acc[10:] == []
    assert len(load.calls) == 5


def test_iteration_is_lazy_and_ordered() -> None:
    """Iterating yields elements in order, loading each only when reached."""
    entries, load = refs(4)
    it = iter(Accessor(entries, load, "A.x"))
    assert next(it) == 0
    assert load.calls == [f"{0:032x}"]
    assert list(it) == [10, 20, 30]


def test_numpy_integers_index() -> None:
    """Any integer-like key (numpy.int64) indexes like an int."""
    np = pytest.importorskip("numpy")
    entries, load = refs(3)
    assert Accessor(entries, load, "A.x")[np.int64(2)] == 20


@pytest.mark.parametrize("key", ["1", 1.0, None, (0, 1), [0]])
def test_other_keys_raise_type_error(key: Any) -> None:
    """Keys that are not integers or slices raise TypeError naming the artifact."""
    entries, load = refs(3)
    with pytest.raises(TypeError, match=r"A\.x: Accessor indices must be integers or slices"):
        Accessor(entries, load, "A.x")[key]


@pytest.mark.parametrize("i", [3, -4, 100])
def test_out_of_range_raises_index_error(i: int) -> None:
    """An index past either end raises IndexError (so iteration protocols work)."""
    entries, load = refs(3)
    with pytest.raises(IndexError, match="out of range for 3"):
        Accessor(entries, load, "A.x")[i]


def test_inline_entries_and_nested_shards() -> None:
    """Inline entries need no load; a shard entry inside an accessor is itself an accessor."""
    acc = Accessor([inline("a"), shard([inline(1), inline(2)])], Loads({}), "A.x")
    assert acc[0] == "a"
    inner = acc[1]
    assert isinstance(inner, Accessor)
    assert list(inner) == [1, 2]


def test_empty_accessor() -> None:
    """An empty accessor has length 0, iterates to nothing and slices to []."""
    acc = Accessor([], Loads({}), "A.x")
    assert len(acc) == 0
    assert list(acc) == []
    assert acc[:] == []


class CountingStore(Store):
    """A store that counts the blobs it loads."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.index, inner.blobs, path=inner.path)
        self.loaded: list[str] = []

    def load(self, record_or_data_version: Any) -> Any:
        self.loaded.append(getattr(record_or_data_version, "data_version", record_or_data_version))
        return super().load(record_or_data_version)


def sharding_flow() -> tuple[type[Flow], type[Layer]]:
    class Shards(Flow): ...

    @Shards.register
    class Big(Layer):
        def __call__(self) -> None:
            self.shard(items=[[i] * 1000 for i in range(20)], one=["only"])

    return Shards, Big


def test_reading_one_element_of_a_stored_shard_loads_only_it(tmp_path: Path) -> None:
    """From the store, len() loads no element and items[3] loads that element alone."""
    Shards, Big = sharding_flow()
    execution_id = Shards(store=tmp_path)().id
    store = CountingStore(open_store(tmp_path))
    view = Shards(store=store).execution(execution_id)[Big]
    assert len(store.loaded) == 2  # the execution manifest and Big's manifest
    assert len(view.items) == 20
    assert len(store.loaded) == 2
    assert view.items[3] == [3] * 1000
    assert len(store.loaded) == 3


def test_one_element_shard_is_an_accessor(tmp_path: Path) -> None:
    """A one-element shard is still an Accessor downstream, not the bare element."""
    Shards, Big = sharding_flow()
    one = Shards(store=tmp_path)()[Big].one
    assert isinstance(one, Accessor)
    assert list(one) == ["only"]


def test_join_is_an_accessor_over_tasks(tmp_path: Path) -> None:
    """A ForEach layer's attribute read downstream is an Accessor with one element per task."""

    class Fan(Flow): ...

    @Fan.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(n=[3, 1, 2])

    @Fan.register(foreach=ForEach(parameters=[Parameter(layer=Src, attribute="n")]))
    class Sq(Layer):
        def __call__(self, src: Src) -> None:
            self.sq = src.n**2

    @Fan.register
    class Read(Layer):
        def __call__(self, sq: Sq) -> None:
            assert isinstance(sq.sq, Accessor)
            self.values = list(sq.sq)
            self.last = sq.sq[-1]

    out = Fan(store=tmp_path)()[Read]
    assert (out.values, out.last) == ([9, 1, 4], 4)


def test_small_scalar_elements_live_in_the_manifest(tmp_path: Path) -> None:
    """A shard of small scalars writes no blob per element, and reading one loads nothing more."""

    class Numbers(Flow): ...

    @Numbers.register
    class Src(Layer):
        def __call__(self) -> None:
            self.shard(n=list(range(50)), big=[[i] * 500 for i in range(3)])

    execution_id = Numbers(store=tmp_path)().id
    store = CountingStore(open_store(tmp_path))
    view = Numbers(store=store).execution(execution_id)[Src]
    before = len(store.loaded)
    assert (view.n[7], view.n[-1], list(view.n)[:3]) == (7, 49, [0, 1, 2])
    assert len(store.loaded) == before  # inline elements: nothing loaded
    assert view.big[1] == [1] * 500
    assert len(store.loaded) == before + 1  # a list element is its own blob
    assert open_store(tmp_path).stats().blobs < 20  # not one blob per number
