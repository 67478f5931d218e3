"""The store's byte budget: enforced after every run that wrote results.

Design note
-----------
A store may carry a byte budget (`Store.max_bytes`): given to `open_store`
or `ProcessGraph` as ``max_bytes``, or set for every process
with ``$INCGRAPH_MAX_BYTES`` (``"20G"``, ``"500M"``, ``"1.5GiB"``). When a
run's session closes after writing results (an engine run, a batch, a flow,
a memoized function's log), `enforce_budget` runs the garbage
collector's byte budget (`incgraph.store.garbage.collect_garbage` with
``max_bytes`` and no ``keep_runs``): least recently used results go first;
pinned results, results younger than the collector's grace period (a run
in progress may still need them) and blobs a kept result references never go.
A run that wrote nothing (a fully cached rerun) pays nothing; a run that wrote
first adds up the stored bytes (`stored_bytes`, about a tenth of a
collection's cost) and collects only when they exceed the budget.

What was removed is reported: the engine's `RunReport`
carries it as ``budget``, and ``incgraph runs`` / ``incgraph gc`` show the
store's state. The budget never fails a run: a collection that cannot get the
database (another process holds it) is skipped and tried after the next run.
"""

from __future__ import annotations

import os
import re
import time

from incgraph.errors import ConfigurationError, StoreError
from incgraph.store.garbage import GcReport, collect_garbage
from incgraph.store.protocols import StoreView

__all__ = ["ENV_MAX_BYTES", "enforce_budget", "max_bytes_from_env", "parse_size", "stored_bytes"]

ENV_MAX_BYTES = "INCGRAPH_MAX_BYTES"
"""Environment variable giving the default byte budget of every store opened."""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``"500"``, ``"10K"``, ``"1.5GB"``, ``"2GiB"`` (K=1000, Ki=1024).

    Examples
    --------
    >>> parse_size("500"), parse_size("10k"), parse_size("1.5GB"), parse_size("1KiB")
    (500, 10000, 1500000000, 1024)
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write e.g. 500M, 10G or 1.5GiB")
    number, prefix, suffix = match.groups()
    base = 1024 if suffix.lower().startswith("i") else 1000
    power = " kmgtp".index(prefix.lower()) if prefix else 0
    return int(float(number) * base**power)


def max_bytes_from_env() -> int | None:
    """The budget ``$INCGRAPH_MAX_BYTES`` sets, or None when it is unset or empty.

    Raises
    ------
    ConfigurationError
        The variable is set to something that is not a size.

    Examples
    --------
    >>> os.environ.pop(ENV_MAX_BYTES, None) and None
    >>> max_bytes_from_env() is None
    True
    """
    text = os.environ.get(ENV_MAX_BYTES, "").strip()
    if not text:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"${ENV_MAX_BYTES}: {exc}; or unset it for no byte budget"
        ) from None


def enforce_budget(store: StoreView, wrote: bool, started: float | None = None) -> GcReport | None:
    """Bring ``store`` under its byte budget after a run; what was removed, or None.

    None when the store has no budget, is read-only, the run wrote nothing, or
    the collection could not run this time. ``started`` (the run's start, a
    ``time.time()``) widens the collector's grace period to the whole run:
    what the run wrote is never removed by its own budget, however long it
    ran (its caller is about to read it; a flow's execution reads its
    artifacts lazily).

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> enforce_budget(memory_store(), wrote=True) is None  # no budget
    True
    """
    limit = store.max_bytes
    if limit is None or store.read_only or not wrote:
        return None
    try:
        if stored_bytes(store) <= limit:
            return None  # under budget even counting every blob: no collection needed
        grace = store.settings.gc_grace_seconds
        if started is not None:
            grace = max(grace, time.time() - started)
        return collect_garbage(store, max_bytes=limit, grace=grace)
    except StoreError:
        return None


def stored_bytes(store: StoreView) -> int:
    """Bytes of every blob and of every result held in an index row (orphans included).

    An upper bound of what a collection counts, read without loading any
    record: about a tenth of a collection's cost, so a run under budget pays
    only this.

    Examples
    --------
    >>> from incgraph.store import memory_store, Record
    >>> store = memory_store()
    >>> stored_bytes(store)
    0
    >>> saved = store.save(Record("k", "d" * 32, "n", "p", "c", "i"), [1, 2, 3])
    >>> stored_bytes(store) == saved.size
    True
    """
    total = sum(entry.size for entry in store.blobs.entries())
    return total + sum(store.index.row_bytes().values())
