"""DataPath inputs in every front-end: editing the file recomputes, touching it does not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import incgraph.queues as iq
from incgraph import DataPath, HashingError, ProcessGraph, Processor
from incgraph.flow import Flow, ForEach, Layer, Parameter

CALLS: list[str] = []


class Total(Processor):
    def process(self, csv: DataPath) -> int:
        CALLS.append(csv.name)
        rows = csv.read_text().splitlines()[1:]
        return sum(int(r.split(",")[1]) for r in rows)


class Count(Processor):
    def __init__(self, vocab: DataPath) -> None:
        self.words = vocab.read_text().split()

    def process(self, text: str) -> int:
        CALLS.append(text)
        return sum(w in self.words for w in text.split())


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def _csv(path: Path, *values: int) -> Path:
    path.write_text("name,value\n" + "".join(f"r{i},{v}\n" for i, v in enumerate(values)))
    return path


def test_inline_datapath_recomputes_on_edit_not_on_touch(tmp_path: Path) -> None:
    """The same graph rerun: an edit recomputes, a touch is a hit, the old bytes hit again."""
    csv = _csv(tmp_path / "t.csv", 1, 2)
    g = ProcessGraph(store=tmp_path / "store")
    node = g.add_node(1, Total, {"csv": DataPath(csv)})
    assert g.run_upto(node) == 3
    _csv(csv, 1, 5)
    assert g.run_upto(node) == 6
    os.utime(csv, ns=(10**18, 10**18))
    assert g.run_upto(node) == 6
    _csv(csv, 1, 2)
    assert g.run_upto(node) == 3
    assert CALLS == ["t.csv", "t.csv"]


def test_constant_node_holding_a_datapath(tmp_path: Path) -> None:
    """A constant node set once to a DataPath sees the file's edits at the next run."""
    csv = _csv(tmp_path / "t.csv", 4)
    g = ProcessGraph(store=tmp_path / "store")
    const = g.add_constant_node(0, "csv", value=DataPath(csv))
    node = g.add_node(1, Total, {"csv": const})
    assert g.run_upto(node) == 4
    _csv(csv, 7)
    assert g.run_upto(node) == 7
    assert g.run_upto(node) == 7
    assert CALLS == ["t.csv", "t.csv"]


def test_datapath_in_init_kwargs(tmp_path: Path) -> None:
    """A file passed as an init kwarg (a vocabulary, weights) is part of the key by content."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat dog")
    g = ProcessGraph(store=tmp_path / "store")
    node = g.add_node(1, Count, {"text": "cat and dog and eel"}, {"vocab": DataPath(vocab)})
    assert g.run_upto(node) == 2
    assert g.run_upto(node) == 2
    vocab.write_text("cat dog eel")
    assert g.run_upto(node) == 3
    assert len(CALLS) == 2


def test_datapath_batch_items(tmp_path: Path) -> None:
    """process_batch over file items: only the edited file's item computes again."""
    files = [_csv(tmp_path / f"{i}.csv", i) for i in range(3)]
    g = ProcessGraph(store=tmp_path / "store")
    const = g.add_constant_node(0, "csv")
    node = g.add_node(1, Total, {"csv": const})

    def prep_fn(i: int, item: Path) -> None:
        const.set_value(DataPath(item))

    g.process_batch(files, [node], prep_fn)
    _csv(files[1], 10)
    stats = g.process_batch(files, [node], prep_fn)
    assert CALLS == ["0.csv", "1.csv", "2.csv", "1.csv"]
    assert stats.nodes[node].cached == 2


def test_missing_file_names_the_node_and_input(tmp_path: Path) -> None:
    """A DataPath to nothing fails the run with the node, the input and the path named."""
    g = ProcessGraph(store=tmp_path / "store")
    node = g.add_node(7, Total, {"csv": DataPath(tmp_path / "absent.csv")})
    with pytest.raises(HashingError, match=r"node 7 \(Total\): input 'csv'.*absent.csv' does not"):
        g.run_upto(node)


def test_datapath_queue_items(tmp_path: Path) -> None:
    """A queue pipeline over DataPath items recomputes exactly the edited file's item."""
    files = [_csv(tmp_path / f"{i}.csv", i) for i in range(3)]

    def total(csv: DataPath) -> int:
        CALLS.append(csv.name)
        return sum(int(r.split(",")[1]) for r in csv.read_text().splitlines()[1:])

    def run() -> list[int]:
        p = iq.Pipeline(store=tmp_path / "store")
        out = p.map(total, iq.Queue([DataPath(f) for f in files]))
        p.run()
        return list(out)

    assert run() == [0, 1, 2]
    _csv(files[2], 20)
    assert run() == [0, 1, 20]
    assert CALLS == ["0.csv", "1.csv", "2.csv", "2.csv"]


class Files(Flow): ...


@Files.register
class Load(Layer):
    def __call__(self) -> None:
        path = self.params.data
        CALLS.append(path.name)
        self.rows = path.read_text().splitlines()[1:]


def test_datapath_flow_parameter(tmp_path: Path) -> None:
    """A flow parameter holding a DataPath: an edit recomputes the layer, a rerun is a hit."""
    csv = _csv(tmp_path / "t.csv", 1)
    flow = Files(store=tmp_path / "store")
    assert flow(data=DataPath(csv))[Load].rows == ["r0,1"]
    assert flow(data=DataPath(csv)).computed == []
    _csv(csv, 2)
    run = flow(data=DataPath(csv))
    assert run.computed == ["Load"] and run[Load].rows == ["r0,2"]


PIPELINE = textwrap.dedent(
    """
    import sys
    import incgraph.queues as iq
    from incgraph import DataPath

    def parse(csv):
        rows = csv.read_text().splitlines()[1:]
        return sum(int(r.split(",")[1]) for r in rows)

    p = iq.Pipeline(store=sys.argv[1])
    out = p.map(parse, iq.Queue([DataPath(sys.argv[2])]))
    report = p.run()
    if report.failures:
        print("failed", type(report.failures[0].exception).__name__)
    else:
        print("total", list(out)[0], "computed", report.computed)
    """
)


def test_fixing_a_csv_between_processes_recomputes(tmp_path: Path) -> None:
    """A broken CSV fails; fixed on disk, the next process recomputes; a rerun is a hit."""
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    csv = tmp_path / "data.csv"
    csv.write_text("name,value\na,1\nb,oops\n")

    def run() -> str:
        out = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "store"), str(csv)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        return out.stdout.strip()

    assert run() == "failed ValueError"
    csv.write_text("name,value\na,1\nb,2\n")
    assert run() == "total 3 computed 1"
    assert run() == "total 3 computed 0"
    csv.write_text("name,value\na,1\nb,5\n")
    assert run() == "total 6 computed 1"


def test_datapath_memoized_argument(tmp_path: Path) -> None:
    """A memoized function called with a DataPath recomputes when the file is edited."""
    import incgraph

    f = _csv(tmp_path / "m.csv", 2)

    @incgraph.memoize(store=tmp_path / "store")
    def total(csv: DataPath) -> int:
        CALLS.append(csv.name)
        return sum(int(r.split(",")[1]) for r in csv.read_text().splitlines()[1:])

    assert total(DataPath(f)) == 2 and total(DataPath(f)) == 2
    _csv(f, 9)
    assert total(DataPath(f)) == 9
    assert CALLS == ["m.csv", "m.csv"]


def test_missing_file_as_flow_parameter_names_it(tmp_path: Path) -> None:
    """A flow parameter that is a DataPath to nothing fails before any layer runs, named."""
    flow = Files(store=tmp_path / "store")
    with pytest.raises(HashingError, match=r"flow parameter 'data'.*absent.csv' does not exist"):
        flow(data=DataPath(tmp_path / "absent.csv"))
    assert CALLS == []


class FanOut(Flow): ...


@FanOut.register
class Listed(Layer):
    def __call__(self) -> None:
        self.shard(csv=self.params.files)


@FanOut.register(foreach=ForEach(parameters=[Parameter(layer=Listed, attribute="csv")]))
class Parse(Layer):
    def __call__(self, listed: Listed) -> None:
        CALLS.append(listed.csv.name)
        self.total = sum(int(r.split(",")[1]) for r in listed.csv.read_text().splitlines()[1:])


def test_foreach_over_datapath_parameters_recomputes_only_the_edited_file(tmp_path: Path) -> None:
    """DataPaths passed as a flow parameter and sharded: editing one file recomputes its task."""
    files = [_csv(tmp_path / f"{i}.csv", i) for i in range(3)]
    flow = FanOut(store=tmp_path / "store")
    assert list(flow(files=[DataPath(f) for f in files])[Parse].total) == [0, 1, 2]
    assert flow(files=[DataPath(f) for f in files]).computed == []
    _csv(files[1], 10)
    run = flow(files=[DataPath(f) for f in files])
    assert list(run[Parse].total) == [0, 10, 2]
    assert [c for c in run.computed if c.startswith("Parse[")] == ["Parse[1]"]
    assert CALLS == ["0.csv", "1.csv", "2.csv", "1.csv"]


class Lines(Processor):
    def process(self, csv: Path) -> int:
        CALLS.append(csv.name)
        return len(csv.read_text().splitlines())


def test_an_input_annotated_path_takes_a_datapath(tmp_path: Path) -> None:
    """A processor annotated `csv: Path` accepts a DataPath, and an edit recomputes it."""
    csv = _csv(tmp_path / "t.csv", 1)
    g = ProcessGraph(store=tmp_path / "store")
    node = g.add_node(1, Lines, {"csv": DataPath(csv)})
    assert g.run_upto(node) == 2
    _csv(csv, 1, 2)
    assert g.run_upto(node) == 3
    const = g.add_constant_node("c", "csv", value=DataPath(csv))
    assert g.run_upto(g.add_node(2, Lines, {"csv": const})) == 3
    assert CALLS == ["t.csv", "t.csv"]
