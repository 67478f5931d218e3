"""Canonical content hashing and code versions.

Design note
-----------
Everything the cache decides rests on four hashes, all xxh3-128 in 32 hex
characters and all tagged with `SCHEME`:

* `data_version` - the content hash of a value. Canonical (equal values,
  equal hashes, in any process) and domain-tagged (every value is a type tag
  plus a length-prefixed payload, so ``[1, 2]``, ``(1, 2)``, ``"12"``,
  ``b"12"``, ``1``, ``1.0`` and ``True`` all differ). numpy arrays and pandas
  columns are hashed from their buffers in place. Types it does not know raise
  `HashingError` naming where the value sits; user
  types join through `register_hasher` or ``__incgraph_hash__``.
* `code_version` - the fingerprint of a processor class or a function:
  normalized source (no comments, docstrings or formatting) of its code and of
  the helpers, classes and simple constants it references in the user's own
  modules, plus a declared ``version``.
* `combine` - a domain-tagged hash of strings (`combiner` binds the
  domain for hashing many part lists).
* `node_key` - the cache key, ``combine("NodeKey", code, init, inputs...)``
  (`node_key_function` builds many keys of a one-input node fast,
  `node_key_maker` of any node),
  built with a single xxh3 call because every cache hit computes it.

Module map: ``_scheme`` (tag, combine, node_key), ``_encoder`` (stream,
dispatch, error paths), ``_builtins``/``_stdlib``/``_callables`` (Python types),
``_numpy``/``_pandas`` (lazy: never imports either library), ``_registry``
(user types), ``_data`` (data_version), ``_usercode``/``_source``/``_code``
(code versions), ``_paths`` (`DataPath`: files and folders by content),
``_packages`` (declared package versions). ``docs/hashing.md`` lists every
encoding.

Examples
--------
>>> from incgraph.hashing import data_version, node_key
>>> dv = data_version({"threshold": 0.5})
>>> len(node_key("c" * 32, dv, {"x": data_version(3)}))
32
"""

from incgraph.hashing._scheme import (  # isort: skip
    SCHEME,
    combine,
    combiner,
    node_key,
    node_key_function,
    node_key_maker,
)
from incgraph.hashing._data import data_version  # isort: skip
from incgraph.hashing._registry import register_hasher  # isort: skip
from incgraph.hashing._code import code_version  # isort: skip
from incgraph.hashing import _callables  # isort: skip  # noqa: F401  (registers callables)
from incgraph.hashing import _paths  # isort: skip  # noqa: F401  (registers DataPath)

__all__ = [
    "SCHEME",
    "code_version",
    "combine",
    "combiner",
    "data_version",
    "node_key",
    "node_key_function",
    "node_key_maker",
    "register_hasher",
]
