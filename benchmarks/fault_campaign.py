"""A fault campaign against the store: inject faults for a while and count what was lost.

Faults (each against a store in a temporary folder):

* ``sigkill``: a writer (direct saves, batched saves, graph runs, gc, verify) is
  SIGKILLed at a random instant, again and again; after every kill the store
  is opened, every result new since the last check is loaded and compared with
  the value its record implies, every acknowledged (committed) result must be
  listed, and ``verify`` must find nothing. Every result is checked once more
  at the end.
* ``race``: 8 processes x 4 threads run one cold graph on one store; every node
  must be computed exactly once and every run return the same result.
* ``lease``: a process computing a node is SIGKILLed; a second one, waiting for
  it, must take over when the lease expires and compute the right result.
* ``enospc``: a graph run whose N-th blob write fails with ENOSPC (N random)
  must raise StoreFullError and leave a store that verifies and reruns.
* ``bitflip``: random bytes of random blob files are flipped; ``verify`` must
  find every one, quarantine it, and a rerun must recompute exactly those.
* ``maintenance``: three writer processes save results (direct saves and graph
  runs, each re-reading an earlier result after every step) while this process
  runs ``verify`` and ``gc --grace 0`` in a loop; every acknowledged result
  must survive, no writer may fail or read a wrong value, and ``verify`` must
  report no problem.
* ``crafted``: index rows are rewritten to point outside the store (``../`` in
  checksums, unknown codecs), blob folders and files are replaced by symlinks
  to outside folders holding look-alike files, and a user's own files sit in
  ``blobs/``; then every result is loaded, ``incgraph show`` runs on each,
  ``verify``, ``gc --grace 0 --keep-runs 0`` and ``clear --yes`` run. No file
  outside incgraph's own may be touched, and verify must report every crafted row.

Prints one JSON line per fault and a markdown table (docs/reliability.md).

    python benchmarks/fault_campaign.py [--kills 100] [--races 5] [--leases 3] [--rounds 20]
        [--maintenance 5] [--crafted 10] [--postgres [--s3]]

``--postgres`` runs ``sigkill``, ``race``, ``lease`` and ``maintenance`` with the index,
run log and leases in a throw-away PostgreSQL server (``initdb`` + ``pg_ctl``, as the
tests do) and the blobs in a folder. ``--postgres --s3`` puts the blobs in a bucket instead:
each store gets a new bucket on an S3 emulator (moto's server mode, ``python -m moto.server``,
a separate process on localhost), the ``AWS_*`` variables point this process and its workers
at it, and ``INCGRAPH_HMAC_KEY`` is set, as bucket blobs must be signed.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, redirect_stderr, redirect_stdout, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.store.fault_worker

from incgraph.cli import main as incgraph_cli
from incgraph.errors import StoreFullError
from incgraph.graph import ProcessGraph
from incgraph.store import Record, file_blobs, open_store
from tests.s3_server import make_bucket, start_s3_server
from tests.store.fault_worker import Make, Zygote, check, race_graph

POSTGRES: Any = None
"""With ``--postgres``: the throw-away PostgreSQL server the stores' index and ledger live in."""

S3_ENDPOINT: str | None = None
"""With ``--s3``: the endpoint of the S3 emulator whose buckets hold the stores' blobs."""


def new_store(folder: Path) -> Any:
    """A new, empty store: the folder, or (``--postgres``) a URL of a new schema with its blobs
    in the folder (or, with ``--s3``, in a new bucket). Returns what ``open_store`` and the
    workers open it from."""
    if POSTGRES is None:
        open_store(folder).close()
        return folder
    blobs = str(folder) if S3_ENDPOINT is None else make_bucket(S3_ENDPOINT)
    url = f"{POSTGRES.new_schema_url()}&blobs={blobs}"
    open_store(url, create=True).close()
    return url


def kill_delay_factor() -> float:
    """How much later than a folder store's writer a writer is killed, to kill it mid-write."""
    if S3_ENDPOINT is not None:
        return 8.0
    return 4.0 if POSTGRES is not None else 1.0


def sigkill(zygote: Zygote, root: Path, kills: int, rng: random.Random) -> dict[str, Any]:
    store, acks = new_store(root / "kills"), root / "acks"
    checked: set[str] = set()
    worst = {"torn": 0, "lost": 0, "problems": 0}
    for kill in range(kills):
        pid = zygote.fork("write", store, kill + 1, acks)
        # a PostgreSQL writer spends its first ~100 ms connecting (and a bucket's writer more,
        # setting up its S3 client): kill it later, as often mid-write
        time.sleep(rng.uniform(0.01, 0.3) * kill_delay_factor())
        os.kill(pid, signal.SIGKILL)
        zygote.reap(pid)
        outcome = check(str(store), str(acks), checked)
        for name in worst:
            worst[name] += outcome[name]
    final = check(str(store), str(acks))
    return {
        "fault": "sigkill",
        "runs": kills,
        "results": final["results"],
        "acknowledged": final.get("acked", 0),
        "torn": worst["torn"] + final["torn"],
        "lost": worst["lost"] + final["lost"],
        "verify_problems": worst["problems"] + final["problems"],
    }


def race(zygote: Zygote, root: Path, rounds: int) -> dict[str, Any]:
    duplicates = errors = disagreements = 0
    for r in range(rounds):
        store, log = new_store(root / f"race{r}"), root / f"race{r}.log"
        start = time.time() + 0.5
        outs = [root / f"race{r}-{i}.json" for i in range(8)]
        pids = [
            zygote.fork("race", store, log, out, 4, "threads" if i % 2 else "serial", start)
            for i, out in enumerate(outs)
        ]
        codes = [zygote.reap(pid) for pid in pids]
        reports = [json.loads(out.read_text()) for out in outs]
        errors += sum(code != 0 for code in codes) + sum(len(r["errors"]) for r in reports)
        results = {value for report in reports for value in report["results"]}
        disagreements += len(results) - 1
        calls = Counter(line.split()[2] for line in log.read_text().splitlines())
        graph, sink = race_graph(":memory:", str(log))
        needed = {n.label for n in graph.topological_sort(sink) if not n.is_constant}
        duplicates += sum(count - 1 for count in calls.values()) + len(needed - set(calls))
    return {
        "fault": "race",
        "runs": rounds * 32,
        "duplicate_computes": duplicates,
        "errors": errors,
        "disagreeing_results": disagreements,
        "lost": 0,
    }


def lease(zygote: Zygote, root: Path, rounds: int) -> dict[str, Any]:
    wrong = 0
    for r in range(rounds):
        store, log = new_store(root / f"lease{r}"), root / f"lease{r}.log"
        first = zygote.fork("hold", store, log, 1.0, 60, root / f"lease{r}-a.json")
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        second = zygote.fork("hold", store, log, 1.0, 0, root / f"lease{r}-b.json")
        os.kill(first, signal.SIGKILL)
        zygote.reap(first)
        code = zygote.reap(second)
        out = json.loads((root / f"lease{r}-b.json").read_text()) if code == 0 else {}
        wrong += out != {"result": 42, "computed": 1}
    return {"fault": "lease", "runs": rounds, "not_taken_over": wrong, "lost": wrong}


def enospc(root: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    unclear = broken = 0
    real = file_blobs.write_all
    for r in range(rounds):
        graph = ProcessGraph(store=root / f"full{r}")
        nodes = [
            graph.add_node(f"item{i}", Make, {"i": graph.add_constant_node(f"c{i}", "i", value=i)})
            for i in range(2, 42, 4)  # big values: each a blob file
        ]
        fail_at = rng.randint(1, len(nodes))
        calls = [0]

        def write_all(fd: int, data: Any, calls: list[int] = calls, fail_at: int = fail_at) -> None:
            calls[0] += 1
            if calls[0] >= fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(fd, data)

        file_blobs.write_all = write_all  # type: ignore[assignment]
        try:
            graph.run_upto(nodes)
            unclear += 1
        except StoreFullError as exc:
            unclear += "full" not in str(exc) or "node item" not in str(exc)
        finally:
            file_blobs.write_all = real
        store = graph.store
        broken += not store.verify().ok or bool(store.ledger.lease_states())
        graph.run_upto(nodes)
        broken += check(str(root / f"full{r}"))["torn"]
        graph.close()
    return {"fault": "enospc", "runs": rounds, "unclear_errors": unclear, "broken": broken,
            "lost": broken}  # fmt: skip


def bitflip(root: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    missed = served = wrong_recompute = flipped_total = 0
    for r in range(rounds):
        graph = ProcessGraph(store=root / f"flip{r}")
        nodes = [
            graph.add_node(f"item{i}", Make, {"i": graph.add_constant_node(f"c{i}", "i", value=i)})
            for i in range(40)
        ]
        graph.run_upto(nodes)
        files = sorted((root / f"flip{r}" / "blobs").glob("*/*.*"))
        hit = rng.sample(files, k=rng.randint(1, len(files)))
        for path in hit:
            data = bytearray(path.read_bytes())
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
        flipped_total += len(hit)
        report = graph.store.verify()
        missed += len(hit) - sum(p.kind == "blob" for p in report.problems)
        served += check(str(root / f"flip{r}"))["torn"]
        graph.run_upto(nodes)
        wrong_recompute += len(graph.last_run.computed) != sum(len(p.keys) for p in report.problems)
        served += check(str(root / f"flip{r}"))["torn"]
        graph.close()
    return {"fault": "bitflip", "runs": rounds, "flipped_blobs": flipped_total,
            "missed": missed, "served_corrupt": served, "wrong_recomputes": wrong_recompute,
            "lost": 0}  # fmt: skip


def maintenance(zygote: Zygote, root: Path, rounds: int) -> dict[str, Any]:
    loops = problems = lost = torn = failed = acked = 0
    for r in range(rounds):
        store, acks = new_store(root / f"upkeep{r}"), root / f"upkeep{r}.acks"
        done = [root / f"upkeep{r}.done{w}" for w in range(3)]
        pids = [zygote.fork("write_n", store, r * 10 + w + 1, acks, 150, done[w]) for w in range(3)]
        with open_store(store) as opened:
            while not all(path.exists() for path in done) and loops < 100_000:
                problems += len(opened.verify().problems)
                opened.gc(grace=0)
                loops += 1
        failed += sum(zygote.reap(pid) != 0 for pid in pids)
        outcome = check(str(store), str(acks))
        lost, torn = lost + outcome["lost"], torn + outcome["torn"]
        problems += outcome["problems"]
        acked += outcome["acked"]
    return {"fault": "verify/gc beside writers", "runs": rounds, "verify_and_gc_loops": loops,
            "acknowledged": acked, "false_problems": problems, "writer_failures": failed,
            "torn": torn, "lost": lost}  # fmt: skip


def cli(args: list[str]) -> int:
    """Run an incgraph command in-process, its output discarded."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        return incgraph_cli(args)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def crafted(root: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    touched = unreported = 0
    for r in range(rounds):
        folder, outside = root / f"crafted{r}", root / f"outside{r}"
        outside.mkdir()
        (outside / "victim.bin").write_bytes(b"precious")
        with open_store(folder) as store:
            saved = [
                store.save(
                    Record(f"{i:032x}", f"{i:032x}"[::-1], "n", "p", "c", "i"), bytes(40_000 + i)
                )
                for i in range(1, 7)
            ]
        raw = folder / "blobs" / "raw"
        raw.mkdir()
        (raw / "photo.png").write_bytes(b"\x89PNG users own")
        conn = sqlite3.connect(folder / "index.sqlite")
        first, second, third, fourth = (rec.data_version for rec in rng.sample(saved, 4))
        depth = "../" * 4
        (folder / "blobs" / first[:2] / f"{first}.x").mkdir()  # lets ../ climb from there
        conn.execute("UPDATE blobs SET checksum = ? WHERE data_version = ?",
                     (f"x/{depth}{outside.name}/victim", first))  # fmt: skip
        conn.execute("UPDATE blobs SET codec = 'evil' WHERE data_version = ?", (second,))
        conn.commit()
        conn.close()
        for dv in (third, fourth):  # a symlinked blob file, then a symlinked blob folder
            sub = folder / "blobs" / dv[:2]
            target = outside / f"look-alike-{dv}"
            if dv == third:
                blob = next(sub.glob(f"{dv}.*"))
                target.write_bytes(blob.read_bytes())
                blob.unlink()
                blob.symlink_to(target)
            else:
                target.mkdir()
                for blob in sub.glob("*"):
                    (target / blob.name).write_bytes(blob.read_bytes())
                    blob.unlink()
                sub.rmdir()
                sub.symlink_to(target, target_is_directory=True)
        before = _tree(outside) | _tree(raw)
        with open_store(folder) as store:
            reported = {p.name for p in store.verify(quarantine=False).problems}
            unreported += len({first, second, third, fourth} - reported)
            for rec in list(store.index.records()):
                with suppress(
                    Exception
                ):  # crafted rows fail to load: what counts is what they touch
                    store.load(rec)
        for rec in saved:
            cli(["show", "--store", str(folder), rec.key[:12]])
        cli(["verify", "--store", str(folder)])
        cli(["gc", "--store", str(folder), "--grace", "0", "--keep-runs", "0"])
        cli(["clear", "--store", str(folder), "--yes"])
        after = _tree(outside) | _tree(raw)
        touched += sum(before.get(name) != after.get(name) for name in before.keys() | after.keys())
    return {"fault": "crafted rows", "runs": rounds, "crafted_per_run": 4,
            "unreported": unreported, "outside_files_touched": touched, "lost": 0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--races", type=int, default=5)
    parser.add_argument("--leases", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--maintenance", type=int, default=5)
    parser.add_argument("--crafted", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="index and ledger in a throw-away PostgreSQL server (sigkill, race, lease and "
        "maintenance faults; the others are about files)",
    )
    parser.add_argument(
        "--s3",
        action="store_true",
        help="with --postgres: blobs in buckets of an S3 emulator (moto's server mode, a "
        "separate process), signed with INCGRAPH_HMAC_KEY",
    )
    args = parser.parse_args()
    if args.s3 and not args.postgres:
        parser.error("--s3 puts the blobs of a PostgreSQL store in a bucket: add --postgres")
    global POSTGRES
    if args.postgres:
        from tests.postgres_server import PostgresServer

        POSTGRES = PostgresServer().start()
    try:
        with ExitStack() as stack:
            if args.s3:
                use_s3_emulator(stack.enter_context(start_s3_server()))
            campaign(args)
    finally:
        if POSTGRES is not None:
            POSTGRES.stop()


def use_s3_emulator(endpoint: str) -> None:
    """Point this process (and the workers it starts) at the emulator; sign every blob."""
    global S3_ENDPOINT
    S3_ENDPOINT = endpoint
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "INCGRAPH_HMAC_KEY": os.environ.get("INCGRAPH_HMAC_KEY") or os.urandom(32).hex(),
        }
    )


def campaign(args: argparse.Namespace) -> None:
    """Run the faults ``args`` ask for and print their rows and table."""
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        zygote = Zygote(root / "zygote-stderr.txt")
        try:
            faults = [
                lambda: sigkill(zygote, root, args.kills, rng),
                lambda: race(zygote, root, args.races),
                lambda: lease(zygote, root, args.leases),
                lambda: enospc(root, args.rounds, rng),
                lambda: bitflip(root, args.rounds, rng),
                lambda: maintenance(zygote, root, args.maintenance),
                lambda: crafted(root, args.crafted, rng),
            ]
            if POSTGRES is not None:
                faults = [faults[0], faults[1], faults[2], faults[5]]
            for run in faults:
                started = time.perf_counter()
                row = run()
                row["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(row), flush=True)
                rows.append(row)
            locked = "locked" in zygote.errors()
        finally:
            zygote.close()
    print()
    print("| fault | runs | outcome | results lost | seconds |")
    print("|---|---:|---|---:|---:|")
    for row in rows:
        skip = {"fault", "runs", "lost", "seconds"}
        outcome = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in row.items() if k not in skip)
        print(f"| {row['fault']} | {row['runs']} | {outcome} | {row['lost']} | {row['seconds']} |")
    print(f"\n'database is locked' seen by any worker: {'yes' if locked else 'no'}")


if __name__ == "__main__":
    main()
