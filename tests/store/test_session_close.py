"""Closing a run's session: its leases and its run log row go in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import StoreError
from incgraph.store import Store, memory_store, open_store
from incgraph.store import leases as leases_module
from incgraph.store.sqlite_file import SqliteFile

from .contract import dv, record


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = open_store(tmp_path / "s")
    yield made
    made.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each operation SqliteFile.write commits, in order."""
    seen: list[str] = []
    real = SqliteFile.write

    def write(self: SqliteFile, operation: Any, **kwargs: Any) -> Any:
        seen.append(getattr(operation, "__qualname__", repr(operation)))
        return real(self, operation, **kwargs)

    monkeypatch.setattr(SqliteFile, "write", write)
    return seen


@pytest.mark.parametrize("announce", [False, True])
def test_a_session_holding_leases_closes_in_one_transaction(
    store: Store, writes: list[str], announce: bool
) -> None:
    """close releases the leases still held and writes (or completes) the run row in one commit."""
    session = store.session("batch", "items", announce=announce)
    assert session.claim([dv(1), dv(2)]).mine == [dv(1), dv(2)]
    store.save(record(1, 11), 1)
    session.log.written.append(dv(1))
    del writes[:]
    session.close()
    assert len(writes) == 1
    assert store.ledger.lease_states() == {}
    (run,) = store.runs()
    assert (run.status, run.computed, run.finished is not None) == ("ok", 1, True)
    assert session.lessee not in leases_module._HEARTBEAT._lessees


def test_a_session_holding_no_lease_writes_only_its_row(store: Store, writes: list[str]) -> None:
    """A session whose leases were all released before close costs one insert at close."""
    with store.session() as session:
        session.claim([dv(1)])
        store.save(record(1, 11), 1)
        session.saved([dv(1)])
        del writes[:]
    assert len(writes) == 1 and store.runs()[-1].computed == 1


@pytest.mark.parametrize("ok", [True, False])
def test_a_failed_close_still_releases_the_leases(
    store: Store, monkeypatch: pytest.MonkeyPatch, ok: bool
) -> None:
    """If the joint write fails, the leases are released on their own; a failed run hides the error."""

    def broken(*args: Any, **kwargs: Any) -> int:
        raise StoreError("disk trouble")

    session = store.session()
    session.claim([dv(1)])
    monkeypatch.setattr(store.ledger, "end_run", broken)
    if ok:
        with pytest.raises(StoreError, match="disk trouble"):
            session.close(ok)
    else:
        session.close(ok)
    assert store.ledger.lease_states() == {}
    assert session.lessee.held == set()


def test_a_memory_ledger_releases_then_logs() -> None:
    """A ledger in memory (end_run as two steps) releases the leases and logs the run."""
    store = memory_store()
    with store.session("run", "x") as session:
        session.claim([dv(1)])
    assert store.ledger.lease_states() == {}
    assert [run.label for run in store.runs()] == ["x"]


def test_closing_a_run_log_twice_still_releases_a_lessee(store: Store) -> None:
    """A run log closed already writes nothing more, but the lessee handed in still lets go."""
    log = store.run_log("run", "once")
    log.close()
    lessee = store.lessee()
    lessee.claim_many([dv(1)])
    log.close(lessee=lessee)
    assert store.ledger.lease_states() == {} and len(store.runs()) == 1
