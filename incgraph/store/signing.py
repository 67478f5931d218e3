"""Optional HMAC signing of blobs, with a key from ``$INCGRAPH_HMAC_KEY``.

Design note
-----------
Loading a result unpickles it, and unpickling runs whatever code the bytes
ask for. The checksums in the ``blobs`` table catch accidents (a torn write,
a flipped bit), not tampering: anyone who can write the store can write a
matching xxh3 checksum. With a secret key, every blob written gets a tag,
``HMAC-SHA256(key, "incgraph-blob-v1" | data version | codec | bytes)``, kept
in its row; every load recomputes it over the bytes actually read and refuses
the blob (`StoreCorruptError` naming it) when the tag
is missing or wrong, before a single byte is unpickled.

Threat model. Signing protects against someone who can write the store but
does not know the key: they cannot plant a pickle that will be loaded, nor
change a stored one. It does not protect against someone who has the key (or
can read it from your environment), and it does not sign the index: such a
person can still delete results, or point a cache key at another *signed*
blob of the same store. Keep the key out of the store's folder and out of
version control.

Turning signing on for a store written without it makes every existing blob
unsigned: each is refused once (and removed, so it is recomputed and written
again with a tag). Run ``incgraph verify`` after setting the key to do that
in one pass.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["HMAC_ENV_VAR", "Signer", "signer_from_env"]

HMAC_ENV_VAR = "INCGRAPH_HMAC_KEY"
"""Environment variable holding the secret key that signs blobs (unset: no signing)."""

_DOMAIN = b"incgraph-blob-v1\x00"


class Signer:
    """Computes and checks the HMAC-SHA256 tags of blobs.

    Parameters
    ----------
    key : bytes or str
        The secret key (a str is UTF-8 encoded). Must not be empty.

    Examples
    --------
    >>> signer = Signer("s3cret")
    >>> tag = signer.tag("ab" * 16, "pickle", [b"bytes"])
    >>> signer.check("ab" * 16, "pickle", [b"bytes"], tag)
    True
    >>> signer.check("ab" * 16, "pickle", [b"bytez"], tag), Signer("other").check(
    ...     "ab" * 16, "pickle", [b"bytes"], tag)
    (False, False)
    """

    def __init__(self, key: bytes | str) -> None:
        raw = key.encode() if isinstance(key, str) else bytes(key)
        if not raw:
            raise ValueError(f"the HMAC key is empty; set {HMAC_ENV_VAR} to a secret, or unset it")
        self._key = raw

    def __repr__(self) -> str:
        return "Signer(<key hidden>)"

    def tag(self, data_version: str, codec: str, parts: Iterable[Any]) -> str:
        """The hex tag of a blob made of ``parts`` (bytes-like, written one after another)."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        mac.update(_DOMAIN + data_version.encode() + b"\x00" + codec.encode() + b"\x00")
        for part in parts:
            mac.update(part)
        return mac.hexdigest()

    def check(self, data_version: str, codec: str, parts: Iterable[Any], tag: str | None) -> bool:
        """Whether ``tag`` is this key's tag of the blob (False when ``tag`` is missing)."""
        if not tag:
            return False
        return hmac.compare_digest(self.tag(data_version, codec, parts), tag)


def signer_from_env(environ: Mapping[str, str] | None = None) -> Signer | None:
    """A `Signer` for ``$INCGRAPH_HMAC_KEY``, or None when it is unset or empty.

    Examples
    --------
    >>> signer_from_env({}) is None, signer_from_env({HMAC_ENV_VAR: "k"}) is not None
    (True, True)
    """
    key = (os.environ if environ is None else environ).get(HMAC_ENV_VAR)
    return Signer(key) if key else None
