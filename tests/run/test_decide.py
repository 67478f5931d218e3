"""The decide step: one look-up and one claim per wave; hits, ours and theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from incgraph.run.decide import Decider, Work
from incgraph.settings import DEFAULT_SETTINGS
from incgraph.store import Record, memory_store, open_store
from incgraph.store.store import Store


def _save(store: Store, key: str, label: str, duration: float = 1.0) -> None:
    store.save(Record(key, "dv-" + key, label, "p", "c", "i", duration=duration), key)


class _Counting:
    """A store wrapper counting look-ups (a real store underneath)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lookups = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def lookup_versions(self, keys: object) -> dict[str, str]:
        self.lookups += 1
        return self.store.lookup_versions(keys)  # type: ignore[arg-type]


def test_wave_hits_misses_and_claims(tmp_path: Path) -> None:
    """Stored keys are hits with their data versions; misses are claimed and ours."""
    store = open_store(tmp_path / "s")
    _save(store, "k1", "a")
    with store.session("run", "t") as session:
        decided = Decider(store, session).decide([Work("k1", "a"), Work("k2", "b")])
        assert decided.hits == {"k1": "dv-k1"}
        assert decided.compute == ["k2"]
        assert session.lessee.held_keys() == ["k2"]


def test_one_lookup_per_wave() -> None:
    """A wave of many keys costs one look-up, and the prefetch answers latest keys with none."""
    store = memory_store()
    for i in range(5):
        _save(store, f"k{i}", f"n{i}")
    counting = _Counting(store)
    with store.session("run", "t") as session:
        decider = Decider(counting, session)  # type: ignore[arg-type]
        decided = decider.decide([Work(f"k{i}", f"n{i}") for i in range(8)])
        assert counting.lookups == 1
        assert len(decided.hits) == 5 and len(decided.compute) == 3
        decider.prefetch([f"n{i}" for i in range(5)])
        again = decider.decide([Work(f"k{i}", f"n{i}") for i in range(5)])
        assert counting.lookups == 1 and len(again.hits) == 5


def test_forced_work_computes_without_claim() -> None:
    """Forced work is ours to compute even when stored, and is not leased."""
    store = memory_store()
    _save(store, "k1", "a")
    with store.session("run", "t") as session:
        decided = Decider(store, session).decide([Work("k1", "a", forced=True)])
        assert decided.compute == ["k1"] and decided.hits == {}
        assert session._lessee is None


def test_another_process_key_is_theirs_then_hit() -> None:
    """A key another claimant holds is theirs; once stored, polling makes it a hit."""
    store = memory_store()
    with store.session("run", "a") as first, store.session("run", "b") as second:
        assert Decider(store, first).decide([Work("k", "n")]).compute == ["k"]
        decider = Decider(store, second)
        assert decider.decide([Work("k", "n")]).theirs == ["k"]
        _save(store, "k", "n")
        first.saved(["k"])
        assert decider.poll(["k"]).hits == {"k": "dv-k"}


def test_wait_returns_lapsed_lease_as_ours() -> None:
    """Waiting for a key whose holder gives it up makes it ours; before_wait runs first."""
    store = memory_store()
    calls = []
    with store.session("run", "a") as first, store.session("run", "b") as second:
        Decider(store, first).decide([Work("k", "n")])
        first.release(["k"])
        decided = Decider(store, second).wait(["k"], before_wait=lambda: calls.append(1))
        assert decided.compute == ["k"] and calls == [1]


def test_read_only_mode_never_claims() -> None:
    """Without a session the decider looks up and reports misses as compute, claiming nothing."""
    store = memory_store()
    _save(store, "k1", "a")
    decided = Decider(store, None).decide([Work("k1", "a"), Work("k2", "b")])
    assert decided.hits == {"k1": "dv-k1"} and decided.compute == ["k2"]


def test_cheap_latest_result_is_not_leased() -> None:
    """A label whose latest result took less than the threshold recomputes without a lease."""
    store = memory_store()
    _save(store, "old", "a", duration=DEFAULT_SETTINGS.lease_min_seconds / 10)
    _save(store, "old-b", "b", duration=0.5)
    with store.session("run", "t") as session:
        decider = Decider(store, session)
        decider.prefetch(["a", "b"])
        decided = decider.decide([Work("new", "a"), Work("new-b", "b")])
        assert decided.compute == ["new", "new-b"]
        assert session.lessee.held_keys() == ["new-b"]


def test_cheap_kind_in_this_run_is_not_leased() -> None:
    """Once every compute of a kind in this run was cheap, its next misses take no lease."""
    store = memory_store()
    with store.session("run", "t") as session:
        decider = Decider(store, session)
        first = Work("k1", "a", kind="P")
        decider.decide([first])
        decider.computed(first, "dv", DEFAULT_SETTINGS.lease_min_seconds / 10)
        decider.decide([Work("k2", "b", kind="P"), Work("k3", "c", kind="Q")])
        assert sorted(session.lessee.held_keys()) == ["k1", "k3"]
        decider.computed(Work("k2", "b", kind="P"), "dv2", 1.0)  # one slow compute: leased again
        decider.decide([Work("k4", "d", kind="P")])
        assert "k4" in session.lessee.held_keys()


def test_key_computed_in_this_run_is_a_hit() -> None:
    """Work whose key this run computed (maybe not written yet) is a hit in a later wave."""
    store = memory_store()
    with store.session("run", "t") as session:
        decider = Decider(store, session)
        work = Work("k", "a")
        decider.decide([work])
        decider.computed(work, "dv", 1.0)
        assert decider.decide([Work("k", "b")]).hits == {"k": "dv"}


@pytest.mark.parametrize("wave", [[], [Work("k", "a"), Work("k", "b")]])
def test_duplicate_and_empty_waves(wave: list[Work]) -> None:
    """An empty wave decides nothing; a key twice in a wave is claimed and computed once."""
    store = memory_store()
    with store.session("run", "t") as session:
        decided = Decider(store, session).decide(wave)
        assert decided.compute == list(dict.fromkeys(w.key for w in wave))
