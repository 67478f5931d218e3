"""Fault injection: SIGKILLed writers, eight racing processes, a full disk, a corrupt index.

The workers run in children forked from one zygote process
(``tests/store/fault_worker.py``) that imported everything once, so a kill
costs a fork, not an interpreter start. ``benchmarks/fault_campaign.py`` runs
the same faults for longer and prints a table (``docs/reliability.md``).
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from incgraph.errors import StoreCorruptError, StoreFullError
from incgraph.graph import ProcessGraph
from incgraph.store import file_blobs, open_store

from .fault_worker import Make, Zygote, check, race_graph


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Any:
    made = Zygote(tmp_path_factory.mktemp("zygote") / "stderr.txt")
    yield made
    made.close()


def wait_for_lines(path: Path, count: int, timeout: float = 60) -> list[str]:
    """Poll a log another process appends to until it has ``count`` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} lines in {timeout} s")


# -- SIGKILL ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_writers_never_leave_a_torn_or_lost_result(zygote: Zygote, tmp_path: Path) -> None:
    """20 writers SIGKILLed at random instants: the store opens, every listed result loads as
    the value its record implies, and no acknowledged result is lost."""
    rng = random.Random(6)
    store, acks = tmp_path / "store", tmp_path / "acks"
    checked: set[str] = set()
    for kill in range(20):
        pid = zygote.fork("write", store, kill + 1, acks)
        time.sleep(rng.uniform(0.02, 0.3))  # the random point at which the writer dies
        os.kill(pid, signal.SIGKILL)
        assert zygote.reap(pid) == -signal.SIGKILL
        outcome = check(str(store), str(acks), checked)  # the results new since the last kill
        assert (outcome["torn"], outcome["lost"], outcome["problems"]) == (0, 0, 0), outcome
    outcome = check(str(store), str(acks))  # and every result once more at the end
    assert (outcome["torn"], outcome["lost"], outcome["problems"]) == (0, 0, 0), outcome
    assert outcome["acked"] >= 40 and outcome["results"] >= outcome["acked"]
    assert "Traceback" not in zygote.errors()


# -- many processes, one cold graph ------------------------------------------------------------


def test_eight_processes_of_four_threads_compute_each_node_once(
    zygote: Zygote, tmp_path: Path
) -> None:
    """8 processes x 4 threads run one cold graph on one store: each node computes once, no
    lock error reaches anyone, and all 32 runs return the same result."""
    store, log = tmp_path / "store", tmp_path / "computed.log"
    open_store(store).close()
    start = time.time() + 0.5
    outs = [tmp_path / f"out{i}.json" for i in range(8)]
    pids = [
        zygote.fork("race", store, log, out, 4, "threads" if i % 2 else "serial", start)
        for i, out in enumerate(outs)
    ]
    assert [zygote.reap(pid) for pid in pids] == [0] * 8, zygote.errors()
    reports = [json.loads(out.read_text()) for out in outs]
    assert [r["errors"] for r in reports] == [[]] * 8
    results = [value for r in reports for value in r["results"]]
    assert len(results) == 32 and len(set(results)) == 1
    calls = Counter(line.split()[2] for line in log.read_text().splitlines())
    graph, sink = race_graph(":memory:", str(log))
    needed = {n.label for n in graph.topological_sort(sink) if not n.is_constant}
    assert set(calls) == needed and set(calls.values()) == {1}, calls
    assert "locked" not in zygote.errors()


def test_a_killed_workers_lease_expires_and_its_work_is_redone(
    zygote: Zygote, tmp_path: Path
) -> None:
    """A process killed while computing leaves a lease that expires; a waiting process then
    computes the node itself and gets the right result."""
    store, log = tmp_path / "store", tmp_path / "computed.log"
    first = zygote.fork("hold", store, log, 1.0, 60, tmp_path / "a.json")
    wait_for_lines(log, 1)  # the first process holds the lease and is computing
    second = zygote.fork("hold", store, log, 1.0, 0, tmp_path / "b.json")
    os.kill(first, signal.SIGKILL)
    assert zygote.reap(first) == -signal.SIGKILL
    assert zygote.reap(second) == 0, zygote.errors()
    assert json.loads((tmp_path / "b.json").read_text()) == {"result": 42, "computed": 1}
    assert [line.split()[0] for line in log.read_text().splitlines()] == [str(first), str(second)]
    with open_store(store) as opened:
        assert opened.ledger.lease_states() == {} or all(
            state.owner.split(":")[1] == str(first)
            for state in opened.ledger.lease_states().values()
        )


# -- full disk, corrupt index ------------------------------------------------------------------


def two_items(store: Any, second: int = 2) -> tuple[ProcessGraph, Any, Any]:
    """A graph with a small (inline) result and a second one (item 2: a file)."""
    graph = ProcessGraph(store=store)
    small = graph.add_node("item0", Make, {"i": graph.add_constant_node("c0", "i", value=0)})
    const = graph.add_constant_node(f"c{second}", "i", value=second)
    big = graph.add_node(f"item{second}", Make, {"i": const})
    return graph, small, big


def test_a_full_disk_fails_clearly_and_leaves_the_store_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while writing a blob: StoreFullError naming the node, and nothing else changes."""
    graph, small, big = two_items(tmp_path / "store")
    graph.run_upto(small)

    def full(fd: int, data: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_blobs, "write_all", full)
    with pytest.raises(StoreFullError, match=r"node item2 .*disk .* is full.*free some space"):
        graph.run_upto(big)
    store = graph.store
    assert store.verify().ok and store.ledger.lease_states() == {}
    assert store.runs()[-1].status == "failed"
    assert not list((tmp_path / "store" / "blobs").glob("*/*.tmp"))
    monkeypatch.undo()
    graph.run_upto([small, big])
    assert [n.label for n in graph.last_run.computed] == ["item2"]
    assert check(str(tmp_path / "store"))["torn"] == 0
    graph.close()


def test_a_full_database_fails_clearly_and_leaves_the_store_intact(tmp_path: Path) -> None:
    """SQLite's "database or disk is full" is a StoreFullError too; the store stays usable."""
    graph, small, big = two_items(tmp_path / "store", second=5)  # 4 KB, inline in SQLite
    graph.run_upto(small)
    conn = graph.store.index.file.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreFullError, match="full"):
        graph.run_upto(big)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert graph.store.verify().ok
    graph.run_upto([small, big])
    assert [n.label for n in graph.last_run.computed] == ["item5"]
    graph.close()


def test_a_corrupt_index_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    """A damaged index.sqlite fails with StoreCorruptError naming it and how to recover."""
    from incgraph.cli import main

    graph, small, _ = two_items(tmp_path / "store")
    graph.run_upto(small)
    graph.close()
    index = tmp_path / "store" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 200)
    again, small, _ = two_items(tmp_path / "store")
    with pytest.raises(StoreCorruptError, match=rf"{index}.*mv {index} {index}.bad.*recomputed"):
        again.run_upto(small)
    assert main(["ls", "--store", str(tmp_path / "store")]) == 1
