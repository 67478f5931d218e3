"""register_hasher and __incgraph_hash__: how user types join the hash scheme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from incgraph.errors import HashingError
from incgraph.hashing import _encoder, _registry, data_version, register_hasher
from incgraph.hashing._scheme import DATA_HEADER


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Each test starts and ends with the registrations that existed before it."""
    saved = dict(_registry._HASHERS)
    yield
    _registry._HASHERS.clear()
    _registry._HASHERS.update(saved)
    _encoder.forget_resolved()


class Point:
    def __init__(self, x: Any, y: Any) -> None:
        self.x, self.y = x, y


class Point3(Point):
    pass


class Vector:
    def __init__(self, x: Any, y: Any) -> None:
        self.x, self.y = x, y


class Reduced:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __incgraph_hash__(self) -> object:
        return ("v1", self.value)


def test_registered_type_hashes_by_reduction() -> None:
    """After registration, instances hash by their reduction; equal reductions, equal hashes."""
    with pytest.raises(HashingError):
        data_version(Point(1, 2))
    register_hasher(Point, lambda p: (p.x, p.y))
    assert data_version(Point(1, 2)) == data_version(Point(1, 2))
    assert data_version(Point(1, 2)) != data_version(Point(2, 1))


def test_reductions_are_tagged_with_the_type() -> None:
    """Two types with equal reductions, or a type and its bare reduction, never collide."""
    register_hasher(Point, lambda p: (p.x, p.y))
    register_hasher(Vector, lambda v: (v.x, v.y))
    assert len({data_version(Point(1, 2)), data_version(Vector(1, 2)), data_version((1, 2))}) == 3


def test_registration_for_a_base_applies_to_subclasses() -> None:
    """A subclass uses its base's hasher but is tagged with its own name."""
    register_hasher(Point, lambda p: (p.x, p.y))
    assert data_version(Point3(1, 2)) == data_version(Point3(1, 2))
    assert data_version(Point3(1, 2)) != data_version(Point(1, 2))


def test_registering_again_replaces() -> None:
    """A second registration for the same type replaces the first, even after use."""
    register_hasher(Point, lambda p: p.x)
    first = data_version(Point(1, 2))
    assert first == data_version(Point(1, 3))
    register_hasher(Point, lambda p: (p.x, p.y))
    assert data_version(Point(1, 2)) != data_version(Point(1, 3))


def test_subclass_registration_wins_over_base() -> None:
    """The most derived registration in the MRO is used."""
    register_hasher(Point, lambda p: p.x)
    register_hasher(Point3, lambda p: (p.x, p.y))
    assert data_version(Point3(1, 2)) != data_version(Point3(1, 3))
    assert data_version(Point(1, 2)) == data_version(Point(1, 3))


def test_protocol_method_is_used_and_registration_overrides_it() -> None:
    """__incgraph_hash__ is honoured; a registered hasher takes precedence."""
    assert data_version(Reduced(1)) == data_version(Reduced(1)) != data_version(Reduced(2))
    register_hasher(Reduced, lambda r: "constant")
    assert data_version(Reduced(1)) == data_version(Reduced(2))


def test_errors_inside_a_reduction_are_located() -> None:
    """An unhashable part of a reduction is reported under the value's path."""
    register_hasher(Point, lambda p: (p.x, p.y))
    with pytest.raises(HashingError) as info:
        data_version({"p": Point(1, object())})
    message = str(info.value)
    assert message.startswith("value['p'] (reduced by the hasher registered for Point)[1]: ")
    assert "builtins.object" in message


def test_a_failing_hasher_becomes_a_hashing_error() -> None:
    """A hasher that raises gives a HashingError chained to the original exception."""

    def broken(p: Point) -> object:
        raise ValueError("nope")

    register_hasher(Point, broken)
    with pytest.raises(
        HashingError, match=r"^value\[0\]: the hasher registered for Point raised ValueError: nope"
    ) as info:
        data_version([Point(1, 2)])
    assert isinstance(info.value.__cause__, ValueError)


def test_a_hasher_returning_its_own_type_is_refused() -> None:
    """Returning another instance of the same type would recurse forever: refused."""
    register_hasher(Point, lambda p: Point(p.x, p.y))
    with pytest.raises(HashingError, match="returned another Point"):
        data_version(Point(1, 2))


def test_cycles_through_reductions_are_detected() -> None:
    """An object whose reduction contains the object itself is a cycle, not a crash."""
    register_hasher(Point, lambda p: (p.x, p.y))
    p = Point(1, None)
    p.y = p
    with pytest.raises(HashingError, match="contains itself"):
        data_version(p)


@pytest.mark.parametrize("builtin", [int, str, dict, list, tuple, float, type(None)])
def test_builtin_encodings_cannot_be_replaced(builtin: type) -> None:
    """Exact built-in types keep their fixed encoding."""
    with pytest.raises(HashingError, match="fixed built-in encoding"):
        register_hasher(builtin, repr)


def test_bad_arguments_are_refused() -> None:
    """A non-class or a non-callable is refused with HashingError."""
    with pytest.raises(HashingError, match="must be a class"):
        register_hasher(Point(1, 2), repr)  # type: ignore[arg-type]
    with pytest.raises(HashingError, match="must be callable"):
        register_hasher(Point, "x")  # type: ignore[arg-type]


def test_registration_can_cover_builtin_subclasses() -> None:
    """A hasher for a dict subclass replaces the generic subclass encoding."""

    class Settings(dict):  # type: ignore[type-arg]
        pass

    before = data_version(Settings(a=1))
    register_hasher(Settings, lambda s: sorted(s))
    assert data_version(Settings(a=1)) != before
    assert data_version(Settings(a=1)) == data_version(Settings(a=2))


class Digest:
    """Reduces to a str (as flow manifests do): data_version takes a shortcut for these."""

    def __init__(self, text: Any) -> None:
        self.text = text

    def __incgraph_hash__(self) -> object:
        if isinstance(self.text, Exception):
            raise self.text
        return self.text


def _full_path(value: object) -> str:
    """data_version through the encoder, never the str shortcut."""
    enc = _encoder.Encoder()
    enc.buf += DATA_HEADER
    _encoder.encode(enc, value)
    return enc.hexdigest()


@pytest.mark.parametrize(
    "text", ["", "abc", "é\udcff", "x" * 70_000], ids=["empty", "ascii", "non-ascii", "streamed"]
)
def test_str_reductions_hash_the_same_on_the_shortcut(text: str) -> None:
    """A type reducing to a str hashes exactly as the encoder would (short, non-ASCII, streamed)."""
    first = data_version(Digest(text))  # resolves the type's handler
    assert data_version(Digest(text)) == first == _full_path(Digest(text))
    assert data_version(Digest(text)) != data_version(text)
    assert data_version(Digest(text + "!")) != first


def test_shortcut_falls_back_for_other_reductions_and_errors() -> None:
    """Non-str reductions, raising reductions and later registrations all take the full path."""
    data_version(Digest("warm"))
    assert data_version(Digest(("a", 1))) == _full_path(Digest(("a", 1)))
    with pytest.raises(HashingError, match=r"Digest.__incgraph_hash__\(\) raised ValueError"):
        data_version(Digest(ValueError("boom")))
    register_hasher(Digest, lambda d: "constant")
    assert data_version(Digest("a")) == data_version(Digest("b"))
