"""The hash scheme: its version tag, and how strings are combined into keys.

Design note
-----------
Every hash incgraph writes is xxh3-128 over a byte string that starts with a
*domain*: ``data_version`` streams start with ``incgraph/<SCHEME>/data``, and
`combine` strings with ``incgraph/<SCHEME>/combine`` followed by the
caller's domain (``"NodeKey"``, ``"CodeVersion"``, ...). Two hashes from
different domains therefore never compare equal by construction, and bumping
`SCHEME` changes every hash at once (old store entries simply stop
being hits).

`combine` encodes its parts as netstrings (``<length>:<text>``, the
length in code points) and the whole text as UTF-8 (``surrogatepass``, so
lone surrogates are still injective). Netstrings are self-delimiting, so
``combine("d", "ab", "c") != combine("d", "a", "bc")``.

`node_key` is the cache key and sits on the hot path of every cache
hit: it builds one string and calls xxh3 once, with no per-part function
calls beyond the f-strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from xxhash import xxh3_128_hexdigest

from incgraph.errors import HashingError

__all__ = [
    "DATA_HEADER",
    "SCHEME",
    "combine",
    "combiner",
    "node_key",
    "node_key_function",
    "node_key_maker",
]

SCHEME: Final = "ig2"
"""Version tag of the hash scheme, mixed into every hash."""

DATA_HEADER: Final = f"incgraph/{SCHEME}/data\x00".encode()
"""First bytes of every ``data_version`` stream."""

_COMBINE_PREFIX: Final = f"incgraph/{SCHEME}/combine\x00"
_NODE_KEY_PREFIX: Final = _COMBINE_PREFIX + "7:NodeKey"


def combine(domain: str, *parts: str) -> str:
    """Hash a domain name and a sequence of strings into 32 hex characters.

    Parameters
    ----------
    domain : str
        What the hash is for (``"NodeKey"``, ``"CodeVersion"``, ...); equal
        parts under different domains give different hashes.
    *parts : str
        The strings to combine, in order (order matters).

    Returns
    -------
    str
        32 lowercase hex characters.

    Examples
    --------
    >>> len(combine("Example", "a", "b"))
    32
    >>> combine("Example", "ab", "c") == combine("Example", "a", "bc")
    False
    >>> combine("Example", "a") == combine("Other", "a")
    False
    """
    try:
        "".join((domain, *parts))
    except TypeError:
        bad = [type(p).__name__ for p in (domain, *parts) if not isinstance(p, str)]
        raise HashingError(
            f"combine: domain and parts must be str, got {', '.join(bad)}; "
            "hash other values with data_version first"
        ) from None
    text = f"{_COMBINE_PREFIX}{len(domain)}:{domain}" + "".join([f"{len(p)}:{p}" for p in parts])
    return xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def combiner(domain: str) -> Callable[[Iterable[str]], str]:
    """`combine` for one domain, with its head built once: ``parts -> hash``.

    For hashing many part lists under one domain (a flow's task and manifest
    contents). Unlike `combine` it does not check the parts' types on
    each call: pass strings.

    Examples
    --------
    >>> task_hash = combiner("Example")
    >>> task_hash(["a", "b"]) == combine("Example", "a", "b")
    True
    """
    if type(domain) is not str:
        raise HashingError(f"combiner: domain must be str, got {type(domain).__name__}")
    head = f"{_COMBINE_PREFIX}{len(domain)}:{domain}"

    def combined(parts: Iterable[str]) -> str:
        text = head + "".join([f"{len(p)}:{p}" for p in parts])
        return xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))

    return combined


def node_key(code_version: str, init_version: str, inputs: Mapping[str, str]) -> str:
    """The cache key of a node: its code version, init version and input versions.

    Equal to ``combine("NodeKey", code_version, init_version, *sorted(pairs))``
    where ``pairs`` are the strings ``f"{name}={data_version}"``; input order
    does not matter.

    Parameters
    ----------
    code_version : str
        The processor's `code_version`.
    init_version : str
        The data version of the node's init kwargs.
    inputs : Mapping[str, str]
        Input name -> data version of the value bound to it.

    Examples
    --------
    >>> a = node_key("c" * 32, "i" * 32, {"x": "1" * 32, "y": "2" * 32})
    >>> a == node_key("c" * 32, "i" * 32, {"y": "2" * 32, "x": "1" * 32})
    True
    >>> a == combine("NodeKey", "c" * 32, "i" * 32, "x=" + "1" * 32, "y=" + "2" * 32)
    True
    """
    pairs = [f"{name}={dv}" for name, dv in inputs.items()]
    pairs.sort()
    if type(code_version) is not str or type(init_version) is not str:
        raise HashingError(
            "node_key: code_version and init_version must be str, got "
            f"{type(code_version).__name__} and {type(init_version).__name__}"
        )
    text = _key_head(code_version, init_version) + "".join([f"{len(p)}:{p}" for p in pairs])
    return xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def _key_head(code_version: str, init_version: str) -> str:
    """The part of a node key's text before its input pairs."""
    return f"{_NODE_KEY_PREFIX}{len(code_version)}:{code_version}{len(init_version)}:{init_version}"


def node_key_maker(code_version: str, init_version: str) -> Callable[[Mapping[str, str]], str]:
    """`node_key` with the code and init versions bound: ``inputs -> key``, built fast.

    The text head the versions make is built once, not once per key: for keying
    the many nodes of a fan-out or the items of a batch.

    Examples
    --------
    >>> key = node_key_maker("c" * 32, "i" * 32)
    >>> inputs = {"x": "1" * 32, "y": "2" * 32}
    >>> key(inputs) == node_key("c" * 32, "i" * 32, inputs)
    True
    """
    if type(code_version) is not str or type(init_version) is not str:
        raise HashingError(
            "node_key_maker: code_version and init_version must be str, got "
            f"{type(code_version).__name__} and {type(init_version).__name__}"
        )
    head = _key_head(code_version, init_version)

    def key(inputs: Mapping[str, str]) -> str:
        pairs = [f"{name}={dv}" for name, dv in inputs.items()]
        pairs.sort()
        text = head + "".join([f"{len(p)}:{p}" for p in pairs])
        return xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))

    return key


def node_key_function(code_version: str, init_version: str, name: str) -> Callable[[str], str]:
    """`node_key` for nodes whose only input is ``name``: ``dv -> key``, built fast.

    ``node_key(code_version, init_version, {name: dv})`` hashes a text whose
    head (everything but the input's netstring) is the same for every ``dv``;
    the returned function builds that head once and hashes ``head + input``
    per call, about a fifth of ``node_key``'s cost. For keying a stream of
    items through one task.

    Examples
    --------
    >>> key = node_key_function("c" * 32, "i" * 32, "item")
    >>> key("1" * 32) == node_key("c" * 32, "i" * 32, {"item": "1" * 32})
    True
    """
    if type(code_version) is not str or type(init_version) is not str or type(name) is not str:
        raise HashingError(
            "node_key_function: code_version, init_version and name must be str, got "
            f"{type(code_version).__name__}, {type(init_version).__name__} and "
            f"{type(name).__name__}; pass code_version(...) and data_version(...) strings and "
            "the input's name"
        )
    head = _key_head(code_version, init_version)
    prefix = f"{name}="

    def key(data_version: str) -> str:
        pair = prefix + data_version
        return xxh3_128_hexdigest(f"{head}{len(pair)}:{pair}".encode("utf-8", "surrogatepass"))

    return key
