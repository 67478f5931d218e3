"""The canonical encoder: how a value becomes the byte stream ``data_version`` hashes.

Design note
-----------
Every value is written as a short type tag followed by a payload whose size is
fixed by the tag (``i`` + 8 bytes for an int64) or written just before it (an
8-byte little-endian length or count). The stream is therefore prefix-free:
two values can only produce the same stream if they have the same encoding,
and a container's encoding determines where each child ends. The tag table
lives in ``docs/hashing.md``.

State. An `Encoder` owns a small staging ``bytearray`` and, once a
large buffer (a numpy array, a long bytes object) arrives, an ``xxh3_128``
hasher: small writes are batched in the staging buffer, large ones are fed to
the hasher in place. Feeding xxh3 piece by piece gives exactly the digest of
the concatenation, so streaming is an implementation detail, not part of the
scheme.

Dispatch. ``HANDLERS`` maps an exact type to the function that encodes it.
Built-in value types are entered at import; any other type is resolved once
by walking ``RULES`` (user registrations first, then ``__incgraph_hash__``,
numpy/pandas, enums, dataclasses, ...) and the answer is cached in the same
table, so a lookup is one dict access. Registering a hasher drops the cached
answers.

Errors. A handler that meets something it cannot hash raises
`Unhashable`; each container on the way out prepends where the child
sat (``[2]``, ``['a']``, ``.field``), and ``data_version`` turns the result
into a `HashingError` naming the full path.
Containers that can hold themselves register their ``id`` in
``Encoder.active`` while they are being written, so a cycle is reported
instead of recursing forever.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from xxhash import xxh3_128, xxh3_128_digest, xxh3_128_hexdigest

from incgraph.errors import HashingError

__all__ = [
    "HANDLERS",
    "RULES",
    "Encoder",
    "Handler",
    "Rule",
    "Unhashable",
    "encode",
    "forget_resolved",
    "resolve",
    "short_repr",
    "type_label",
]

Handler: TypeAlias = "Callable[[Encoder, Any], None]"
Rule: TypeAlias = "Callable[[type], Handler | None]"

_FLUSH_AT: Final = 1 << 20
_STREAM_AT: Final = 1 << 16
pack_u64: Final = struct.Struct("<Q").pack


class Unhashable(HashingError):
    """Internal: a value (somewhere inside the top-level one) has no content hash.

    ``path`` collects location components innermost first while the error
    travels out through the containers; ``reason`` says what went wrong.
    ``data_version`` re-raises it as a plain `HashingError` with the
    located message; it subclasses ``HashingError`` only so that it could never
    escape as anything else.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def located(self, root: str = "value") -> str:
        """The message: ``value['a'][2]: <reason>``."""
        return f"{root}{''.join(reversed(self.path))}: {self.reason}"


class Encoder:
    """A staging buffer plus, for large inputs, a streaming xxh3-128 hasher."""

    __slots__ = ("active", "buf", "hasher")

    def __init__(self, active: set[int] | None = None) -> None:
        self.buf = bytearray()
        self.hasher: Any = None
        self.active: set[int] = set() if active is None else active

    # -- writing -------------------------------------------------------------------

    def write_len(self, n: int) -> None:
        """Write a length or count as 8 little-endian bytes."""
        self.buf += pack_u64(n)

    def write_text(self, text: str) -> None:
        """Write a length-prefixed UTF-8 string (tag-less; for names inside encodings)."""
        data = text.encode("utf-8", "surrogatepass")
        self.buf += pack_u64(len(data))
        self.buf += data

    def write_blob(self, data: Any, nbytes: int) -> None:
        """Write ``nbytes`` raw bytes from a buffer, in place when it is large."""
        if nbytes < _STREAM_AT:
            self.buf += data
            return
        hasher = self.hasher
        if hasher is None:
            hasher = self.hasher = xxh3_128()
        hasher.update(self.buf)
        self.buf.clear()
        hasher.update(data)

    def maybe_flush(self) -> None:
        """Move the staging buffer into the hasher once it grows large."""
        if len(self.buf) > _FLUSH_AT:
            hasher = self.hasher
            if hasher is None:
                hasher = self.hasher = xxh3_128()
            hasher.update(self.buf)
            self.buf.clear()

    # -- nesting ---------------------------------------------------------------------

    def enter(self, value: object) -> None:
        """Mark a container as being written; a second visit is a cycle."""
        key = id(value)
        if key in self.active:
            raise Unhashable(
                f"a {type(value).__name__} that contains itself cannot be hashed; "
                "break the cycle or mark the node cache=False"
            )
        self.active.add(key)

    def leave(self, value: object) -> None:
        """Unmark a container once it is written."""
        self.active.discard(id(value))

    def subdigest(self, value: object) -> bytes:
        """The 16-byte digest of ``value``'s encoding alone (for order-insensitive sorts)."""
        sub = Encoder(self.active)
        encode(sub, value)
        return sub.digest()

    # -- finishing -------------------------------------------------------------------

    def digest(self) -> bytes:
        """The 16-byte xxh3-128 digest of everything written."""
        if self.hasher is None:
            return xxh3_128_digest(self.buf)
        self.hasher.update(self.buf)
        self.buf.clear()
        return bytes(self.hasher.digest())

    def hexdigest(self) -> str:
        """The digest as 32 lowercase hex characters."""
        if self.hasher is None:
            return xxh3_128_hexdigest(self.buf)
        return self.digest().hex()


HANDLERS: dict[type, Handler] = {}
"""Exact type -> handler. Built-ins are entered at import; resolved types are cached here."""

RULES: list[tuple[int, Rule]] = []
"""(priority, rule) pairs tried in ascending priority for types not in HANDLERS."""

_BUILTIN_HANDLERS: dict[type, Handler] = {}


def encode(enc: Encoder, value: object) -> None:
    """Write ``value``'s canonical encoding."""
    handler = HANDLERS.get(type(value))
    if handler is None:
        handler = resolve(type(value))
    handler(enc, value)


def resolve(cls: type) -> Handler:
    """Find (and cache) the handler for a type that has no exact entry."""
    for _, rule in RULES:
        handler = rule(cls)
        if handler is not None:
            break
    else:
        handler = _unhashable
    HANDLERS[cls] = handler
    return handler


def add_builtin(cls: type, handler: Handler) -> None:
    """Enter the handler for an exact built-in type (kept across `forget_resolved`)."""
    _BUILTIN_HANDLERS[cls] = handler
    HANDLERS[cls] = handler


def add_rule(priority: int, rule: Rule) -> None:
    """Add a rule for types without an exact handler; lower priority runs first."""
    RULES.append((priority, rule))
    RULES.sort(key=lambda pair: pair[0])
    forget_resolved()


def is_builtin(cls: type) -> bool:
    """Whether ``cls`` has a fixed built-in encoding that registrations cannot override."""
    return cls in _BUILTIN_HANDLERS


def forget_resolved() -> None:
    """Drop every cached resolution (after a registration changed the rules' answers)."""
    HANDLERS.clear()
    HANDLERS.update(_BUILTIN_HANDLERS)


def type_label(cls: type) -> str:
    """``module.qualname`` of a type: how encodings name types."""
    return f"{cls.__module__}.{cls.__qualname__}"


def short_repr(value: object, limit: int = 40) -> str:
    """A repr for error paths, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unhashable_reason(cls: type) -> str:
    """The standard advice for a type nothing knows how to hash."""
    return (
        f"cannot hash an object of type {type_label(cls)}; call "
        f"incgraph.register_hasher({cls.__qualname__}, fn) or mark the node cache=False"
    )


def _unhashable(enc: Encoder, value: object) -> None:
    raise Unhashable(unhashable_reason(type(value)))
