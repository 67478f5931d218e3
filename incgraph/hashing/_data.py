"""``data_version``: the content hash of a value.

Design note
-----------
``data_version(value)`` is xxh3-128 of ``DATA_HEADER`` (which carries the
scheme tag) followed by the value's canonical encoding (``_encoder`` and the
type modules). It depends only on the value: not on the process, the run,
``PYTHONHASHSEED``, dict insertion order, set iteration order or memory
layout. It never falls back to pickle bytes, ``id()`` or a ``repr`` that shows
an address; a value it cannot hash raises `HashingError`
with the value's path, for example::

    value['a'][2]: cannot hash an object of type mymod.Foo; call
    incgraph.register_hasher(Foo, fn) or mark the node cache=False

The message starts with ``value`` so that callers can prefix it with the node
and input it belongs to.
"""

from __future__ import annotations

import sys

from xxhash import xxh3_128_hexdigest

from incgraph.errors import HashingError
from incgraph.hashing import _builtins, _numpy, _pandas, _polars, _registry, _stdlib, _torch
from incgraph.hashing._encoder import HANDLERS, Encoder, Unhashable, encode, pack_u64
from incgraph.hashing._scheme import DATA_HEADER

__all__ = ["data_version"]

_ENCODING_MODULES = (_builtins, _stdlib, _registry, _numpy, _pandas, _torch, _polars)


def data_version(value: object) -> str:
    """The content hash of a value: 32 lowercase hex characters.

    Equal values give equal hashes in every process; values of different
    types (``1``, ``1.0``, ``True``, ``"1"``, ``(1,)``, ``[1]``) give different
    ones. A dict is hashed in insertion order, a set whatever its order; numpy
    arrays (by values, whatever their memory layout) and pandas objects
    are hashed by content (dtype, shape, values, index, names). See
    ``docs/hashing.md`` for what is hashed how.

    Parameters
    ----------
    value : object
        Any value built from supported types, or from types registered with
        `register_hasher` or defining ``__incgraph_hash__``.

    Returns
    -------
    str
        xxh3-128 of the value's canonical, scheme-tagged encoding, in hex.

    Raises
    ------
    HashingError
        If some part of ``value`` has no deterministic content hash, or a
        container contains itself. The message names where, e.g.
        ``value['a'][2]: cannot hash an object of type mymod.Foo; ...``.

    Examples
    --------
    >>> data_version({1, 2}) == data_version({2, 1})  # sets are unordered
    True
    >>> data_version({"a": 1, "b": 2}) == data_version({"b": 2, "a": 1})  # dicts are not
    False
    >>> data_version(1) == data_version(1.0)
    False
    >>> len(data_version([1, 2, 3]))
    32
    """
    prefix = getattr(HANDLERS.get(type(value)), "str_prefix", None)
    if prefix is not None:  # an __incgraph_hash__ type seen before (Manifest, Task, ...)
        try:
            reduced = value.__incgraph_hash__()  # type: ignore[attr-defined]
        except Exception:
            reduced = None  # the full path below raises the located error
        if type(reduced) is str:
            # exactly the bytes the full path writes: prefix, then the str's encoding
            data = reduced.encode("utf-8", "surrogatepass")
            return xxh3_128_hexdigest(b"".join((prefix, b"s", pack_u64(len(data)), data)))
    enc = Encoder()
    enc.buf += DATA_HEADER
    try:
        encode(enc, value)
    except Unhashable as exc:
        raise HashingError(exc.located()) from exc.__cause__
    except RecursionError:
        raise HashingError(
            f"value: nested too deeply to hash (Python's recursion limit is "
            f"{sys.getrecursionlimit()}); flatten the structure or mark the node cache=False"
        ) from None
    return enc.hexdigest()
