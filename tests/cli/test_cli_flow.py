"""`ls` and `show` on a flow's store speak of layers, tasks and artifacts, not manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from incgraph.cli import main
from incgraph.flow import Flow, ForEach, Layer, Parameter


class F(Flow): ...


@F.register
class Data(Layer):
    def __call__(self) -> None:
        self.shard(x=[1, 2, 3])
        self.big = np.arange(100_000, dtype=np.int64)  # 800 KB, a blob of its own
        self.name = "dataset"


@F.register(foreach=ForEach(parameters=[Parameter(layer="Data", attribute="x")]))
class Work(Layer):
    def __call__(self, data: Data) -> None:
        self.y = data.x * 2


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store holding one run of a flow with a large artifact and a three-task ForEach."""
    F(store=tmp_path / "store")()
    return str(tmp_path / "store")


def test_ls_names_layers_and_counts_artifact_bytes(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Layers and tasks are named as such, and a layer's size includes its artifacts' blobs."""
    assert main(["--store", store, "ls"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines()[1:-1]}
    assert "flow: layer Data" in rows["F/Data"] and "800." in rows["F/Data"]
    assert "flow: task of layer Work" in rows["F/Work[0]"]
    assert "flow: ForEach join" in rows["F/Work"]
    assert "LayerProcessor" not in out
    assert out.splitlines()[-1].startswith("7 results, 80")  # the artifact counted once


def test_show_lists_a_layers_artifacts(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`show` on a layer's result lists each artifact: a value, a blob with its size, a shard."""
    assert main(["--store", store, "ls", "--json"]) == 0
    listed = {r["node"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["F/Data"]["label"] == "flow: layer Data"
    assert listed["F/Data"]["artifacts_size"] >= 800_000
    assert listed["F/Work"]["artifacts_size"] is None  # a join names its tasks, not blobs
    key = listed["F/Data"]["key"]
    assert main(["--store", store, "show", key]) == 0
    out = capsys.readouterr().out
    assert "processor     flow: layer Data (incgraph.flow.processors.LayerProcessor[Data])" in out
    assert "artifacts     big   blob " in out and "800.1 KB" in out
    assert "name  value 'dataset'" in out
    assert "x     shard of 3: 0 blob(s), 0 B" in out
    assert "Manifest" not in out


def test_show_json_gives_a_layers_artifacts_not_its_manifest(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show --json` on a layer's result maps artifact names to what they are, with no manifest."""
    assert main(["--store", store, "ls", "--json"]) == 0
    listed = {r["node"]: r for r in json.loads(capsys.readouterr().out)}
    assert main(["--store", store, "show", listed["F/Data"]["key"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["label"] == "flow: layer Data" and shown["value"] is None
    assert shown["artifacts"]["name"] == "value 'dataset'"
    assert shown["artifacts"]["x"] == "shard of 3: 0 blob(s), 0 B"
    assert shown["artifacts"]["big"].startswith("blob ") and "800.1 KB" in shown["artifacts"]["big"]
    assert "Manifest" not in json.dumps(shown)
