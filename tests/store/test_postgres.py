"""The PostgreSQL store: what only a shared database can get wrong (its contract suites run in
test_contracts.py, over the backend "postgres" of backends.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from incgraph import ProcessGraph, Processor
from incgraph.cli import main
from incgraph.errors import ConfigurationError, StoreError
from incgraph.store import open_store, postgres_database
from incgraph.store.postgres_database import PostgresDatabase
from incgraph.store.postgres_ledger import PostgresLedger

from .contract import dv, record
from .fault_worker import STEP_SECONDS, Zygote, check, race_graph


def raw(url: str, sql: str) -> list[Any]:
    """Rows of ``sql`` run straight on the database (autocommit), not through incgraph."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


# -- schema versions and consent ---------------------------------------------------------------


def test_a_database_without_a_store_is_refused_naming_the_command(
    postgres_url: str, tmp_path: Path
) -> None:
    """Opening an empty database without create=True raises, naming `incgraph migrate`, and
    creates nothing."""
    with pytest.raises(StoreError, match="incgraph migrate postgresql://"):
        open_store(postgres_url, blobs=tmp_path)
    assert (
        raw(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        == []
    )
    assert raw(postgres_url, "SELECT to_regclass('results')") == [(None,)]


def test_create_true_makes_the_tables_once_and_reopening_needs_no_consent(
    postgres_url: str, tmp_path: Path
) -> None:
    """create=True makes a store; it then opens without create and keeps what was saved."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        store.save(record(1, 11), [1, 2])
    with open_store(postgres_url, blobs=tmp_path) as store:
        assert store.load(store.lookup(dv(1))) == [1, 2]


def test_an_older_schema_is_refused_until_migrated(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer incgraph (one more migration) refuses the older tables, naming `incgraph migrate`;
    after the command the store opens and its results are still there."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        store.save(record(1, 11), "kept")
    newer = (*postgres_database.MIGRATIONS, ("ALTER TABLE results ADD COLUMN note text",))
    monkeypatch.setattr(postgres_database, "MIGRATIONS", newer)
    monkeypatch.setattr(postgres_database, "PG_SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match=r"schema version 1.*incgraph migrate"):
        open_store(postgres_url, blobs=tmp_path)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["migrate", postgres_url]) == 0
    assert "from schema version 1 to 2" in out.getvalue()
    with open_store(postgres_url, blobs=tmp_path) as store:
        assert store.load(store.lookup(dv(1))) == "kept"
    assert raw(postgres_url, "SELECT count(note) FROM results") == [(0,)]


def test_a_newer_schema_is_refused_asking_for_a_newer_incgraph(
    postgres_url: str, tmp_path: Path
) -> None:
    """Tables of a newer incgraph are refused (never written), asking to upgrade incgraph."""
    open_store(postgres_url, blobs=tmp_path, create=True).close()
    raw(postgres_url, "UPDATE incgraph_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="newer than this incgraph understands"):
        open_store(postgres_url, blobs=tmp_path)
    with pytest.raises(StoreError, match="upgrade incgraph"):
        postgres_database.migrate_postgres(postgres_url)


def test_tables_that_are_not_incgraphs_are_refused_and_left_alone(
    postgres_url: str, tmp_path: Path
) -> None:
    """A database already holding a table named ``results`` (someone else's) is never used."""
    raw(postgres_url, "CREATE TABLE results (id int)")
    with pytest.raises(StoreError, match="not incgraph's"):
        open_store(postgres_url, blobs=tmp_path, create=True)
    with pytest.raises(StoreError, match="not incgraph's"):
        postgres_database.migrate_postgres(postgres_url)
    assert raw(postgres_url, "SELECT to_regclass('leases')") == [(None,)]


def test_incgraph_migrate_creates_then_has_nothing_to_do(postgres_url: str) -> None:
    """`incgraph migrate URL` creates the tables, and says so; a second run does nothing."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["migrate", postgres_url]) == 0
        assert main(["migrate", postgres_url, "--json"]) == 0
    first, second = out.getvalue().split("\n", 1)
    assert first.startswith("created an incgraph store (schema version")
    assert '"before": 1' in second and '"after": 1' in second


def test_incgraph_migrate_refuses_a_folder(tmp_path: Path) -> None:
    """`incgraph migrate` of a folder path is a usage error (exit 2)."""
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["migrate", str(tmp_path)]) == 2
    assert "not a PostgreSQL URL" in err.getvalue()


def test_the_cli_reads_a_postgres_store_given_as_a_url(postgres_url: str, tmp_path: Path) -> None:
    """`incgraph ls --store URL --blobs PATH` lists the results saved in PostgreSQL."""
    with open_store(postgres_url, blobs=tmp_path / "blobs", create=True) as store:
        store.save(record(1, 11, node="the-node"), 5)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["ls", "--store", postgres_url, "--blobs", str(tmp_path / "blobs")])
    assert code == 0 and "the-node" in out.getvalue()


# -- URLs and credentials -------------------------------------------------------------------


def test_one_url_names_the_whole_store_for_a_graph(postgres_url: str, tmp_path: Path) -> None:
    """ProcessGraph(store="postgresql://...?blobs=PATH") computes once; a new graph on the same
    URL (another process would do the same) is all hits."""
    open_store(postgres_url, blobs=tmp_path / "b", create=True).close()
    url = f"{postgres_url}&blobs={tmp_path / 'b'}"
    first = add_graph(url)
    assert first[0].run_upto(first[1]) == 3 and len(first[0].last_run.computed) == 1
    assert first[0].store.location == url
    second = add_graph(first[0].store.location)
    assert second[0].run_upto(second[1]) == 3 and second[0].last_run.computed == []
    first[0].close()
    second[0].close()


def add_graph(store: Any) -> tuple[ProcessGraph, Any]:
    """A graph adding two constants, on ``store``."""
    graph = ProcessGraph(store=store)
    a = graph.add_constant_node("a", "a", value=1)
    b = graph.add_constant_node("b", "b", value=2)
    return graph, graph.add_node("sum", Add, {"a": a, "b": b})


class Add(Processor):
    """Adds two ints."""

    def process(self, a: int, b: int) -> int:
        return a + b


def test_a_nul_in_a_node_label_is_refused_naming_the_node(
    postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL text holds no NUL: a graph whose node label has one fails naming the node, the
    field and the fix, and the store stays usable for the other nodes."""
    store = open_store(postgres_url, blobs=tmp_path / "b", create=True)
    graph = ProcessGraph(store=store)
    a = graph.add_constant_node("a", "a", value=1)
    bad = graph.add_node("s\x00m", Add, {"a": a, "b": a})
    with pytest.raises(StoreError, match=r"node label holds a NUL character.*without it"):
        graph.run_upto(bad)
    good = graph.add_node("sum", Add, {"a": a, "b": a})
    assert graph.run_upto(good) == 2
    store.close()


def test_a_lone_surrogate_in_a_node_label_is_refused_naming_the_node(
    postgres_url: str, tmp_path: Path
) -> None:
    """A node label that is not UTF-8 (a lone surrogate) fails naming the node and the fix."""
    store = open_store(postgres_url, blobs=tmp_path / "b", create=True)
    graph = ProcessGraph(store=store)
    a = graph.add_constant_node("a", "a", value=1)
    bad = graph.add_node("s\ud800m", Add, {"a": a, "b": a})
    with pytest.raises(StoreError, match=r"lone surrogate.*without it"):
        graph.run_upto(bad)
    store.close()


def test_a_url_without_blobs_says_where_to_give_them(postgres_url: str) -> None:
    """A PostgreSQL URL with no blob folder raises a ConfigurationError showing both forms."""
    with pytest.raises(ConfigurationError, match=r"blobs=.*\?blobs="):
        open_store(postgres_url)


def test_a_password_never_appears_in_an_error(postgres_server: Any, tmp_path: Path) -> None:
    """A failed connection names the database with its password masked."""
    port = postgres_server.port
    url = f"postgresql://incgraph:s3cret@127.0.0.1:{port}/no_such_db?blobs={tmp_path}"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert "s3cret" not in str(caught.value) and ":***@" in str(caught.value)


def test_without_psycopg_the_error_says_what_to_install(postgres_url: str, tmp_path: Path) -> None:
    """Opening a PostgreSQL store where psycopg cannot be imported names the pip extra."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from incgraph.store import open_store\n"
        "from incgraph.errors import ExtraNotInstalledError\n"
        "try:\n"
        f"    open_store({postgres_url!r}, blobs={str(tmp_path)!r})\n"
        "except ExtraNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'incgraph[postgres]'" in done.stdout, done.stderr


# -- leases across machines ---------------------------------------------------------------------


def test_lease_expiry_is_judged_by_the_servers_clock(postgres_url: str, tmp_path: Path) -> None:
    """A claimant whose clock runs 500 s behind takes a 30 s lease; a claimant with the right
    clock sees it live for about 30 s, not expired 470 s ago, and cannot take it."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        skewed = PostgresDatabase(postgres_url)
        skewed.connection()
        skewed.clock_offset += 500.0  # its host's clock reads 500 s less than the server's
        behind = time.time() - 500.0
        PostgresLedger(skewed).claim([dv(1)], "skewed", expires=behind + 30, now=behind)
        state = store.ledger.lease_states([dv(1)])[dv(1)]
        assert time.time() + 20 < state.expires < time.time() + 40
        assert list(store.lessee().claim_many([dv(1)]).theirs) == [dv(1)]
        skewed.close()


def test_a_waiter_wakes_when_another_process_saves(postgres_url: str, tmp_path: Path) -> None:
    """wait_for_news returns True once another process commits a result (LISTEN/NOTIFY)."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        assert store.ledger.notifies and store.ledger.wait_for_news(5.0)  # starts listening
        assert not store.ledger.wait_for_news(0.05)  # nothing happened
        code = (
            "from incgraph.store import open_store, Record\n"
            f"s = open_store({postgres_url!r}, blobs={str(tmp_path)!r})\n"
            "s.save(Record('k', 'ab' * 16, 'n', 'p', 'c', 'i'), 1)\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        assert store.ledger.wait_for_news(30.0)


def test_a_claim_never_takes_a_key_whose_holder_saved_then_released(
    postgres_url: str, tmp_path: Path
) -> None:
    """Holder saves then releases; a claim after that is ``done``, and leaves no lease behind."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        holder, other = store.lessee(), store.lessee()
        assert holder.claim_many([dv(1)]).mine == [dv(1)]
        store.save(record(1, 11), 1)
        holder.release([dv(1)])
        claims = other.claim_many([dv(1), dv(2)])
        assert claims.done == {dv(1): dv(11)} and claims.mine == [dv(2)]
        assert list(store.ledger.lease_states()) == [dv(2)]
        other.close()


CLAIMER = """
import json, sys
from incgraph.store import open_store
url, blobs, out = sys.argv[1:]
store = open_store(url, blobs=blobs)
keys = [f"{i:032x}" for i in range(200)]
lessee = store.lessee()
print("ready", flush=True)
sys.stdin.readline()  # every claimer starts at once
mine = []
for start in range(0, 200, 7):
    chunk = keys[start:start + 7]
    mine += lessee.claim_many(chunk[::-1] if start % 2 else chunk).mine
json.dump(mine, open(out, "w"))
print("claimed", flush=True)
sys.stdin.readline()  # hold the leases until every claimer is done (an exited one's are free)
"""


def test_eight_processes_claiming_the_same_keys_get_each_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """8 processes claim 200 keys at the same instant, in chunks and orders that overlap: every
    key is ``mine`` for exactly one of them (no deadlock reaches anyone)."""
    open_store(postgres_url, blobs=tmp_path, create=True).close()
    outs = [tmp_path / f"claims{i}.json" for i in range(8)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, postgres_url, str(tmp_path), str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for step in ("ready", "claimed"):
        assert [proc.stdout.readline().strip() for proc in procs] == [step] * 8  # type: ignore[union-attr]
        for proc in procs:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * 8
    claimed = [key for out in outs for key in json.loads(out.read_text())]
    assert len(claimed) == 200 and len(set(claimed)) == 200


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The fault workers' zygote, its race-graph nodes taking 20 ms each."""
    os.environ[STEP_SECONDS] = "0.02"
    try:
        made = Zygote(tmp_path_factory.mktemp("zygote") / "stderr.txt")
    finally:
        del os.environ[STEP_SECONDS]
    yield made
    made.close()


def test_eight_processes_on_one_cold_graph_compute_each_node_once(
    zygote: Zygote, postgres_url: str, tmp_path: Path
) -> None:
    """8 processes x 2 threads run one cold graph of 20 ms nodes on one PostgreSQL store: each
    node computes once in all, and all 16 runs return the same result."""
    open_store(postgres_url, blobs=tmp_path / "blobs", create=True).close()
    url, log = f"{postgres_url}&blobs={tmp_path / 'blobs'}", tmp_path / "computed.log"
    start = time.time() + 1.0
    outs = [tmp_path / f"out{i}.json" for i in range(8)]
    pids = [
        zygote.fork("race", url, log, out, 2, "threads" if i % 2 else "serial", start)
        for i, out in enumerate(outs)
    ]
    assert [zygote.reap(pid) for pid in pids] == [0] * 8, zygote.errors()
    reports = [json.loads(out.read_text()) for out in outs]
    assert [r["errors"] for r in reports] == [[]] * 8
    results = [value for r in reports for value in r["results"]]
    assert len(results) == 16 and len(set(results)) == 1
    calls = Counter(line.split()[2] for line in log.read_text().splitlines())
    graph, sink = race_graph(":memory:", str(log))
    needed = {n.label for n in graph.topological_sort(sink) if not n.is_constant}
    assert set(calls) == needed and set(calls.values()) == {1}, calls


def test_a_foreach_flow_on_postgres_is_one_run_and_reruns_as_hits(
    postgres_url: str, tmp_path: Path
) -> None:
    """A ForEach flow writes through the session writer into PostgreSQL; the rerun is all hits."""
    from incgraph.flow import Flow, ForEach, Layer, Parameter

    class Squares(Flow): ...

    @Squares.register
    class Make(Layer):
        def __call__(self) -> None:
            self.shard(x=list(range(30)))

    @Squares.register(foreach=ForEach(parameters=[Parameter(layer=Make, attribute="x")]))
    class Square(Layer):
        def __call__(self, make: Make) -> None:
            self.y = make.x * make.x

    @Squares.register
    class Total(Layer):
        def __call__(self, square: Square) -> None:
            self.total = sum(square.y)

    store = open_store(postgres_url, blobs=tmp_path / "blobs", create=True)
    assert Squares(store=store)()[Total].total == sum(i * i for i in range(30))
    again = Squares(store=open_store(postgres_url, blobs=tmp_path / "blobs"))()
    assert again.computed == [] and again[Total].total == sum(i * i for i in range(30))
    assert [run.kind for run in store.runs()] == ["flow", "flow"]
    store.close()


# -- garbage collection beside writers ------------------------------------------------------------


def test_gc_never_deletes_a_blob_a_postgres_result_names(postgres_url: str, tmp_path: Path) -> None:
    """Blob deletion for gc asks PostgreSQL: a blob whose result is stored there is kept."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        saved = store.save(record(1, 11), [1, 2, 3])
        assert store.blobs.delete_many([saved.data_version], unreferenced=True) == 0
        store.gc(grace=0)
        assert store.load(store.lookup(dv(1))) == [1, 2, 3]


def test_a_save_whose_blob_vanished_before_its_commit_writes_it_again(
    postgres_url: str, tmp_path: Path
) -> None:
    """A blob deleted between its write and its row's commit (a gc beside the save) is written
    again before the row commits, so the row never names a missing blob."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        present, deleted = store.index.blobs_present, []

        def gc_strikes_first(data_versions: list[str]) -> set[str]:
            if not deleted:
                deleted.append(store.blobs.delete_many(data_versions))
            return present(data_versions)

        store.index.blobs_present = gc_strikes_first
        store.save(record(1, 11), {"x": 1})
        assert deleted == [1] and store.load(store.lookup(dv(1))) == {"x": 1}


def test_gc_and_verify_beside_writer_processes_lose_nothing(
    zygote: Zygote, postgres_url: str, tmp_path: Path
) -> None:
    """Two writer processes save results while this process runs verify and gc(grace=0) in a
    loop: no writer fails, every acknowledged result loads right, verify finds nothing."""
    url = f"{postgres_url}&blobs={tmp_path / 'blobs'}"
    open_store(url, create=True).close()
    acks, done = tmp_path / "acks", [tmp_path / f"done{w}" for w in range(2)]
    pids = [zygote.fork("write_n", url, w + 1, acks, 60, done[w]) for w in range(2)]
    problems = 0
    with open_store(url) as store:
        while not all(path.exists() for path in done):
            problems += len(store.verify().problems)
            store.gc(grace=0)
            if any(zygote_exited(pid) for pid in pids):
                break
    assert [zygote.reap(pid) for pid in pids] == [0, 0], zygote.errors()
    outcome = check(url, str(acks))
    assert (outcome["torn"], outcome["lost"], outcome["problems"], problems) == (0, 0, 0, 0)
    assert outcome["acked"] >= 120


def zygote_exited(pid: int) -> bool:
    """Whether the zygote's child ``pid`` is gone (it failed before writing its done file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] == "Z"


def test_a_postgres_store_is_shown_by_its_url_without_password(
    postgres_url: str, tmp_path: Path
) -> None:
    """repr() of a PostgreSQL store names its URL (password masked) and blob folder."""
    open_store(postgres_url, blobs=tmp_path, create=True).close()
    with_password = postgres_url.replace("incgraph@", "incgraph:pw@")
    with open_store(with_password, blobs=tmp_path) as store:
        shown = repr(store)
    assert shown.startswith("<Store postgresql://incgraph:***@") and "pw@" not in shown
    assert f"blobs={tmp_path}" in shown


FORKER = """
import os, sys
from incgraph.store import open_store, Record
store = open_store(sys.argv[1], blobs=sys.argv[2])
store.lookup("0" * 32)  # the parent's connection is open
store.ledger.wait_for_news(1.0)  # and its listening one
pid = os.fork()
if pid == 0:
    store.save(Record("1" * 32, "ab" * 16, "n", "p", "c", "i"), "from the child")
    store.ledger.wait_for_news(0.01)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
assert store.load(store.lookup("1" * 32)) == "from the child"
assert store.ledger.wait_for_news(30.0)  # the child's save reached the parent's listener
print("ok")
"""


def test_a_forked_child_uses_its_own_connections(postgres_url: str, tmp_path: Path) -> None:
    """A child forked from a process with open connections opens its own: both keep working."""
    open_store(postgres_url, blobs=tmp_path, create=True).close()
    done = subprocess.run(
        [sys.executable, "-c", FORKER, postgres_url, str(tmp_path)], capture_output=True, text=True
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_connection_the_server_dropped_is_replaced(postgres_url: str, tmp_path: Path) -> None:
    """When the server ends a session (a restart, a network cut), the call fails with a
    StoreError and the next one connects again."""
    with open_store(postgres_url, blobs=tmp_path, create=True) as store:
        store.save(record(1, 11), 1)
        pid = store.index.database.read_one("SELECT pg_backend_pid()")[0]
        raw(postgres_url, f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(StoreError):
            store.lookup(dv(1))
        assert store.lookup_version(dv(1)) == dv(11)
