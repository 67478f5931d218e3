"""Writing computed results: all in one go, and saying which ones cannot be stored.

Design note
-----------
The engine and the batch loop write results in batches (one
``Store.save_many``, one transaction). A result that cannot be pickled must
fail its own node (and, in a batch, its own item) only: the others are
stored as usual. So when a batch write raises
`UnstorableResultError`, `save_results` checks
every value of the batch (a pickle into a sink that keeps nothing), writes
the ones that pickle in one transaction, and returns, in place of each
record that could not be written, the error that says which part of the
value could not be pickled (``result['model'].fh: _io.TextIOWrapper``). Any
other store error (a full disk, a read-only store) stops the run; it is
raised naming the node whose result could not be written.
"""

from __future__ import annotations

from typing import Any

from incgraph.errors import StoreError, UnstorableResultError
from incgraph.store import Store
from incgraph.store.codecs import unstorable
from incgraph.store.picklability import pickle_error, unpicklable_part
from incgraph.store.protocols import Record

__all__ = ["save_results"]


def save_results(
    store: Store, items: list[tuple[Record, Any]]
) -> list[Record | UnstorableResultError]:
    """Save ``items``; one saved record per item, or the error saying why it cannot be stored.

    Examples
    --------
    >>> import threading
    >>> from incgraph.store import memory_store
    >>> store = memory_store()
    >>> record = Record("a" * 32, "b" * 32, "n1", "Proc", "c", "i")
    >>> other = Record("c" * 32, "d" * 32, "n2", "Proc", "c", "i")
    >>> saved, failed = save_results(store, [(record, 1), (other, threading.Lock())])
    >>> saved.key == record.key, failed.part
    (True, 'result: _thread.lock')
    """
    try:
        return list(_save(store, items))
    except UnstorableResultError:
        pass
    results: list[Record | UnstorableResultError] = []
    storable = []
    for record, value in items:
        error = pickle_error(value)
        if error is None:
            storable.append((record, value))
            results.append(record)
        else:
            results.append(unstorable(unpicklable_part(value), error))
    saved = iter(_save(store, storable) if storable else [])
    return [next(saved) if isinstance(r, Record) else r for r in results]


def _save(store: Store, items: list[tuple[Record, Any]]) -> list[Record]:
    try:
        return store.save_many(items)
    except UnstorableResultError:
        raise
    except StoreError as exc:
        _raise_naming_the_node(store, items, exc)
        raise


def _raise_naming_the_node(store: Store, items: list[tuple[Record, Any]], exc: StoreError) -> None:
    """Retry a failed batch write one result at a time, to say which node could not be stored."""
    for record, value in items:
        try:
            store.save(record, value)
        except StoreError as one:
            raise type(one)(f"node {record.node} ({record.processor}): {one}") from one
    raise exc
