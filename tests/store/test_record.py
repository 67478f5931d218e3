"""Record's fast __init__ (slots filled through a _Draft twin) behaves as the dataclass's own."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incgraph.store.protocols import Record, with_size


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """Record's declaration with the __init__ dataclasses generates."""

    key: str
    data_version: str
    node: str
    processor: str
    code_version: str
    init_version: str
    inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    created: float = 0.0
    duration: float = 0.0
    size: int = 0


texts = st.text(max_size=12)
records_args = st.tuples(
    texts,
    texts,
    texts,
    texts,
    texts,
    texts,
    st.dictionaries(texts, texts, max_size=3),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False),
    st.integers(min_value=0),
)


def as_tuple(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


def test_the_declaration_is_the_references() -> None:
    """Record declares the fields, defaults and dataclass parameters the reference does."""
    ours = [(f.name, f.type, f.default, f.default_factory) for f in dataclasses.fields(Record)]
    theirs = [(f.name, f.type, f.default, f.default_factory) for f in dataclasses.fields(Reference)]
    assert ours == theirs
    params = ("init", "repr", "eq", "order", "unsafe_hash", "frozen")
    assert [getattr(Record.__dataclass_params__, p) for p in params] == [  # type: ignore[attr-defined]
        getattr(Reference.__dataclass_params__, p)
        for p in params  # type: ignore[attr-defined]
    ]
    assert Record.__slots__ == Reference.__slots__  # type: ignore[attr-defined]


@given(records_args)
def test_positional_construction_matches_the_dataclass_init(args: tuple[Any, ...]) -> None:
    """Any positional arguments give a Record with the reference's fields and repr."""
    record = Record(*args)
    reference = Reference(*args)
    assert type(record) is Record
    assert as_tuple(record) == as_tuple(reference)
    assert repr(record) == repr(reference).replace("Reference(", "Record(", 1)


def test_keywords_and_defaults_match_the_dataclass_init() -> None:
    """Keywords work, omitted fields take their defaults, and each record gets its own inputs."""
    first = Record(key="k", data_version="d", node="n", processor="p", code_version="c",
                   init_version="i", size=3)  # fmt: skip
    second = Record("k", "d", "n", "p", "c", "i")
    assert as_tuple(first) == as_tuple(Reference("k", "d", "n", "p", "c", "i", size=3))
    assert first.inputs == {} and first.inputs is not second.inputs
    with pytest.raises(TypeError):
        Record("k", "d", "n", "p", "c")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Record("k", "d", "n", "p", "c", "i", nonsense=1)  # type: ignore[call-arg]


def test_a_record_stays_frozen_equal_replaceable_and_picklable() -> None:
    """Assignment raises, equality and replace work, and pickle/copy round-trip."""
    record = Record("k", "d", "n", "p", "c", "i", {"a": "dv"}, 1.0, 2.0, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.size = 4  # type: ignore[misc]
    for frozen in (record, Reference("k", "d", "n", "p", "c", "i")):  # (TypeError: a 3.11 quirk)
        with pytest.raises((AttributeError, TypeError)):
            frozen.other = 1  # type: ignore[union-attr]
    assert record == Record("k", "d", "n", "p", "c", "i", {"a": "dv"}, 1.0, 2.0, 3)
    assert record != dataclasses.replace(record, size=5)
    assert dataclasses.replace(record, size=5).size == 5
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.copy(record) == record and copy.deepcopy(record) == record


def test_a_subclass_is_built_field_by_field() -> None:
    """A subclass of Record that calls Record's __init__ keeps its own type and extra slot."""

    class Tagged(Record):
        __slots__ = ("tag",)

        def __init__(self, *args: Any, tag: str = "t") -> None:
            super().__init__(*args)
            object.__setattr__(self, "tag", tag)

    tagged = Tagged("k", "d", "n", "p", "c", "i", {}, 1.0)
    assert type(tagged) is Tagged and tagged.tag == "t" and tagged.created == 1.0


@given(records_args, st.integers(min_value=0), st.floats(allow_nan=False))
def test_with_size_is_replace_of_size_and_created(
    args: tuple[Any, ...], size: int, created: float
) -> None:
    """with_size(record, size, created) equals dataclasses.replace with those two fields."""
    record = Record(*args)
    sized = with_size(record, size, created)
    assert type(sized) is Record
    assert sized == dataclasses.replace(record, size=size, created=created)
    assert sized.inputs is record.inputs
