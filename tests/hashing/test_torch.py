"""torch tensors hash their dtype, device, shape and values, in place on the CPU; they store and load as tensors."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from incgraph import ProcessGraph, Processor
from incgraph.errors import HashingError
from incgraph.hashing import data_version

DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.int64,
    torch.uint8,
    torch.bool,
    torch.complex64,
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_hashes_by_value(dtype: torch.dtype) -> None:
    """Equal tensors of any dtype hash equal; a changed element or another dtype changes the hash."""
    a = torch.arange(12).reshape(3, 4).to(dtype)
    assert data_version(a) == data_version(a.clone())
    b = a.clone()
    b[2, 3] = 0 if dtype is not torch.bool else not bool(b[2, 3])
    assert data_version(b) != data_version(a)
    other = (
        torch.complex128
        if dtype.is_complex
        else torch.float32
        if dtype is not torch.float32
        else torch.float64
    )
    assert data_version(a.to(other)) != data_version(a)


def test_layout_does_not_matter_but_shape_does() -> None:
    """A transpose made contiguous, a strided slice and its copy hash alike; a reshape differs."""
    a = torch.randn(6, 8, dtype=torch.bfloat16)
    assert data_version(a.T) == data_version(a.T.contiguous())
    assert data_version(a[::2, 1::3]) == data_version(a[::2, 1::3].clone())
    assert data_version(a.reshape(8, 6)) != data_version(a)
    assert data_version(a.reshape(-1)) != data_version(a)


def test_grad_flag_device_and_subclass_are_part_of_the_key() -> None:
    """requires_grad, the device and a Parameter wrapper each change the hash."""
    a = torch.ones(3)
    assert data_version(a.clone().requires_grad_(True)) != data_version(a)
    assert data_version(torch.nn.Parameter(a.clone())) != data_version(a.clone().requires_grad_())
    assert data_version(a.to("meta").new_empty(0)) != data_version(torch.ones(0))
    assert data_version(torch.device("cpu")) != data_version(torch.device("meta"))
    assert data_version(torch.float32) != data_version(torch.float64)


def test_cpu_tensors_are_hashed_without_a_copy() -> None:
    """A contiguous CPU tensor of any dtype is read in place: the bytes hashed are its own memory."""
    from incgraph.hashing._torch import _plain_cpu

    for dtype in DTYPES:
        a = torch.ones(1000, dtype=dtype)
        assert _plain_cpu(a.detach()).data_ptr() == a.data_ptr()
    strided = torch.ones(10, 10)[:, ::2]
    assert _plain_cpu(strided).data_ptr() != strided.data_ptr()  # a copy only when needed


def test_views_with_lazy_bits_hash_as_their_values() -> None:
    """A lazily conjugated or negated view hashes like the materialized tensor."""
    x = torch.randn(4, dtype=torch.complex64)
    assert data_version(x.conj()) == data_version(x.conj().resolve_conj())
    assert data_version(x.conj()) != data_version(x)
    assert data_version(-x) == data_version(torch.neg(x).clone())


def test_tensors_without_values_raise_naming_the_fix() -> None:
    """Sparse, quantized and meta tensors raise a HashingError that says what to do."""
    with pytest.raises(HashingError, match=r"sparse_coo tensor; convert it with \.to_dense\(\)"):
        data_version({"w": torch.ones(2).to_sparse()})
    with warnings.catch_warnings():  # torch deprecates quantized tensors
        warnings.simplefilter("ignore")
        quantized = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)
    with pytest.raises(HashingError, match="quantized tensor"):
        data_version(quantized)
    with pytest.raises(HashingError, match="'meta' device"):
        data_version(torch.ones(2, device="meta"))


def test_a_hash_is_the_same_in_another_process() -> None:
    """The hash of a bfloat16 tensor does not depend on the process."""
    code = (
        "import torch; from incgraph.hashing import data_version;"
        "print(data_version(torch.arange(10, dtype=torch.bfloat16) / 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == data_version(torch.arange(10, dtype=torch.bfloat16) / 3)


class Scale(Processor):
    def process(self, x: torch.Tensor, factor: float) -> torch.Tensor:
        return x * factor


def test_tensors_are_stored_and_loaded_with_their_type(tmp_path: Path) -> None:
    """A tensor result comes back from the store as a tensor of the same dtype and values."""
    x = torch.arange(100_000, dtype=torch.bfloat16)
    for _ in range(2):
        graph = ProcessGraph(store=tmp_path / "store")
        node = graph.add_node(1, Scale, {"x": x, "factor": 2.0})
        out = graph.run_upto(node)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.bfloat16
        assert torch.equal(out, x * 2.0)
    assert graph.last_run.hits == [node]
    assert np.array_equal(out.float().numpy(), (x * 2.0).float().numpy())


def test_nested_tensors_raise_naming_the_fix() -> None:
    """A nested (ragged) tensor of either layout raises a HashingError saying to unbind it."""
    with warnings.catch_warnings():  # torch warns that strided nested tensors are a prototype
        warnings.simplefilter("ignore")
        strided = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    jagged = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=torch.jagged)
    for nested in (strided, jagged):
        with pytest.raises(HashingError, match=r"nested tensor.*tensor\.unbind\(\)"):
            data_version({"batch": nested})


def test_state_dicts_hash_by_their_values() -> None:
    """Two modules initialised alike give equal state_dict hashes; a changed weight changes it."""
    torch.manual_seed(0)
    first = torch.nn.Linear(3, 2).state_dict()
    torch.manual_seed(0)
    second = torch.nn.Linear(3, 2).state_dict()
    assert data_version(first) == data_version(second)
    second["weight"][0, 0] += 1
    assert data_version(first) != data_version(second)
