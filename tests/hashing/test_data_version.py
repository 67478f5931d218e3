"""data_version on Python values: canonical, type-tagged, with errors that say where."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import importlib.resources
import pathlib
import uuid
import zoneinfo
from collections import Counter, OrderedDict, defaultdict, namedtuple
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import pytest

from incgraph.errors import HashingError
from incgraph.hashing import data_version


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    ONE = 1


@dataclasses.dataclass
class Point:
    x: Any
    y: Any


@dataclasses.dataclass
class Pair:
    x: Any
    y: Any


class PointTuple(NamedTuple):
    x: int
    y: int


Plain = namedtuple("Plain", "x y")


class Opaque:
    """A class nothing knows how to hash."""


class Config(dict):  # type: ignore[type-arg]
    """A dict subclass with an attribute."""


def test_result_is_32_lowercase_hex() -> None:
    """data_version returns 32 lowercase hex characters."""
    out = data_version([1, "a"])
    assert len(out) == 32 and int(out, 16) >= 0 and out == out.lower()


def test_brief_examples_all_differ() -> None:
    """[1, 2], (1, 2), "12", b"12", {1: 2}, 1.0, 1 and True all hash differently."""
    values = [[1, 2], (1, 2), "12", b"12", {1: 2}, 1.0, 1, True, bytearray(b"12"), {1, 2}]
    assert len({data_version(v) for v in values}) == len(values)


SCALARS = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**200,
    0.0,
    -0.0,
    1.5,
    float("inf"),
    float("-inf"),
    float("nan"),
    1j,
    complex(0.0, -0.0),
    "",
    "a",
    "\x00",
    "\ud800",
    "é",
    b"",
    b"a",
    bytearray(b"a"),
    (),
    [],
    {},
    set(),
    frozenset(),
    range(3),
    range(0, 3, 2),
    slice(1, 2),
    slice(None),
    ...,
    NotImplemented,
]


def test_distinct_scalars_hash_distinctly() -> None:
    """Every entry of a list of pairwise different scalars gets its own hash."""
    assert len({data_version(v) for v in SCALARS}) == len(SCALARS)


def test_negative_zero_differs_and_every_nan_is_equal() -> None:
    """-0.0 and 0.0 differ (1/x differs); NaNs with any payload or sign hash alike."""
    import struct

    other_nan = struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\xff")[0]
    assert data_version(-0.0) != data_version(0.0)
    assert data_version(float("nan")) == data_version(other_nan) == data_version(-float("nan"))
    assert data_version(complex(float("nan"), 1)) == data_version(complex(other_nan, 1))


def test_big_ints_are_exact() -> None:
    """Ints beyond 64 bits hash by their exact value."""
    assert data_version(2**100) != data_version(2**100 + 1)
    assert data_version(-(2**100)) != data_version(2**100)
    assert data_version(2**100) == data_version(int("1" + "0" * 0, 2) << 100)


def test_long_bytes_and_strings_stream_the_same_as_short_ones() -> None:
    """Large payloads (streamed to the hasher) are content-hashed like small ones."""
    big = b"x" * 300_000
    assert data_version(big) == data_version(bytes(bytearray(big)))
    assert data_version(big) != data_version(big + b"x")
    assert data_version("y" * 300_000) != data_version("y" * 300_001)
    assert data_version([big, 1]) != data_version([big, 2])


def test_dict_order_matters_and_set_order_does_not() -> None:
    """A dict is hashed in insertion order (code iterating it sees that order); a set is not."""
    assert data_version({"a": 1, "b": [2]}) != data_version({"b": [2], "a": 1})
    assert data_version({"a": 1, "b": [2]}) == data_version(dict([("a", 1), ("b", [2])]))
    assert data_version({3, "x", (1,)}) == data_version({(1,), "x", 3})
    assert data_version(frozenset("abc")) == data_version(frozenset("cba"))
    assert data_version({"a": 1}) != data_version({"a": 2})
    assert data_version({"a": 1}) != data_version({"b": 1})


def test_defaultdict_order_matters_like_a_dict() -> None:
    """A defaultdict is a dict: its insertion order counts as well as its factory."""
    a, b = defaultdict(list, x=1, y=2), defaultdict(list, y=2, x=1)
    assert data_version(a) != data_version(b)
    assert data_version(a) == data_version(defaultdict(list, x=1, y=2))


def test_dicts_with_several_nan_keys_hash_deterministically() -> None:
    """Keys that encode alike (distinct NaN objects) are hashed in their insertion order."""
    n1, n2 = float("nan"), float("nan")
    assert data_version({n1: 1, n2: 2}) == data_version({n2: 1, n1: 2})
    assert data_version({n1: 1, n2: 2}) != data_version({n2: 2, n1: 1})


def test_ordered_dict_keeps_order_and_defaultdict_keeps_factory() -> None:
    """OrderedDict order matters (as in its ==); defaultdict's factory is part of it."""
    a, b = OrderedDict(x=1, y=2), OrderedDict(y=2, x=1)
    assert data_version(a) != data_version(b)
    assert data_version(a) != data_version(dict(a))
    assert data_version(defaultdict(list, x=1)) != data_version(defaultdict(set, x=1))
    assert data_version(defaultdict(list, x=1)) != data_version({"x": 1})


def test_memoryview_hashes_format_shape_and_bytes() -> None:
    """A memoryview is its format, shape and bytes in C order, contiguous or not."""
    base = memoryview(bytes(range(12)))
    assert data_version(base.cast("B", (3, 4))) != data_version(base.cast("B", (4, 3)))
    assert data_version(base.cast("i")) != data_version(base)
    assert data_version(base[::2]) == data_version(memoryview(bytes(range(0, 12, 2))))


def test_enums_hash_type_name_and_value() -> None:
    """Enum members differ from their value and from same-named members of other enums."""
    hashes = {data_version(v) for v in (Color.RED, Color.BLUE, Shade.RED, 1, Level.ONE)}
    assert len(hashes) == 5


def test_records_hash_type_and_fields() -> None:
    """Dataclasses and named tuples hash their type and fields, distinct from tuples."""
    values = [Point(1, 2), Pair(1, 2), Point(2, 1), PointTuple(1, 2), Plain(1, 2), (1, 2)]
    assert len({data_version(v) for v in values}) == len(values)
    assert data_version(Point(1, [2])) == data_version(Point(1, [2]))


def test_builtin_subclass_hashes_type_value_and_attributes() -> None:
    """A dict subclass is not a dict; its instance attributes count too."""
    a, b = Config(x=1), Config(x=1)
    assert data_version(a) == data_version(b) != data_version({"x": 1})
    b.note = "changed"  # type: ignore[attr-defined]
    assert data_version(a) != data_version(b)
    assert data_version(Counter("aab")) != data_version({"a": 2, "b": 1})


def test_paths_hash_type_and_text() -> None:
    """Paths hash their class and text, never the file contents."""
    assert data_version(pathlib.Path("/a/b")) == data_version(pathlib.Path("/a") / "b")
    assert data_version(pathlib.Path("/a/b")) != data_version(pathlib.PurePosixPath("/a/b"))
    assert data_version(pathlib.Path("/a/b")) != data_version("/a/b")


def test_times_hash_fields_and_zone() -> None:
    """Datetimes, dates, times and timedeltas hash their fields; zones and fold count."""
    utc = dt.timezone.utc
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    moment = dt.datetime(2024, 1, 1, 12, tzinfo=utc)
    values = [
        dt.datetime(2024, 1, 1, 12),
        moment,
        moment.astimezone(paris),
        moment.replace(tzinfo=dt.timezone(dt.timedelta(0), "Z")),
        dt.datetime(2024, 1, 1, 12, fold=1),
        dt.date(2024, 1, 1),
        dt.time(12),
        dt.time(12, tzinfo=utc),
        dt.timedelta(hours=12),
        dt.timedelta(days=1),
    ]
    assert len({data_version(v) for v in values}) == len(values)
    assert data_version(dt.datetime(2024, 1, 1, tzinfo=paris)) == data_version(
        dt.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    )


def test_numbers_and_ids_hash_exactly() -> None:
    """Decimal keeps its exponent; Fraction and UUID hash their value."""
    assert data_version(Decimal("1.0")) != data_version(Decimal("1.00"))
    assert data_version(Decimal("1.0")) == data_version(Decimal("1.0"))
    assert data_version(Fraction(1, 3)) != data_version(Fraction(2, 3))
    assert data_version(Fraction(1, 2)) != data_version(0.5)
    u = uuid.UUID(int=7)
    assert data_version(u) == data_version(uuid.UUID(int=7)) != data_version(uuid.UUID(int=8))


def test_library_callables_hash_by_name() -> None:
    """Built-in functions, methods and partials hash by name and arguments."""
    values = [len, sum, str.upper, str.lower, "a".upper, "b".upper, int, float]
    assert len({data_version(v) for v in values}) == len(values)
    assert data_version(functools.partial(int, base=2)) != data_version(
        functools.partial(int, base=3)
    )
    assert data_version(functools.partial(int, base=2)) == data_version(
        functools.partial(int, base=2)
    )


def test_user_functions_hash_by_code() -> None:
    """Two user lambdas with the same name but different bodies hash differently."""
    first = lambda x: x + 1  # noqa: E731
    second = lambda x: x + 2  # noqa: E731
    assert data_version(first) != data_version(second)
    assert data_version(first) == data_version(first)


def test_unknown_type_names_type_path_and_fix() -> None:
    """The error names the path, the type and both ways out."""
    with pytest.raises(HashingError) as info:
        data_version({"a": [1, 2, Opaque()]})
    message = str(info.value)
    assert message.startswith("value['a'][2]: cannot hash an object of type ")
    assert f"{Opaque.__module__}.{Opaque.__qualname__}" in message
    assert "register_hasher(Opaque, fn)" in message and "cache=False" in message


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (Point(1, Opaque()), "value.y:"),
        ({Opaque(): 1}, "value<key Opaque"),
        ({Opaque()}, "value{"),
        ((1, [Opaque()]), "value[1][0]:"),
        (OrderedDict(a=Opaque()), "value['a']:"),
        (slice(Opaque()), "value.stop:"),
        (Config(x=1, y=[Opaque()]), "value['y'][0]:"),
        (functools.partial(len, Opaque()), "value.args[0]:"),
    ],
)
def test_error_paths_name_fields_keys_and_elements(value: object, path: str) -> None:
    """Fields, keys, set elements and nested positions appear in the error path."""
    with pytest.raises(HashingError) as info:
        data_version(value)
    assert str(info.value).startswith(path.replace("value<key Opaque", "value<key <"))
    assert "Opaque" in str(info.value)


def test_instance_attributes_of_subclasses_are_named() -> None:
    """An unhashable attribute of a built-in subclass is named with a dot."""
    config = Config()
    config.hook = Opaque()  # type: ignore[attr-defined]
    with pytest.raises(HashingError, match=r"^value\.hook: cannot hash"):
        data_version(config)


def test_self_referencing_containers_raise() -> None:
    """A list or dict that contains itself raises HashingError instead of recursing."""
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(HashingError, match=r"^value\[1\]: a list that contains itself"):
        data_version(loop)
    table: dict[str, Any] = {}
    table["me"] = [table]
    with pytest.raises(HashingError, match="contains itself"):
        data_version(table)
    point = Point(1, None)
    point.y = point
    with pytest.raises(HashingError, match="contains itself"):
        data_version(point)


def test_shared_references_are_not_cycles() -> None:
    """The same list twice in a structure is fine and equals two equal copies."""
    inner = [1, 2]
    assert data_version([inner, inner]) == data_version([[1, 2], [1, 2]])


def test_deep_nesting_hashes_and_extreme_nesting_raises() -> None:
    """Hundreds of levels hash; nesting beyond the recursion limit is a HashingError."""
    deep: Any = 0
    for _ in range(400):
        deep = [deep]
    assert data_version(deep) == data_version(deep)
    extreme: Any = 0
    for _ in range(100_000):
        extreme = (extreme,)
    with pytest.raises(HashingError, match="nested too deeply"):
        data_version(extreme)


def test_zoneinfo_without_key_is_refused() -> None:
    """A ZoneInfo loaded from a file has no key to name it by, so it is refused."""
    utc = importlib.resources.files("tzdata") / "zoneinfo" / "UTC"  # tzdata: a test dependency
    with utc.open("rb") as handle:
        keyless = zoneinfo.ZoneInfo.from_file(handle)
    with pytest.raises(HashingError, match=r"^value\['tz'\]: cannot hash a ZoneInfo"):
        data_version({"tz": keyless})
