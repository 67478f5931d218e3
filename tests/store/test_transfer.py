"""push / pull copy results with their lineage between stores: another machine reruns all hits."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from incgraph import ProcessGraph, Processor
from incgraph.cli import main
from incgraph.errors import NotCachedError
from incgraph.flow import Flow, ForEach, Layer, Parameter
from incgraph.store import Store, open_store
from incgraph.store.object_blobs import ObjectBlobStore
from incgraph.store.transfer import pull, push, transfer

KEY = "team-secret"
CALL_LOG = os.path.join(tempfile.gettempdir(), f"incgraph-transfer-{os.getpid()}.log")
"""Where computations note themselves (a file: a list would be state in the code)."""


def note(name: str) -> None:
    with open(CALL_LOG, "a") as handle:
        handle.write(name + "\n")


def calls() -> list[str]:
    """The computations noted since the last call."""
    try:
        with open(CALL_LOG) as handle:
            found = handle.read().split()
    except FileNotFoundError:
        return []
    os.unlink(CALL_LOG)
    return found


class Load(Processor):
    def process(self, n: int) -> list[int]:
        note("Load")
        return list(range(n))


class Total(Processor):
    def process(self, xs: list[int]) -> int:
        note("Total")
        return sum(xs)


def run_graph(store: Store, n: int = 5000) -> int:
    """Build and run the two-node graph on ``store``; return the total."""
    graph = ProcessGraph(store=store)
    size = graph.add_constant_node("n", "n", n)
    load = graph.add_node("load", Load, {"n": size})
    total = graph.add_node("total", Total, {"xs": load})
    result: int = graph.run_upto(total)
    return result


def remote(tmp_path: Path, bucket: str) -> Store:
    """The team's store: an index folder beside a bucket."""
    return open_store(tmp_path / "remote", blobs=bucket, hmac_key=KEY)


def test_push_then_pull_on_another_machine_is_all_hits(tmp_path: Path, s3_bucket: str) -> None:
    """Results pushed to a bucket store and pulled into a fresh folder rerun with nothing computed."""
    calls()
    with open_store(tmp_path / "laptop") as laptop:
        assert run_graph(laptop) == sum(range(5000))
    assert calls() == ["Load", "Total"]
    report = push(remote(tmp_path, s3_bucket), local=tmp_path / "laptop")
    assert len(report.results) == 2 and report.present == []
    with open_store(tmp_path / "other-machine") as other:
        pulled = pull(remote(tmp_path, s3_bucket), local=other)
        assert len(pulled.results) == 2
        assert run_graph(other) == sum(range(5000))
    assert calls() == []


def test_the_remote_store_itself_serves_hits(tmp_path: Path, s3_bucket: str) -> None:
    """A graph run on the remote store after a push computes nothing (blobs through the cache)."""
    calls()
    with open_store(tmp_path / "laptop") as laptop:
        run_graph(laptop)
    calls()
    with remote(tmp_path, s3_bucket) as team:
        push(team, local=tmp_path / "laptop")
        assert run_graph(team) == sum(range(5000))
    assert calls() == []


def test_push_follows_lineage_upstream(tmp_path: Path) -> None:
    """Pushing the downstream key alone copies the upstream result its input came from."""
    calls()
    with open_store(tmp_path / "a") as here:
        run_graph(here)
        total = here.latest_for_node("total")
        report = transfer(here, open_store(tmp_path / "b"), [total.key])  # type: ignore[union-attr]
    assert len(report.results) == 2
    calls()
    with open_store(tmp_path / "b") as there:
        run_graph(there)
    assert calls() == []


def test_push_is_idempotent(tmp_path: Path) -> None:
    """Pushing twice copies nothing the second time and changes nothing stored."""
    with open_store(tmp_path / "a") as here:
        run_graph(here)
    first = push(tmp_path / "b", local=tmp_path / "a")
    second = push(tmp_path / "b", local=tmp_path / "a")
    assert len(first.results) == 2 and second.results == [] and len(second.present) == 2


def test_interrupted_push_resumes(tmp_path: Path) -> None:
    """A push stopped after some results leaves the target consistent; the next push completes it."""
    with open_store(tmp_path / "a") as here:
        run_graph(here)
        records = sorted(here.index.records(), key=lambda r: r.created)
        with open_store(tmp_path / "b") as there:
            transfer(here, there, [records[0].key])  # the upstream one only: "interrupted"
            assert len(there.index) == 1
            rest = transfer(here, there)
            assert len(rest.results) == 1 and len(rest.present) == 1
    calls()
    with open_store(tmp_path / "b") as there:
        run_graph(there)
    assert calls() == []


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    """Pushing a key the local store does not hold raises NotCachedError naming it."""
    with open_store(tmp_path / "a") as here, pytest.raises(NotCachedError, match="nope"):
        transfer(here, open_store(tmp_path / "b"), ["nope"])


def make_flow() -> tuple[type[Flow], type[Layer], type[Layer]]:
    """A flow whose artifacts are blobs referenced by its manifests, with a ForEach of three."""

    class Grid(Flow): ...

    @Grid.register
    class Data(Layer):
        def __call__(self) -> None:
            note("Data")
            self.table = list(range(3000))
            self.shard(rows=[[i] * 40 for i in range(3)])

    @Grid.register(foreach=ForEach(parameters=[Parameter(layer=Data, attribute="rows")]))
    class Fit(Layer):
        def __call__(self, data: Data) -> None:
            note("Fit")
            self.model = [x * 2 for x in data.rows] + data.table[:3]

    return Grid, Data, Fit


def test_flow_artifacts_travel_with_their_results(tmp_path: Path, s3_bucket: str) -> None:
    """A Flow with a ForEach pushed to a bucket store and pulled elsewhere reruns all hits, artifacts intact."""
    calls()
    Grid, Data, Fit = make_flow()
    with open_store(tmp_path / "laptop") as laptop:
        Grid(store=laptop)()
    assert sorted(calls()) == ["Data", "Fit", "Fit", "Fit"]
    push(remote(tmp_path, s3_bucket), local=tmp_path / "laptop")
    pull(remote(tmp_path, s3_bucket), local=tmp_path / "other")
    with open_store(tmp_path / "other") as other:
        execution = Grid(store=other)()
        assert execution[Data].table == list(range(3000))
        assert execution.layer(Fit, index=2).model[:2] == [4, 4]
    assert calls() == []


def test_cli_push_and_pull(
    tmp_path: Path,
    s3_bucket: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`incgraph push` and `incgraph pull` copy a store's results through a bucket store."""
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", KEY)  # the team's key, set for every store
    with open_store(tmp_path / "laptop") as laptop:
        run_graph(laptop)
    remote_args = [str(tmp_path / "remote"), "--remote-blobs", s3_bucket]
    assert main(["push", *remote_args, "--store", str(tmp_path / "laptop")]) == 0
    assert "2 results copied" in capsys.readouterr().out
    assert main(["pull", *remote_args, "--store", str(tmp_path / "other"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 2
    calls()
    with open_store(tmp_path / "other") as other:
        run_graph(other)
    assert calls() == []


def test_cli_reads_a_store_by_its_s3_url(
    tmp_path: Path,
    s3_bucket: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`incgraph ls --store s3://...` lists the results of the store opened by that URL; no key, no read."""
    with open_store(s3_bucket, hmac_key=KEY) as store:
        run_graph(store)
    assert main(["ls", "--store", s3_bucket]) == 2
    assert "INCGRAPH_HMAC_KEY" in capsys.readouterr().err
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", KEY)
    assert main(["ls", "--store", s3_bucket]) == 0
    assert "total" in capsys.readouterr().out


def test_postgres_index_with_bucket_blobs_shares_results(
    tmp_path: Path, s3_bucket: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL index beside a bucket: a push from a laptop makes a fresh machine's run all hits."""
    with open_store(tmp_path / "laptop", hmac_key=KEY) as laptop:
        run_graph(laptop)
    with open_store(postgres_url, blobs=s3_bucket, hmac_key=KEY, create=True) as team:
        assert isinstance(team.blobs, ObjectBlobStore)
        assert len(push(team, local=tmp_path / "laptop").results) == 2
    monkeypatch.setenv("INCGRAPH_INDEX_HOME", str(tmp_path / "another-machine"))
    calls()
    with open_store(postgres_url, blobs=s3_bucket, hmac_key=KEY) as team:
        assert run_graph(team) == sum(range(5000))
    assert calls() == []


def test_gc_of_a_postgres_store_with_bucket_blobs_keeps_named_blobs(
    tmp_path: Path, s3_bucket: str, postgres_url: str
) -> None:
    """gc on a PostgreSQL index beside a bucket deletes only objects no result names."""
    from incgraph.store.store import Record

    with open_store(postgres_url, blobs=s3_bucket, hmac_key=KEY, create=True) as team:
        saved = team.save(Record("k" * 32, "ab" * 16, "n", "p", "c", "i"), list(range(100)))
        team.blobs.put("cd" * 16, [1, 2, 3])  # an orphan: no result names it
        team.gc(grace=0)
        assert team.blobs.contains(saved.data_version)
        assert not team.blobs.contains("cd" * 16)
        assert team.load(saved) == list(range(100))


PUSH_SCRIPT = """
import sys
from incgraph.store import open_store
from incgraph.store.transfer import push
push(open_store(sys.argv[2], blobs=sys.argv[3], hmac_key="team-secret"), local=sys.argv[1])
"""


@pytest.mark.parametrize("delay", [0.6, 0.9, 1.2])
def test_push_killed_at_any_moment_leaves_every_row_loadable(tmp_path: Path, delay: float) -> None:
    """A push SIGKILLed mid-way leaves only index rows whose results load; pushing again completes it."""
    import signal
    import subprocess
    import sys

    from incgraph.store.store import Record

    with open_store(tmp_path / "laptop") as laptop:
        laptop.save_many(
            [
                (Record(f"{n:032x}", f"{n + 1000:032x}", f"n{n}", "p", "c", "i"), [n] * 3000)
                for n in range(120)
            ]
        )
    objects = f"file://{tmp_path / 'objects'}"
    args = [
        sys.executable,
        "-c",
        PUSH_SCRIPT,
        str(tmp_path / "laptop"),
        str(tmp_path / "team"),
        objects,
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(args, env=env)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with open_store(tmp_path / "team", blobs=objects, hmac_key=KEY) as team:
        for record in team.index.records():
            assert team.load(record) == [int(record.node[1:])] * 3000
        push(team, local=tmp_path / "laptop")
        assert len(team.index) == 120
        assert all(team.load(r) == [int(r.node[1:])] * 3000 for r in team.index.records())


def test_cli_default_store_may_be_a_bucket_url(
    tmp_path: Path,
    s3_bucket: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With $INCGRAPH_STORE=s3://..., `incgraph ls` without --store lists that store's results."""
    monkeypatch.setenv("INCGRAPH_HMAC_KEY", KEY)
    monkeypatch.setenv("INCGRAPH_STORE", s3_bucket)
    with open_store() as store:
        run_graph(store)
    assert main(["ls"]) == 0
    assert "total" in capsys.readouterr().out
