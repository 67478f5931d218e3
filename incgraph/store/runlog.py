"""The run log: which cache keys each run read and wrote.

Design note
-----------
Garbage collection needs to know which results are still in use, and
``incgraph ls`` wants to say how often a result was served from the cache.
Both come from one record per run: a row of the ``runs`` table holding the
run's kind (``"run"`` for an engine run, ``"batch"`` for a batch), a label,
its owner, start and finish times, its status, and the keys it *hit* and the
keys it *wrote*.

Writing it must cost the cache-hit path nothing it can feel. A `RunLog`
therefore only appends keys to two Python lists while the run goes on (the
engine appends to `RunLog.hits` directly: one list append per hit) and
writes them at `RunLog.close` as ONE row insert whose two blobs hold
the keys packed by `pack_keys` (16 bytes per 32-hex-digit key). Nothing
is written per hit, ever. A run's session closes its log together with its
claimant (``close(lessee=...)``): the row and the release of the leases the
run still holds are then one transaction (``SqliteLedger.end_run``).

A long batch may ``announce`` itself: its row is inserted when it starts
(status ``"running"``) and completed when it closes. Garbage collection keeps
every result created after the start of a run that is still running, so a
collection in another process cannot drop what a long batch wrote an hour
ago and will read again in its next pass. Engine runs do not announce: they
keep the values they need in memory and recompute a result that vanished.

A store opened read-only keeps no run log (nothing can be written).

A run whose process died while it ran (killed, or its machine lost power)
leaves its announced row "running". `runs`
shows such a row as ``"abandoned"`` (`is_abandoned`): its owner is a
process on this host that no longer exists, or, on another host, it started
more than the ``stale_run_seconds`` setting ago (a day by default).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from incgraph.settings import DEFAULT_SETTINGS

if TYPE_CHECKING:
    from incgraph.store.leases import Lessee
    from incgraph.store.ledger import Ledger

__all__ = [
    "RunEntry",
    "RunInfo",
    "RunLog",
    "is_abandoned",
    "new_owner",
    "pack_keys",
    "unpack_keys",
]

RunStatus = Literal["running", "ok", "failed"]

_HEX = b"\x01"  # keys are 32 lowercase hex digits, stored as 16 raw bytes each
_TEXT = b"\x00"  # anything else: UTF-8, one key per line


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` (from `new_owner`) names a process on this host that has exited.

    Owners on other hosts, and processes we may not signal, count as alive: only
    their expiry can tell.

    Examples
    --------
    >>> owner_is_dead(new_owner())
    False
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


def is_abandoned(
    run: RunInfo, now: float, stale_seconds: float = DEFAULT_SETTINGS.stale_run_seconds
) -> bool:
    """Whether a run logged as ``"running"`` can no longer be running (its owner died).

    A run of a live process on this host is never abandoned; one of another host is
    taken to be once it started ``stale_seconds`` ago (the store's
    ``stale_run_seconds`` setting).

    Examples
    --------
    >>> run = RunInfo(1, "batch", "", new_owner(), 0.0, None, "running", 0, 0)
    >>> is_abandoned(run, 1.0)
    False
    """
    if run.status != "running":
        return False
    if owner_is_dead(run.owner):
        return True
    host, _, rest = run.owner.partition(":")
    if host == socket.gethostname() and rest.partition(":")[0].isdigit():
        return False  # a live process on this host
    return now - run.started >= stale_seconds


def new_owner() -> str:
    """A name for one claimant that is unique across hosts, processes, threads and time.

    Examples
    --------
    >>> host, pid, thread, tag = new_owner().rsplit(":", 3)
    >>> int(pid) == os.getpid()
    True
    """
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{os.urandom(6).hex()}"


def pack_keys(keys: Iterable[str]) -> bytes:
    """Keys as one compact blob (16 bytes per hex key); `unpack_keys` reverses it.

    Examples
    --------
    >>> keys = ["0f" * 16, "a1" * 16]
    >>> len(pack_keys(keys)), unpack_keys(pack_keys(keys)) == keys
    (33, True)
    >>> unpack_keys(pack_keys(["not-hex", "é"]))
    ['not-hex', 'é']
    """
    keys = list(keys)
    if not keys:
        return b""
    joined = "".join(keys)
    if len(joined) == 32 * len(keys) and all(len(key) == 32 for key in keys):
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raw = b""
        if raw and raw.hex() == joined:
            return _HEX + raw
    return _TEXT + "\n".join(keys).encode()


def unpack_keys(blob: bytes | None) -> list[str]:
    """The keys packed into ``blob`` by `pack_keys` (empty for None or b"")."""
    if not blob:
        return []
    head, body = blob[:1], blob[1:]
    if head == _HEX:
        text = body.hex()
        return [text[i : i + 32] for i in range(0, len(text), 32)]
    return body.decode().split("\n")


@dataclass(frozen=True)
class RunInfo:
    """One row of the run log (without its keys).

    Attributes
    ----------
    id : position in the log; later runs have larger ids.
    kind : ``"run"`` (an engine run), ``"batch"``, or a front-end's own name.
    label : what ran, e.g. the target nodes' labels.
    owner : ``host:pid:thread:tag`` of the process that ran it.
    started, finished : Unix times; ``finished`` is None while it runs.
    status : ``"running"``, ``"ok"`` or ``"failed"``; `incgraph.store.Store.runs`
        shows a running run whose process died as ``"abandoned"``.
    hits, computed : how many distinct keys it read from the cache and wrote.
    """

    id: int
    kind: str
    label: str
    owner: str
    started: float
    finished: float | None
    status: str
    hits: int
    computed: int


@dataclass(frozen=True)
class RunEntry:
    """What `RunLog` hands the ledger: the row plus its packed keys."""

    kind: str
    label: str
    owner: str
    started: float
    finished: float | None
    status: str
    hits: int
    computed: int
    hit_keys: bytes
    written_keys: bytes

    def row(self) -> tuple[Any, ...]:
        """The values of a new ``runs`` row, in column order (kind ... written_keys)."""
        return (
            self.kind,
            self.label,
            self.owner,
            self.started,
            self.finished,
            self.status,
            self.hits,
            self.computed,
            self.hit_keys,
            self.written_keys,
        )

    def finish_row(self, run_id: int) -> tuple[Any, ...]:
        """The values that complete started run ``run_id`` (finished ... written_keys, id)."""
        return (
            self.finished,
            self.status,
            self.hits,
            self.computed,
            self.hit_keys,
            self.written_keys,
            run_id,
        )


class RunLog:
    """Collects the keys one run hits and writes; one insert when it closes.

    Make one with `incgraph.store.Store.run_log`. Appending to
    `hits` and `written` (or calling `hit_many` /
    `wrote_many`) costs a list append; `close` writes the row.

    Examples
    --------
    >>> from incgraph.store import memory_store
    >>> store = memory_store()
    >>> with store.run_log("batch", "demo") as log:
    ...     log.hit_many(["a" * 32, "a" * 32])
    ...     log.wrote_many(["b" * 32])
    >>> run = store.runs()[-1]
    >>> run.kind, run.hits, run.computed, run.status
    ('batch', 1, 1, 'ok')
    """

    def __init__(
        self,
        ledger: Ledger | None,
        kind: str = "run",
        label: str = "",
        *,
        announce: bool = False,
    ) -> None:
        self.ledger = ledger
        self.kind = kind
        self.label = label
        self.owner = new_owner()
        self.started = time.time()
        self.hits: list[str] = []
        self.written: list[str] = []
        self.run_id: int | None = None
        self.closed = ledger is None
        if announce and ledger is not None:
            self.run_id = ledger.start_run(self._entry("running", None, [], []))

    def __repr__(self) -> str:
        counts = f"hits={len(self.hits)} wrote={len(self.written)}"
        return f"<RunLog {self.kind} {self.label!r} {counts}>"

    def hit_many(self, keys: Iterable[str]) -> None:
        """Note cache keys the run read from the cache."""
        self.hits.extend(keys)

    def wrote_many(self, keys: Iterable[str]) -> None:
        """Note cache keys the run computed and saved."""
        self.written.extend(keys)

    def close(self, status: RunStatus = "ok", *, lessee: Lessee | None = None) -> int | None:
        """Write the run's row (once; later calls do nothing) and return its id.

        ``lessee``, the run's claimant, gives up the leases it still holds: in
        the same transaction as the row where the ledger can (``end_run``), so
        closing a run that holds leases costs one commit instead of two.
        """
        if self.closed:
            if lessee is not None:
                lessee.close()
            return self.run_id
        self.closed = True
        assert self.ledger is not None
        wrote = dict.fromkeys(self.written)
        written = list(wrote)
        hits = [key for key in dict.fromkeys(self.hits) if key not in wrote]
        entry = self._entry(status, time.time(), hits, written)
        keys = [] if lessee is None else lessee.held_keys()
        if lessee is not None and keys and lessee.ledger is self.ledger:
            self.run_id = self.ledger.end_run(entry, self.run_id, lessee.owner, keys)
            lessee.released(keys)
            return self.run_id
        if lessee is not None:
            lessee.close()
        if self.run_id is None:
            self.run_id = self.ledger.add_run(entry)
        else:
            self.ledger.finish_run(self.run_id, entry)
        return self.run_id

    def _entry(
        self, status: RunStatus, finished: float | None, hits: list[str], written: list[str]
    ) -> RunEntry:
        return RunEntry(
            self.kind,
            self.label,
            self.owner,
            self.started,
            finished,
            status,
            len(hits),
            len(written),
            pack_keys(hits),
            pack_keys(written),
        )

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close("ok" if exc_type is None else "failed")
