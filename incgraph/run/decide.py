"""The decide step: which keys of a wave are hits, which are ours to compute, which to wait for.

Design note
-----------
Every front-end (graph runs, batch passes, queue stages, Flow ForEach tasks)
and ``explain`` ask the same question of a *wave* of keyed work (the ready
nodes of a run, a chunk of a batch pass or of a queue stage, a ForEach's
tasks): is the result of each key stored (a *hit*, with its data version),
ours to compute, or being computed by another process right now? `Decider`
answers it for a whole wave with at most

1. one look-up of the keys the prefetched latest entries (`Decider.prefetch`,
   one bulk read of each label's latest key) do not answer already, and
2. one claim (`StoreSession.claim`, one write transaction) of the misses
   worth a lease.

A `Work` is plain data: a key (a string), the label its results are recorded
under (a node label, a queue stage's name, ...), whether it is forced (it
computes without a look-up, even when stored) and its *kind* (what computes
it: a processor, a task function); nothing here needs a `Node`.

Leases where they pay. A claim is one small write transaction (~40 us on
SQLite), so a miss is leased unless its compute is known to cost about that little: its label's
latest stored result took less than the ``lease_min_seconds`` setting (1 ms
by default), or the computes of
its kind in this run so far took less on average (`Decider.computed` tells
the decider; an average, as one compute the machine happened to pause in
must not make every later one pay a lease, while a kind whose computes are
slow now and then averages above the threshold and stays leased).
Two processes may then both compute such a key; that is harmless (same key,
same result) and cheaper than the lease. Anything else, a first compute
ever included, is leased, so a cold graph run by several processes computes
each slow key once.

State: the prefetched ``latest`` entries, the data versions of keys computed
in this run (``known``: answers keys computed but maybe not yet written, so
equal work in a later wave is a hit), and per kind how many computes this run made and
how long they took in all. Read-only mode (no session: ``explain``, a read-only store,
``run_only``) looks up and never claims; its misses are reported as
``compute`` (what a run would compute).

Examples
--------
>>> from incgraph.store import memory_store, Record
>>> store = memory_store()
>>> _ = store.save(Record("k1", "dv1", "a", "p", "c", "i"), 1)
>>> with store.session("run", "demo") as session:
...     decider = Decider(store, session)
...     decided = decider.decide([Work("k1", "a"), Work("k2", "b"), Work("k1", "c", forced=True)])
>>> decided.hits, decided.compute, decided.theirs
({'k1': 'dv1'}, ['k1', 'k2'], [])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from incgraph.store.leases import Claims

if TYPE_CHECKING:
    from incgraph.store.session import StoreSession
    from incgraph.store.store import Store

__all__ = ["Decided", "Decider", "Work"]


class Work(NamedTuple):
    """One keyed piece of work in a wave (a named tuple: one is made per node or item).

    Attributes
    ----------
    key : the cache key.
    label : what its results are recorded under (node label, stage name); the
        prefetched latest entry of this label may answer the look-up.
    forced : compute even when stored (no look-up, no claim).
    kind : what computes it (a processor, a task function): computes of one
        kind in this run tell whether the next needs a lease.
    """

    key: str
    label: str
    forced: bool = False
    kind: object = None


@dataclass
class Decided:
    """What `Decider.decide` decided for a wave.

    Attributes
    ----------
    hits : key -> data version of the stored keys.
    compute : keys ours to compute (leased when worth it), each once. A forced key is
        here even when unforced work of the same key in the wave is a hit.
    theirs : keys another process is computing: `Decider.poll` or `Decider.wait` for them.
    """

    hits: dict[str, str] = field(default_factory=dict)
    compute: list[str] = field(default_factory=list)
    theirs: list[str] = field(default_factory=list)


class Decider:
    """The decide step of one run (see the module note). Not shared between runs.

    Parameters
    ----------
    store : Store
        Where results are looked up.
    session : StoreSession or None
        The run's session: claims leases. None: read-only mode (look up, never claim).
    lease_min_seconds : float, optional
        Computes known to take less than this are not leased (default: the
        store's ``settings.lease_min_seconds``).
    """

    def __init__(
        self,
        store: Store,
        session: StoreSession | None,
        *,
        lease_min_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.session = session
        self.read_only = session is None or store.read_only
        if lease_min_seconds is None:
            lease_min_seconds = store.settings.lease_min_seconds
        self.lease_min_seconds = lease_min_seconds
        self.latest: dict[str, tuple[str, str, float]] = {}
        self.known: dict[str, str] = {}
        self.costs: dict[object, tuple[int, float]] = {}  # kind -> (computes, seconds)

    def prefetch(self, labels: Iterable[str]) -> None:
        """Read the latest (key, data version, duration) of each label, in bulk."""
        self.latest.update(self.store.latest_entries(labels))

    def stored_version(self, key: str, label: str) -> str | None:
        """The data version the prefetch or this run knows for ``key``, without a query.

        ``label`` is what the key's results are recorded under (`Work.label`).
        """
        entry = self.latest.get(label)
        if entry is not None and entry[0] == key:
            return entry[1]
        return self.known.get(key)

    def leased(self, work: Work) -> bool:
        """Whether computing ``work`` is worth a lease (module note: leases where they pay)."""
        entry = self.latest.get(work.label)
        if entry is not None and entry[2] < self.lease_min_seconds:
            return False
        cost = self.costs.get(work.kind)
        return cost is None or cost[1] >= cost[0] * self.lease_min_seconds

    def computed(self, work: Work, data_version: str, duration: float) -> None:
        """``work`` was computed in this run: its key is known, its kind's cost noted."""
        self.known[work.key] = data_version
        count, seconds = self.costs.get(work.kind, (0, 0.0))
        self.costs[work.kind] = (count + 1, seconds + duration)

    def decide(self, wave: Sequence[Work]) -> Decided:
        """Hits, ours to compute and theirs, for a wave: one look-up, one claim at most."""
        decided = Decided()
        hits, compute = decided.hits, decided.compute
        asked: dict[str, Work] = {}
        for work in wave:
            key = work.key
            if work.forced:
                compute.append(key)
                continue
            version = self.stored_version(key, work.label)
            if version is not None:
                hits[key] = version
            elif key not in asked:
                asked[key] = work
        if asked:
            found = self.store.lookup_versions(asked)
            hits.update(found)
            misses = [work for key, work in asked.items() if key not in found]
            self._claim(misses, decided)
        if len(decided.compute) > 1:
            decided.compute = list(dict.fromkeys(decided.compute))
        return decided

    def _claim(self, misses: list[Work], decided: Decided) -> None:
        """Claim the lease-worthy ``misses`` in one transaction; the others are ours at once."""
        to_claim = []
        for work in misses:
            if self.read_only or not self.leased(work):
                decided.compute.append(work.key)
            else:
                to_claim.append(work.key)
        if to_claim:
            assert self.session is not None
            self._settle(self.session.claim(to_claim), decided)

    def _settle(self, claims: Claims, decided: Decided) -> None:
        decided.compute.extend(claims.mine)
        decided.theirs.extend(claims.theirs)
        decided.hits.update(claims.done)

    def poll(self, keys: Iterable[str]) -> Decided:
        """One non-blocking look at keys others were computing: stored, lapsed (ours) or not yet."""
        decided = Decided()
        if self.session is not None:
            self._settle(self.session.poll(keys), decided)
        return decided

    def wait(self, keys: Iterable[str], before_wait: Callable[[], None] | None = None) -> Decided:
        """Block until each of ``keys`` is stored or ours; ``before_wait`` saves what we hold.

        Run ``before_wait`` first so that no two runs wait for each other's results.
        """
        decided = Decided()
        keys = list(keys)
        if self.session is None or not keys:
            return decided
        if before_wait is not None:
            before_wait()
        self._settle(self.session.lessee.wait(keys), decided)
        return decided
