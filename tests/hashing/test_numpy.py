"""numpy arrays hash values, dtype and shape; never layout; never raw bytes alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import arrays

from incgraph.errors import HashingError
from incgraph.hashing import data_version


@settings(max_examples=60)
@given(arrays())
def test_layout_never_matters(a: Any) -> None:
    """C order, Fortran order and a strided view of equal values hash equal."""
    expected = data_version(a.copy(order="C"))
    assert data_version(np.array(a, order="F")) == expected
    assert data_version(a.copy()) == expected
    if a.ndim:
        doubled = np.repeat(a, 2, axis=0)[::2]
        assert data_version(doubled) == expected


def test_same_bytes_with_another_shape_or_dtype_differ() -> None:
    """Reshaping or reinterpreting the same bytes changes the hash."""
    a = np.arange(12, dtype=np.int64)
    variants = [
        a,
        a.reshape(3, 4),
        a.reshape(4, 3),
        a.reshape(12, 1),
        a.view(np.float64),
        a.view(np.uint64),
    ]
    assert len({data_version(v) for v in variants}) == len(variants)


def test_values_matter() -> None:
    """Changing one element changes the hash."""
    a = np.zeros((100, 100))
    b = a.copy()
    b[57, 3] = 1e-300
    assert data_version(a) != data_version(b)


def test_fortran_ordered_array_equals_its_c_ordered_copy() -> None:
    """A large Fortran-ordered array (hashed in blocks) equals its C copy."""
    c = np.arange(3_000_000, dtype=np.float64).reshape(1000, 3000)
    f = np.asfortranarray(c)
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    assert data_version(f) == data_version(c)
    assert data_version(f.T) != data_version(c)


def test_large_strided_views_equal_their_copies() -> None:
    """Non-contiguous views bigger than one block, in 1-D and with huge rows, equal copies."""
    a = np.arange(4_000_000, dtype=np.float64)
    assert data_version(a[::3]) == data_version(a[::3].copy())
    wide = np.arange(2 * 1_200_000, dtype=np.float64).reshape(2, 1_200_000)
    assert data_version(wide[:, ::2]) == data_version(np.ascontiguousarray(wide[:, ::2]))


def test_non_contiguous_slice_equals_its_copy() -> None:
    """A sliced view with steps equals the same values copied."""
    a = np.arange(60).reshape(6, 10)
    view = a[1::2, ::3]
    assert not view.flags.c_contiguous
    assert data_version(view) == data_version(view.copy())


def test_byte_order_is_part_of_the_hash() -> None:
    """Big- and little-endian arrays with equal values hash differently (dtype.str differs)."""
    little = np.arange(5, dtype="<i4")
    big = little.astype(">i4")
    assert np.array_equal(little, big)
    assert data_version(little) != data_version(big)
    assert data_version(big) == data_version(big.copy())


def test_zero_d_empty_and_scalars_are_distinct() -> None:
    """0-d arrays, 1-element arrays, empty arrays and numpy scalars all differ."""
    values = [
        np.array(1.0),
        np.array([1.0]),
        np.float64(1.0),
        np.float32(1.0),
        1.0,
        np.zeros((0,)),
        np.zeros((0, 3)),
        np.zeros((3, 0)),
    ]
    assert len({data_version(v) for v in values}) == len(values)
    assert data_version(np.float64(2.5)) == data_version(np.float64(2.5))


def test_dtype_details_matter() -> None:
    """datetime units, string widths and bool vs uint8 give different hashes."""
    values = [
        np.array([1], dtype="datetime64[s]"),
        np.array([1], dtype="datetime64[ms]"),
        np.array(["a"], dtype="<U1"),
        np.array(["a"], dtype="<U2"),
        np.array([True]),
        np.array([1], dtype=np.uint8),
        np.dtype("f8"),
        np.dtype("f4"),
    ]
    assert len({data_version(v) for v in values}) == len(values)


def test_structured_arrays_ignore_padding_bytes() -> None:
    """Aligned structured arrays with equal fields but different padding hash equal."""
    dtype = np.dtype([("a", "u1"), ("b", "<f8")], align=True)
    assert dtype.itemsize == 16
    raw = np.zeros(2 * 16, dtype=np.uint8)
    noisy = raw.copy()
    noisy[1:8] = 0xAB
    noisy[17:24] = 0xCD
    first, second = raw.view(dtype), noisy.view(dtype)
    assert data_version(first) == data_version(second)
    second["b"][1] = 2.0
    assert data_version(first) != data_version(second)
    packed = np.zeros(2, dtype=[("a", "u1"), ("b", "<f8")])
    assert data_version(packed) != data_version(first)


def test_object_arrays_hash_elements() -> None:
    """Object arrays hash element by element: strings, numbers and None by value and type."""
    a = np.array(["x", 1, None, 2.5, "y"], dtype=object)
    assert data_version(a) == data_version(np.array(["x", 1, None, 2.5, "y"], dtype=object))
    assert data_version(a) != data_version(np.array(["x", 1.0, None, 2.5, "y"], dtype=object))
    strings = np.array(["ab", "c"], dtype=object)
    assert data_version(strings) != data_version(np.array(["a", "bc"], dtype=object))
    assert data_version(strings) != data_version(np.array(["ab", "c"]))


def test_object_arrays_with_nul_characters_stay_injective() -> None:
    """Strings containing NUL use the length-prefixed form and still never collide."""
    first = np.array(["a\x00", "b"], dtype=object)
    second = np.array(["a", "\x00b"], dtype=object)
    assert data_version(first) != data_version(second)
    assert data_version(first) == data_version(first.copy())


def test_string_subclasses_in_object_arrays_keep_their_type() -> None:
    """A str subclass element is hashed with its type, not as a plain string."""

    class Tag(str):
        pass

    assert data_version(np.array([Tag("a")], dtype=object)) != data_version(
        np.array(["a"], dtype=object)
    )


def test_object_array_errors_name_the_index() -> None:
    """An unhashable element is reported with its n-dimensional index."""
    a = np.empty((2, 3), dtype=object)
    a[:] = 0
    a[1, 2] = object()
    with pytest.raises(
        HashingError, match=r"^value\[1, 2\]: cannot hash an object of type builtins.object"
    ):
        data_version(a)


def test_string_dtype_arrays_hash_their_strings() -> None:
    """numpy 2 StringDType arrays hash by value and differ from object arrays."""
    dtypes = pytest.importorskip("numpy.dtypes")
    a = np.array(["a", "bc"], dtype=dtypes.StringDType())
    assert data_version(a) == data_version(np.array(["a", "bc"], dtype=dtypes.StringDType()))
    assert data_version(a) != data_version(np.array(["ab", "c"], dtype=dtypes.StringDType()))
    assert data_version(a) != data_version(np.array(["a", "bc"], dtype=object))


def test_masked_arrays_hash_mask_and_data() -> None:
    """A masked array's mask is part of its hash."""
    data = np.arange(4.0)
    assert data_version(np.ma.array(data, mask=[0, 1, 0, 0])) != data_version(
        np.ma.array(data, mask=[0, 0, 1, 0])
    )
    assert data_version(np.ma.array(data)) != data_version(data)


def test_memmap_hashes_like_an_array(tmp_path: Any) -> None:
    """A memory-mapped array hashes like the in-memory array of the same values."""
    mm = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=(3, 4))
    mm[:] = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert data_version(mm) == data_version(np.arange(12, dtype=np.float32).reshape(3, 4))
    del mm


def test_ufuncs_hash_by_name() -> None:
    """numpy ufuncs hash by name."""
    assert data_version(np.add) != data_version(np.multiply)
    assert data_version(np.add) == data_version(np.add)
