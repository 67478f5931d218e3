"""polars frames and series hash their names, dtypes and values; LazyFrames are refused; both store and load."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest

from incgraph import ProcessGraph, Processor
from incgraph.errors import HashingError
from incgraph.hashing import data_version


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "x": [1.0, 2.0, None],
            "s": ["a", None, "c"],
            "n": [1, 2, 3],
            "d": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
            "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
            "l": [[1, 2], [], None],
        }
    )


def test_equal_frames_hash_equal_whatever_their_chunks() -> None:
    """A clone, and a frame stacked from two unmerged chunks, hash like the original."""
    df = frame()
    assert data_version(df.clone()) == data_version(df)
    stacked = pl.concat([df[:1], df[1:]], rechunk=False)
    assert stacked.n_chunks() > 1
    assert data_version(stacked) == data_version(df)


def test_names_order_dtypes_and_values_matter() -> None:
    """Column order, a column name, a dtype and a single value each change the hash."""
    df = frame()
    base = data_version(df)
    assert data_version(df.select(reversed(df.columns))) != base
    assert data_version(df.rename({"x": "y"})) != base
    assert data_version(df.with_columns(pl.col("n").cast(pl.Int32))) != base
    assert data_version(df.with_columns(pl.Series("n", [1, 2, 4]))) != base
    assert data_version(df["n"]) != data_version(df["n"].alias("m"))


def test_null_differs_from_nan_zero_and_empty_string() -> None:
    """A null is not a NaN, a zero or an empty string."""
    assert data_version(pl.Series("a", [1.0, None])) != data_version(
        pl.Series("a", [1.0, math.nan])
    )
    assert data_version(pl.Series("a", [1, None])) != data_version(pl.Series("a", [1, 0]))
    assert data_version(pl.Series("a", ["x", None])) != data_version(pl.Series("a", ["x", ""]))
    assert data_version(pl.Series("a", [True, None])) != data_version(pl.Series("a", [True, False]))


def test_time_zones_and_units_are_part_of_the_hash() -> None:
    """The same instants in another time zone or unit hash differently."""
    naive = pl.Series("t", [dt.datetime(2024, 1, 1, 12)])
    assert data_version(naive.dt.replace_time_zone("UTC")) != data_version(naive)
    assert data_version(naive.dt.cast_time_unit("ms")) != data_version(naive)


def test_a_series_is_not_its_frame() -> None:
    """A one-column frame and its series hash differently; so do a Series and a list."""
    s = pl.Series("a", [1, 2])
    assert data_version(s.to_frame()) != data_version(s)
    assert data_version(s) != data_version([1, 2])


def test_lazy_frames_are_refused_with_the_fix() -> None:
    """A LazyFrame raises a HashingError saying to collect() it, with its place in the value."""
    with pytest.raises(
        HashingError, match=r"value\['q'\]: cannot hash a polars LazyFrame.*collect\(\)"
    ):
        data_version({"q": frame().lazy()})


def test_unhashable_cells_name_the_column() -> None:
    """A column of arbitrary objects fails naming the column and the row."""
    df = pl.DataFrame({"o": pl.Series([object()], dtype=pl.Object)})
    with pytest.raises(HashingError, match=r"value\['o'\]\[0\]: cannot hash an object"):
        data_version(df)


class Summarize(Processor):
    def process(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.group_by("c", maintain_order=True).agg(pl.col("n").sum())


def test_frames_are_stored_and_loaded_with_their_type(tmp_path: Path) -> None:
    """A polars result comes back from the store as an equal polars DataFrame, and reruns hit."""
    for _ in range(2):
        graph = ProcessGraph(store=tmp_path / "store")
        node = graph.add_node(1, Summarize, {"df": frame()})
        out = graph.run_upto(node)
        assert isinstance(out, pl.DataFrame)
        assert out.equals(
            pl.DataFrame({"c": ["u", "v"], "n": [4, 2]}).with_columns(
                pl.col("c").cast(pl.Categorical)
            )
        )
    assert graph.last_run.hits == [node]


LOAD_WITHOUT_POLARS = """
import sys
sys.modules["polars"] = None
from incgraph import open_store
from incgraph.errors import ExtraNotInstalledError
store = open_store(sys.argv[1])
try:
    store.load(sys.argv[2])
except ExtraNotInstalledError as exc:
    print(exc)
store.close()
"""


def test_loading_without_polars_says_what_to_install_and_keeps_the_result(
    tmp_path: Path,
) -> None:
    """Loading a stored frame where polars is missing names the pip line and drops nothing."""
    import subprocess
    import sys

    graph = ProcessGraph(store=tmp_path / "store")
    node = graph.add_node(1, Summarize, {"df": frame()})
    graph.run_upto(node)
    version = graph.store.lookup(graph.last_run.statuses[node].key).data_version  # type: ignore[union-attr]
    graph.store.close()
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_POLARS, str(tmp_path / "store"), version],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "loading it needs polars: pip install 'incgraph[polars]'" in done.stdout
    again = ProcessGraph(store=tmp_path / "store")
    node = again.add_node(1, Summarize, {"df": frame()})
    again.run_upto(node)
    assert again.last_run.hits == [node]


@pytest.mark.parametrize("dtype", [pl.Int128, pl.UInt128], ids=str)
def test_128_bit_integer_columns_hash_by_value(dtype: pl.DataType) -> None:
    """128-bit integer columns, which numpy cannot hold, hash value by value with their nulls."""
    big = 2**100
    column = pl.Series("n", [big, None, 3], dtype=dtype)
    assert data_version(column) == data_version(column.clone())
    assert data_version(column) != data_version(pl.Series("n", [big + 1, None, 3], dtype=dtype))
    assert data_version(column) != data_version(pl.Series("n", [big, 0, 3], dtype=dtype))
