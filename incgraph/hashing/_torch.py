"""torch tensors, dtypes and devices.

Design note
-----------
torch is never imported here: the rule looks it up in ``sys.modules``, and a
tensor can only exist once torch is imported.

A tensor is its tag, its dtype (``torch.bfloat16``), its device (``cpu``,
``cuda:0``), its ``requires_grad`` flag, its shape, then its *values in C
order* as raw bytes. So a tensor and its copy on another device, in another
dtype or with another shape hash differently, and layout (strides, a
transpose, a slice) never matters, values do:

* a contiguous CPU tensor is fed to xxh3 in place, through a byte view of its
  memory (no copy; any dtype, ``bfloat16`` and ``float8`` included, since the
  bytes are read without going through numpy);
* a non-contiguous tensor is made contiguous first (one copy), and a tensor on
  another device is copied to the CPU (the device stays in the key);
* lazily negated or conjugated views are resolved first, so ``x.conj()``
  hashes as the values it holds.

Raw bits are hashed as they are (``-0.0`` differs from ``0.0``, NaN payloads
count), like numpy arrays. Sparse, quantized and ``meta`` tensors have no
plain buffer of values and raise, naming the fix; so do nested (ragged)
tensors, whose components hash as a list (``tensor.unbind()``). A tensor subclass
(``torch.nn.Parameter``) adds its type name and its attributes.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from incgraph.hashing._builtins import encode_attributes, instance_state
from incgraph.hashing._encoder import Encoder, Handler, Unhashable, add_rule, pack_u64, type_label

__all__ = ["encode_tensor"]


def _plain_cpu(tensor: Any) -> Any:
    """``tensor`` as a contiguous, resolved CPU tensor (itself when it already is one)."""
    torch = sys.modules["torch"]
    if tensor.layout != torch.strided:
        raise Unhashable(
            f"cannot hash a {tensor.layout} tensor; convert it with .to_dense() "
            "(or mark the node cache=False)"
        )
    if tensor.is_quantized:
        raise Unhashable(
            "cannot hash a quantized tensor; hash .int_repr() with its scale and zero point "
            "through incgraph.register_hasher, or .dequantize() it"
        )
    if tensor.device.type == "meta":
        raise Unhashable("cannot hash a tensor on the 'meta' device: it holds no values")
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    if tensor.is_neg():
        tensor = tensor.resolve_neg()
    return tensor.contiguous()


def encode_tensor(enc: Encoder, tensor: Any) -> None:
    """Write a dense tensor: dtype, device, grad flag, shape, then its bytes in C order."""
    if tensor.is_nested:
        raise Unhashable(
            "cannot hash a nested tensor: it has no single shape or buffer of values; "
            "hash its components as a list (tensor.unbind()) or mark the node cache=False"
        )
    buf = enc.buf
    buf += b"tT"
    enc.write_text(str(tensor.dtype))
    enc.write_text(str(tensor.device))
    buf += b"T" if tensor.requires_grad else b"F"
    buf += pack_u64(tensor.dim())
    for n in tensor.shape:
        buf += pack_u64(n)
    nbytes = tensor.numel() * tensor.element_size()
    buf += pack_u64(nbytes)
    if tensor.layout != sys.modules["torch"].strided or nbytes:
        values = _plain_cpu(tensor.detach())
        # a byte view of the tensor's memory: no copy, whatever the dtype
        view = (ctypes.c_char * nbytes).from_address(values.data_ptr())
        enc.write_blob(memoryview(view).cast("B"), nbytes)


def _tensor_subclass(cls: type) -> Handler:
    label = type_label(cls)

    def handler(enc: Encoder, value: Any) -> None:
        enc.buf += b"S"
        enc.write_text(label)
        encode_tensor(enc, value)
        encode_attributes(enc, instance_state(value, []))

    return handler


def _dtype(enc: Encoder, value: Any) -> None:
    enc.buf += b"td"
    enc.write_text(str(value))


def _device(enc: Encoder, value: Any) -> None:
    enc.buf += b"tv"
    enc.write_text(str(value))


def _torch_rule(cls: type) -> Handler | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if cls is torch.Tensor:
        return encode_tensor
    if issubclass(cls, torch.Tensor):
        return _tensor_subclass(cls)
    if cls is torch.dtype:
        return _dtype
    if cls is torch.device:
        return _device
    return None


add_rule(35, _torch_rule)
