"""Every tuning knob of incgraph, in one documented, immutable object.

Design note
-----------
Tuning is data passed in, never a module global patched from outside (the model
is diskcache's ``DEFAULT_SETTINGS``). A `Settings` is a frozen dataclass:
`open_store` and `memory_store` take one (``store.settings``, default
`DEFAULT_SETTINGS`), a `ProcessGraph` takes one (``graph.settings``, default: its
store's), and every run, batch, writer, lease and maintenance command reads its
knobs from the object it was given. Settings live on the `Store` object only,
never in the store's folder: two processes may open one store with different
settings, and the cache keys do not depend on them (a knob changes how fast
results are made and written, never what they are).

`Settings.replace` returns a copy with some fields changed and checks them: an
unknown name raises ``TypeError`` listing the closest valid ones; a value of the
wrong type raises ``TypeError``; a negative size, a zero chunk or a non-positive
interval raises `ConfigurationError` (a ``ValueError``) naming the field and
what it accepts.

The knobs
---------
Units are in the names (``_seconds``, ``_bytes``); a name without a unit is a
count. "Pays" says what shows the value earns its keep.

================================  ==============  ==================================================
field                             default         what it does; why this value
================================  ==============  ==================================================
prompt_write_seconds              0.5             a result that took this long to compute is
                                                  written at once: a crash then loses little work
prompt_write_bytes                1 MiB           a result this large is written at once, so
                                                  memory does not hold many big pending values
claim_ahead                       512             nodes of a ready wave (a ForEach's tasks) a run
                                                  looks up and claims in one bulk step
prefetch_min_nodes                32              runs of at least this many nodes read every
                                                  node's latest record in one query first
lease_min_seconds                 0.001           a node whose latest compute took less than this
                                                  is recomputed without a lease: a lease (one
                                                  write, ~40 µs plus polling) costs about as much
lease_first_poll_seconds          0.002           first wait before re-checking a key another
                                                  process is computing
lease_max_poll_seconds            0.1             the wait grows by 1.5x up to this
lease_ttl_seconds                 30.0            a lease not renewed for this long has expired:
                                                  a killed process's work is taken over
lease_linger_seconds              60.0            the idle lease heartbeat thread exits after this
batch_job_target_seconds          0.2             about how long one batch job should take once a
                                                  node's cost per item is known (batch figures)
batch_keep_bytes                  256 MiB         breadth-first passes keep computed results in
                                                  memory for later passes up to this many bytes
queue_capacity                    2048            items a queue holds before its producer waits
queue_chunk_size                  512             most items handed from one stage to the next
queue_target_seconds              0.002           about how long one chunk of a stage's work takes
writer_pending_count              4096            the writer commits once this many results wait:
                                                  26% fewer pages written than with 1,024 in a
                                                  10,000-task ForEach
writer_pending_bytes              256 MiB         ... or once the waiting values are this large
writer_max_delay_seconds          0.2             ... or once the oldest has waited this long
writer_recent_bytes               64 MiB          recently written values kept readable from memory
writer_recent_item_bytes          64 KiB          larger values are not kept after they are written
blob_inline_limit_bytes           32 KiB          encoded values smaller than this are kept inside
                                                  SQLite rather than in a file of their own
blob_mmap_threshold_bytes         1 MiB           blob files at least this large are memory-mapped
                                                  (a 100 MB array loads in 4 ms instead of 31 ms)
blob_cache_bytes                  1 GiB           size of the local read-through cache of a
                                                  remote blob store
temp_file_max_age_seconds         3600.0          a temporary file whose writer cannot be checked
                                                  (another host) is deleted after this long
row_inline_limit_bytes            1024            results whose pickle is at most this large live
                                                  in their index row (10.7 -> 9.1 µs per save)
index_put_chunk                   50000           rows written per transaction by bulk index writes
index_get_chunk                   500             keys per ``IN (...)`` query (below SQLite's limit
                                                  of 999 variables on old builds)
sqlite_io_retries                 8               retries of a transient SQLite "disk I/O error"
                                                  (a WAL open/close race between processes)
stale_run_seconds                 86400.0         a run still "running" after this long on another
                                                  host is taken to be dead
gc_grace_seconds                  600.0           gc leaves results and files younger than this
run_log_limit                     1000            gc keeps at least this many recent runs
persist_output_load_bytes         64 KiB          ``graph.persist`` loads a stored result it did not
                                                  hold, to record its output, up to this size
memoize_log_seconds               30.0            a memoized function's run-log row is written at
                                                  least this often
memoize_log_keys                  10000           ... or once it holds this many keys
process_rendezvous_seconds        5.0             how long the process executor's release jobs
                                                  wait to meet on every worker before the pool
                                                  is recycled instead
watchdog_poll_seconds             0.5             how often a worker without ``pidfd`` support
                                                  checks that its parent is alive
================================  ==============  ==================================================

Examples
--------
>>> from incgraph import DEFAULT_SETTINGS, Settings
>>> DEFAULT_SETTINGS.claim_ahead
512
>>> fast = DEFAULT_SETTINGS.replace(gc_grace_seconds=0)
>>> fast.gc_grace_seconds, DEFAULT_SETTINGS.gc_grace_seconds
(0, 600.0)
>>> Settings().replace(claim_ahaed=10)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
TypeError: unknown setting 'claim_ahaed'; did you mean 'claim_ahead'? ...
"""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from incgraph.errors import ConfigurationError

__all__ = ["DEFAULT_SETTINGS", "Settings", "checked_settings"]

Kind = Literal["count", "amount", "bytes", "seconds", "interval"]
"""count: int >= 1; amount, bytes: int >= 0; seconds: number >= 0 or inf; interval: 0 < x < inf."""

_ACCEPTS: dict[str, str] = {
    "count": "a whole number of at least 1",
    "amount": "a whole number, 0 or more",
    "bytes": "a whole number of bytes, 0 or more",
    "seconds": "a number of seconds, 0 or more (inf: never)",
    "interval": "a finite number of seconds greater than 0",
}


def _knob(default: Any, kind: Kind) -> Any:
    return field(default=default, metadata={"kind": kind})


@dataclass(frozen=True)
class Settings:
    """Every tuning knob of incgraph (see the module docstring for the table).

    Pass one to `open_store`, `memory_store` or `ProcessGraph`; derive one with
    `replace`. Frozen: a store's settings never change under a running graph.

    Examples
    --------
    >>> from incgraph import Settings, memory_store
    >>> store = memory_store(settings=Settings(gc_grace_seconds=0))
    >>> store.settings.gc_grace_seconds
    0
    """

    # prompt writes and the engine's look-ahead
    prompt_write_seconds: float = _knob(0.5, "seconds")
    prompt_write_bytes: int = _knob(1 << 20, "bytes")
    claim_ahead: int = _knob(512, "count")
    prefetch_min_nodes: int = _knob(32, "count")
    # leases
    lease_min_seconds: float = _knob(0.001, "seconds")
    lease_first_poll_seconds: float = _knob(0.002, "interval")
    lease_max_poll_seconds: float = _knob(0.1, "interval")
    lease_ttl_seconds: float = _knob(30.0, "interval")
    lease_linger_seconds: float = _knob(60.0, "seconds")
    # batches
    batch_job_target_seconds: float = _knob(0.2, "interval")
    batch_keep_bytes: int = _knob(256 << 20, "bytes")
    # queue pipelines
    queue_capacity: int = _knob(2048, "count")
    queue_chunk_size: int = _knob(512, "count")
    queue_target_seconds: float = _knob(0.002, "interval")
    # the store session's writer
    writer_pending_count: int = _knob(4096, "count")
    writer_pending_bytes: int = _knob(256 << 20, "bytes")
    writer_max_delay_seconds: float = _knob(0.2, "seconds")
    writer_recent_bytes: int = _knob(64 << 20, "bytes")
    writer_recent_item_bytes: int = _knob(64 << 10, "bytes")
    # blobs
    blob_inline_limit_bytes: int = _knob(32 << 10, "bytes")
    blob_mmap_threshold_bytes: int = _knob(1 << 20, "bytes")
    blob_cache_bytes: int = _knob(1 << 30, "bytes")
    temp_file_max_age_seconds: float = _knob(3600.0, "seconds")
    # index
    row_inline_limit_bytes: int = _knob(1024, "bytes")
    index_put_chunk: int = _knob(50_000, "count")
    index_get_chunk: int = _knob(500, "count")
    sqlite_io_retries: int = _knob(8, "amount")
    # maintenance
    stale_run_seconds: float = _knob(24 * 3600.0, "seconds")
    gc_grace_seconds: float = _knob(600.0, "seconds")
    run_log_limit: int = _knob(1000, "amount")
    persist_output_load_bytes: int = _knob(64 << 10, "bytes")
    # memoize
    memoize_log_seconds: float = _knob(30.0, "seconds")
    memoize_log_keys: int = _knob(10_000, "count")
    # executors
    process_rendezvous_seconds: float = _knob(5.0, "seconds")
    watchdog_poll_seconds: float = _knob(0.5, "interval")

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check(spec.name, spec.metadata["kind"], getattr(self, spec.name))
        if self.lease_first_poll_seconds > self.lease_max_poll_seconds:
            raise ConfigurationError(
                f"setting lease_first_poll_seconds ({self.lease_first_poll_seconds}) is larger "
                f"than lease_max_poll_seconds ({self.lease_max_poll_seconds}); "
                "give a first poll no longer than the longest"
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, checked like the constructor.

        Raises
        ------
        TypeError
            A name is not a setting (the message suggests the closest), or a
            value has the wrong type.
        ConfigurationError
            A value is out of range: a negative size, a zero count or interval.

        Examples
        --------
        >>> from incgraph import DEFAULT_SETTINGS
        >>> DEFAULT_SETTINGS.replace(claim_ahead=16).claim_ahead
        16
        >>> DEFAULT_SETTINGS.replace(claim_ahead=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        incgraph.errors.ConfigurationError: setting claim_ahead must be a whole number ...
        """
        known = {spec.name for spec in fields(self)}
        for name in changes:
            if name not in known:
                raise TypeError(_unknown(name, known))
        values = {spec.name: getattr(self, spec.name) for spec in fields(self)}
        return Settings(**{**values, **changes})

    def changed(self) -> dict[str, Any]:
        """The fields whose value differs from `DEFAULT_SETTINGS`, by name.

        Examples
        --------
        >>> Settings(run_log_limit=5).changed()
        {'run_log_limit': 5}
        """
        return {
            spec.name: getattr(self, spec.name)
            for spec in fields(self)
            if getattr(self, spec.name) != spec.default
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.changed().items())
        return f"Settings({shown})"


def checked_settings(value: Any, where: str) -> Settings:
    """``value`` if it is a `Settings`; else a `TypeError` naming ``where``'s argument and the fix.

    Examples
    --------
    >>> checked_settings(DEFAULT_SETTINGS, "open_store") is DEFAULT_SETTINGS
    True
    >>> checked_settings({"claim_ahead": 8}, "open_store")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: open_store(settings=...) takes an incgraph.Settings, got dict; build one ...
    """
    if not isinstance(value, Settings):
        raise TypeError(
            f"{where}(settings=...) takes an incgraph.Settings, got {type(value).__name__}; "
            "build one with incgraph.Settings(name=value, ...) or "
            "incgraph.DEFAULT_SETTINGS.replace(...)"
        )
    return value


def _check(name: str, kind: Kind, value: Any) -> None:
    """Raise if ``value`` is not what a field of ``kind`` accepts."""
    whole = kind in ("count", "amount", "bytes")
    wanted = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise TypeError(
            f"setting {name} must be {_ACCEPTS[kind]}, got {type(value).__name__} {value!r}"
        )
    low_ok = value >= 1 if kind == "count" else value > 0 if kind == "interval" else value >= 0
    endless = kind == "interval" and math.isinf(value)  # a "seconds" knob may be inf: never
    if not low_ok or endless or math.isnan(value):
        raise ConfigurationError(f"setting {name} must be {_ACCEPTS[kind]}, got {value!r}")


def _unknown(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"unknown setting {name!r}; {hint}the settings are listed in incgraph.settings"


_generated_init = Settings.__init__


@functools.wraps(_generated_init)
def _checked_init(self: Settings, *args: Any, **changes: Any) -> None:
    """The dataclass constructor, with an unknown name answered like `Settings.replace`."""
    known = {spec.name for spec in fields(Settings)}
    for name in changes:
        if name not in known:
            raise TypeError(_unknown(name, known))
    _generated_init(self, *args, **changes)


Settings.__init__ = _checked_init  # type: ignore[method-assign]

DEFAULT_SETTINGS = Settings()
"""The settings a store or graph uses when given none (the table above)."""
