"""pandas objects hash their values, dtypes, names, index and column order."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from strategies import frames

from incgraph.errors import HashingError
from incgraph.hashing import data_version


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", None], "n": [1, 2, 3]})


@settings(max_examples=40, deadline=None)
@given(frames())
def test_equal_frames_hash_equal(df: pd.DataFrame) -> None:
    """A deep copy of a frame, and a frame rebuilt column by column, hash like the original."""
    rebuilt = pd.DataFrame({name: df[name].copy() for name in df.columns}, index=df.index.copy())
    assert data_version(df.copy(deep=True)) == data_version(df)
    assert data_version(rebuilt) == data_version(df)


def test_column_order_matters() -> None:
    """Reordering columns changes the hash."""
    df = frame()
    assert data_version(df[["s", "x", "n"]]) != data_version(df)
    assert data_version(df[["x", "s", "n"]]) == data_version(df)


def test_index_matters() -> None:
    """A different index, or index name, changes the hash; RangeIndex differs from Index."""
    df = frame()
    variants = [
        df,
        df.set_axis([10, 11, 12]),
        df.set_axis(pd.Index([0, 1, 2])),
        df.rename_axis("row"),
        df.iloc[::-1].reset_index(drop=True).iloc[::-1],
    ]
    assert len({data_version(v) for v in variants}) == len(variants)
    assert data_version(df.set_axis([10, 11, 12])) == data_version(df.set_axis([10, 11, 12]))


def test_dtype_matters() -> None:
    """Equal numbers stored as int64, float64 or nullable Int64 hash differently."""
    values = [1, 2, 3]
    variants = [
        pd.Series(values, dtype=t) for t in ("int64", "float64", "Int64", "int32", "object")
    ]
    assert len({data_version(v) for v in variants}) == len(variants)


def test_names_matter() -> None:
    """Series names and column labels are part of the hash."""
    assert data_version(pd.Series([1], name="a")) != data_version(pd.Series([1], name="b"))
    assert data_version(frame().rename(columns={"x": "y"})) != data_version(frame())


def test_values_matter_in_every_column_kind() -> None:
    """Changing one value in a float, string or int column changes the hash."""
    base = data_version(frame())
    for column, value in (("x", 9.5), ("s", "z"), ("n", 7)):
        changed = frame()
        changed.loc[1, column] = value
        assert data_version(changed) != base


def test_missing_strings_differ_from_empty_and_from_text() -> None:
    """A missing string is neither '' nor 'nan'."""
    variants = [pd.Series(v, dtype="str") for v in (["a", None], ["a", ""], ["a", "nan"])]
    assert len({data_version(v) for v in variants}) == len(variants)


def test_string_storage_dtypes_differ() -> None:
    """'str' (NaN for missing) and 'string' (pd.NA) columns hash differently."""
    assert data_version(pd.Series(["a"], dtype="str")) != data_version(
        pd.Series(["a"], dtype="string")
    )
    assert data_version(pd.Series(["a", None], dtype="string")) == data_version(
        pd.Series(["a", None], dtype="string")
    )


def test_strings_with_nul_and_str_subclasses_stay_exact() -> None:
    """Strings with NULs never collide, and str-enum members are not plain strings."""

    class Kind(str, enum.Enum):
        A = "a"

    assert data_version(pd.Series(["a\x00", "b"], dtype=object)) != data_version(
        pd.Series(["a", "\x00b"], dtype=object)
    )
    assert data_version(pd.Series([Kind.A], dtype="str")) != data_version(
        pd.Series(["a"], dtype="str")
    )


def test_categoricals_hash_categories_codes_and_order() -> None:
    """Categories, their order, the codes and the ordered flag all count."""
    variants = [
        pd.Categorical(["a", "b", "a"]),
        pd.Categorical(["a", "b", "a"], categories=["b", "a"]),
        pd.Categorical(["a", "b", "a"], ordered=True),
        pd.Categorical(["a", "b", "b"]),
        pd.Series(pd.Categorical(["a", "b", "a"])),
        pd.Series(["a", "b", "a"]),
    ]
    assert len({data_version(v) for v in variants}) == len(variants)


def test_datetimes_hash_instant_unit_and_zone() -> None:
    """tz-aware columns hash their zone; naive and aware columns differ."""
    naive = pd.Series(pd.date_range("2024-01-01", periods=3, freq="h"))
    variants = [
        naive,
        naive.dt.tz_localize("UTC"),
        naive.dt.tz_localize("Europe/Paris"),
        naive.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"),
        naive.astype("datetime64[ns]"),
    ]
    assert len({data_version(v) for v in variants}) == len(variants)


def test_datetime_index_freq_counts() -> None:
    """A DatetimeIndex hashes its values and freq."""
    with_freq = pd.date_range("2024-01-01", periods=3, freq="D")
    without = pd.DatetimeIndex(list(with_freq))
    assert without.freq is None
    assert data_version(with_freq) != data_version(without)
    assert data_version(with_freq) == data_version(pd.date_range("2024-01-01", periods=3, freq="D"))


def test_multi_index_hashes_level_values_not_internal_codes() -> None:
    """Equal MultiIndexes hash equal even when their internal levels differ."""
    full = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "v"])
    sliced = full[2:]
    rebuilt = pd.MultiIndex.from_tuples([("b", 1), ("b", 2)], names=["k", "v"])
    assert data_version(sliced) == data_version(rebuilt)
    assert data_version(rebuilt) != data_version(rebuilt.set_names(["k", "w"]))


def test_nullable_columns_hash_mask_and_values() -> None:
    """Nullable ints/booleans hash which entries are missing, not what hides under them."""
    a = pd.array([1, None, 3], dtype="Int64")
    b = pd.array([1, 2, 3], dtype="Int64")
    b[1] = None
    assert data_version(pd.Series(a)) == data_version(pd.Series(b))
    assert data_version(pd.Series(a)) != data_version(pd.Series([1, 0, 3], dtype="Int64"))
    assert data_version(pd.array([True, None], dtype="boolean")) != data_version(
        pd.array([True, False], dtype="boolean")
    )


def test_other_extension_arrays_and_scalars_hash() -> None:
    """Periods, intervals, timestamps, timedeltas, NaT and NA hash by value."""
    values: list[Any] = [
        pd.Series(pd.period_range("2024-01", periods=2, freq="M")),
        pd.Series(pd.interval_range(0, 2)),
        pd.Timestamp("2024-01-01 00:00:00.000000001"),
        pd.Timestamp("2024-01-01"),
        pd.Timedelta(1, "ns"),
        pd.NaT,
        pd.NA,
        pd.Period("2024-01", "M"),
        pd.Interval(0, 1),
        pd.Interval(0, 1, closed="both"),
    ]
    assert len({data_version(v) for v in values}) == len(values)


def test_frame_attrs_count() -> None:
    """DataFrame.attrs is part of the hash."""
    df = frame()
    tagged = frame()
    tagged.attrs["source"] = "s3"
    assert data_version(df) != data_version(tagged)


def test_unhashable_cell_is_named_by_column_and_row() -> None:
    """An object cell nothing can hash is reported as column and row position."""
    df = pd.DataFrame({"a": [1, 2], "b": [object(), 3]}, dtype=object)
    with pytest.raises(
        HashingError,
        match=r"^value\['b'\]\.iloc\[0\]: cannot hash an object of type builtins.object",
    ):
        data_version(df)


def test_subclasses_hash_their_metadata() -> None:
    """A DataFrame subclass hashes its type and the attributes in _metadata."""

    class Tagged(pd.DataFrame):
        _metadata = ["tag"]

        @property
        def _constructor(self) -> type[Tagged]:
            return Tagged

    first, second = Tagged(frame()), Tagged(frame())
    first.tag, second.tag = "a", "b"
    assert data_version(first) != data_version(second)
    assert data_version(first) != data_version(frame())


def test_big_string_frame_round_trips() -> None:
    """A frame with many string rows hashes equal to its copy, and any edit shows."""
    n = 50_000
    df = pd.DataFrame({"x": np.arange(n, dtype=np.float64), "s": [f"row{i}" for i in range(n)]})
    copy = df.copy(deep=True)
    assert data_version(df) == data_version(copy)
    copy.loc[n - 1, "s"] = "row"
    assert data_version(df) != data_version(copy)
