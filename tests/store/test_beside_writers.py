"""verify and gc in loops beside writer processes: nothing committed is lost, nothing wrong served."""

from __future__ import annotations

from pathlib import Path

from incgraph.store import Record, open_store

from .fault_worker import Zygote, check

WRITERS = 3
RESULTS_PER_WRITER = 90
MAX_ROUNDS = 5000  # a bound, should a writer die without its done file


def test_verify_and_gc_beside_writers_lose_nothing_and_find_nothing(tmp_path: Path) -> None:
    """Loops of verify and gc --grace 0 beside writers delete no committed result and report
    no problem, and every result a writer reads back meanwhile is there and right."""
    store_path = tmp_path / "store"
    open_store(store_path).close()
    acks = tmp_path / "acks"
    zygote = Zygote(tmp_path / "stderr")
    try:
        done = [tmp_path / f"done{seed}" for seed in range(1, WRITERS + 1)]
        pids = [
            zygote.fork("write_n", store_path, seed, acks, RESULTS_PER_WRITER, done[seed - 1])
            for seed in range(1, WRITERS + 1)
        ]
        problems: list[str] = []
        rounds = 0
        with open_store(store_path) as store:
            while not all(path.exists() for path in done) and rounds < MAX_ROUNDS:
                report = store.verify()
                problems += [f"{p.kind} {p.name}: {p.reason}" for p in report.problems]
                store.gc(grace=0)
                rounds += 1
        codes = [zygote.reap(pid) for pid in pids]
        assert codes == [0] * WRITERS, zygote.errors()
    finally:
        zygote.close()
    assert problems == []
    outcome = check(str(store_path), str(acks))
    assert outcome["acked"] >= WRITERS * RESULTS_PER_WRITER // 2
    assert (outcome["lost"], outcome["torn"], outcome["problems"]) == (0, 0, 0), outcome


def test_a_result_saved_again_while_gc_decides_is_not_deleted(tmp_path: Path) -> None:
    """gc deletes a dropped result only if its row is unchanged: one saved again under the
    same key after gc read the index (a writer recomputing it) stays."""
    with open_store(tmp_path / "store") as store:
        old = store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i", created=1.0), [1])
        decided = store.gc(keep_runs=0, grace=0, dry_run=True).removed
        assert decided == [old]
        again = store.save(Record("a" * 32, "b" * 32, "n", "p", "c", "i"), [1])
        store.index.delete_unchanged(decided)
        assert store.lookup("a" * 32) == again and store.load(again) == [1]
