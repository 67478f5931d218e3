"""Type checks of process() signatures: values against annotations, and producers against consumers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NewType, Optional, TypeVar, Union

import pytest

from incgraph.core.signature import is_compatible, process_signature, value_matches

UserId = NewType("UserId", int)
T = TypeVar("T")


@pytest.mark.parametrize(
    ("value", "ann", "ok"),
    [
        (1, int, True),
        ("1", int, False),
        (1, float, True),  # PEP 484 numeric tower
        (True, float, False),
        (1.5, complex, True),
        (None, Optional[int], True),
        (None, int, False),
        (3, int | str, True),
        (3.5, int | str, False),
        ([1, 2], list[int], True),
        ([1, "x"], list[int], False),
        ((1, "a"), tuple[int, str], True),
        ((1, 2), tuple[int, str], False),
        ((1, 2, 3), tuple[int, ...], True),
        ({"a": 1.0}, dict[str, float], True),
        ({"a": "b"}, dict[str, float], False),
        ({1, 2}, set[int], True),
        ("abc", Sequence[str], True),
        ([1], Sequence[int], True),
        (5, Any, True),
        (5, T, True),
        ("r", Literal["r", "w"], True),
        ("x", Literal["r", "w"], False),
        (len, Callable[[str], int], True),
        (5, Callable[[], int], False),
        (UserId(3), UserId, True),
        (3, Annotated[int, "meta"], True),
        ("3", Annotated[int, "meta"], False),
        ({"a": [1, 2]}, dict[str, list[int]], True),
        ({"a": [1, "2"]}, dict[str, list[int]], False),
    ],
)
def test_value_matches(value: object, ann: object, ok: bool) -> None:
    """value_matches accepts exactly the values that fit the annotation."""
    assert value_matches(value, ann) is ok


def test_long_container_check_is_bounded_but_sees_both_ends() -> None:
    """A huge list is checked on a sample that includes its first and last elements."""
    big = [1] * 100_000
    assert value_matches(big, list[int])
    assert not value_matches([*big, "tail"], list[int])
    assert not value_matches(["head", *big], list[int])


@pytest.mark.parametrize(
    ("produced", "expected", "ok"),
    [
        (int, int, True),
        (int, float, True),
        (str, int, False),
        (bool, int, True),
        (list[int], list[int], True),
        (list[int], list[str], False),
        (list[int], Sequence[int], True),
        (list, list[int], True),
        (int, Optional[int], True),
        (Optional[int], int, False),
        (Union[int, str], Union[int, str, bytes], True),
        (Any, int, True),
        (int, Any, True),
        (dict[str, float], dict[str, float], True),
        (dict[str, float], dict[str, str], False),
        (None, int, False),
    ],
)
def test_is_compatible(produced: object, expected: object, ok: bool) -> None:
    """A producer's return annotation is rejected only when it clearly cannot fit the parameter."""
    assert is_compatible(produced, expected) is ok


def test_process_signature_reads_required_defaults_and_var_keyword() -> None:
    """Required parameters, defaults, **kwargs and the return annotation are read from process()."""

    class P:
        def process(self, a: int, b: str = "x", **rest: Any) -> list[int]:
            return [a]

    sig = process_signature(P)
    assert sig.params == {"a": int, "b": str}
    assert sig.required == frozenset({"a"})
    assert sig.var_keyword and sig.accepts("anything")
    assert sig.returns == list[int]


def test_process_signature_resolves_forward_references() -> None:
    """String annotations are resolved through the module globals."""

    class P:
        def process(self, a: int) -> list[int]:
            return [a]

    sig = process_signature(P)
    assert sig.params["a"] is int
    assert sig.returns == list[int]
