"""The lease heartbeat: one lingering thread renews leases, closes its connections when idle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from incgraph.store import leases, open_store
from incgraph.store.leases import _Heartbeat

from .contract import dv

WAIT = 60.0  # seconds an event may take before the test fails (never reached when it works)


class Beat:
    """A stand-in claimant: counts renewals and signals each; its ledger counts end_thread."""

    def __init__(self, ttl: float, linger: float) -> None:
        self.ttl = ttl
        self.linger = linger
        self.renewals = 0
        self.renewed = threading.Event()
        self.ledger = self
        self.ended: list[threading.Thread] = []

    def renew_due(self, now: float) -> None:
        self.renewals += 1
        self.renewed.set()

    def end_thread(self) -> None:
        self.ended.append(threading.current_thread())


def stop(heartbeat: _Heartbeat) -> None:
    """End a test's own heartbeat thread: no more lingering."""
    thread = heartbeat._thread
    with heartbeat._cond:
        heartbeat.linger = 0.0
        heartbeat._cond.notify()
    if thread is not None:
        thread.join(WAIT)
        assert not thread.is_alive()


def test_the_heartbeat_thread_outlives_its_claimant_and_serves_the_next(tmp_path: Path) -> None:
    """Two runs one after the other share one heartbeat thread instead of starting two."""
    with open_store(tmp_path / "s") as store:
        first = store.lessee()
        first.claim_many([dv(1)])
        thread = leases._HEARTBEAT._thread
        assert thread is not None and thread.is_alive()
        first.close()
        second = store.lessee()
        second.claim_many([dv(2)])
        assert leases._HEARTBEAT._thread is thread and thread.is_alive()
        second.close()
        assert store.ledger.lease_states() == {}


def test_an_idle_heartbeat_closes_its_connections_then_exits_after_lingering() -> None:
    """With no claimant left the thread ends its ledgers' connections, lingers, and exits."""
    heartbeat = _Heartbeat(linger=0.05)
    beat = Beat(ttl=0.03, linger=heartbeat.linger)
    heartbeat.add(beat)  # type: ignore[arg-type]
    thread = heartbeat._thread
    assert thread is not None
    assert beat.renewed.wait(WAIT)
    heartbeat.remove(beat)  # type: ignore[arg-type]
    thread.join(WAIT)
    assert not thread.is_alive() and heartbeat._thread is None
    assert beat.ended == [thread]  # once, in the heartbeat's own thread
    again = Beat(ttl=0.03, linger=heartbeat.linger)
    heartbeat.add(again)  # type: ignore[arg-type]
    assert heartbeat._thread is not None and heartbeat._thread is not thread
    assert again.renewed.wait(WAIT)
    heartbeat.remove(again)  # type: ignore[arg-type]
    heartbeat._thread.join(WAIT)


def test_a_lingering_heartbeat_wakes_for_a_new_claimant() -> None:
    """A claimant added while the thread lingers is renewed on its own schedule, not after linger."""
    heartbeat = _Heartbeat(linger=3600.0)
    first = Beat(ttl=0.03, linger=heartbeat.linger)
    heartbeat.add(first)  # type: ignore[arg-type]
    assert first.renewed.wait(WAIT)
    heartbeat.remove(first)  # type: ignore[arg-type]
    second = Beat(ttl=0.03, linger=heartbeat.linger)
    heartbeat.add(second)  # type: ignore[arg-type]
    assert second.renewed.wait(WAIT)
    heartbeat.remove(second)  # type: ignore[arg-type]
    stop(heartbeat)


def test_a_claimant_with_a_shorter_ttl_wakes_a_beating_heartbeat() -> None:
    """A heartbeat waiting out a long ttl is woken for a claimant whose leases expire sooner."""
    heartbeat = _Heartbeat(linger=3600.0)
    slow, fast = (
        Beat(ttl=30_000.0, linger=heartbeat.linger),
        Beat(ttl=0.03, linger=heartbeat.linger),
    )
    heartbeat.add(slow)  # type: ignore[arg-type]
    heartbeat.add(fast)  # type: ignore[arg-type]
    assert fast.renewed.wait(WAIT)
    for beat in (slow, fast):
        heartbeat.remove(beat)  # type: ignore[arg-type]
    stop(heartbeat)


def test_a_held_lease_is_renewed_while_its_claimant_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process-wide heartbeat pushes back the expiry of a lease held longer than ttl / 3."""
    with open_store(tmp_path / "s") as store:
        renewed = threading.Event()
        real_renew = store.ledger.renew

        def renew(*args: Any, **kwargs: Any) -> None:
            real_renew(*args, **kwargs)
            renewed.set()

        monkeypatch.setattr(store.ledger, "renew", renew)
        lessee = store.lessee(ttl=0.3)
        lessee.claim_many([dv(1)])
        first = store.ledger.lease_states()[dv(1)].expires
        assert renewed.wait(WAIT)
        assert store.ledger.lease_states()[dv(1)].expires > first
        lessee.close()
        assert store.ledger.lease_states() == {}
