"""The one settings object: defaults, checked replacement, and stores and graphs that follow it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

from incgraph import (
    DEFAULT_SETTINGS,
    ConfigurationError,
    ProcessGraph,
    Processor,
    Settings,
    memory_store,
    open_store,
)
from incgraph.settings import __doc__ as SETTINGS_DOC

DOCS = Path(__file__).resolve().parent.parent / "docs"


class Inc(Processor):
    def process(self, x: int) -> int:
        return x + 1


def test_defaults_are_the_documented_values() -> None:
    """DEFAULT_SETTINGS equals Settings() and holds the documented defaults."""
    assert Settings() == DEFAULT_SETTINGS
    assert DEFAULT_SETTINGS.claim_ahead == 512
    assert DEFAULT_SETTINGS.lease_min_seconds == 0.001
    assert DEFAULT_SETTINGS.lease_ttl_seconds == 30.0
    assert DEFAULT_SETTINGS.blob_inline_limit_bytes == 32 * 1024
    assert DEFAULT_SETTINGS.row_inline_limit_bytes == 1024
    assert DEFAULT_SETTINGS.gc_grace_seconds == 600.0
    assert DEFAULT_SETTINGS.changed() == {}


def test_settings_are_frozen() -> None:
    """A Settings cannot be changed in place: replace returns a copy and leaves the original."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SETTINGS.claim_ahead = 3  # type: ignore[misc]
    tuned = DEFAULT_SETTINGS.replace(claim_ahead=3, gc_grace_seconds=0)
    assert (tuned.claim_ahead, tuned.gc_grace_seconds) == (3, 0)
    assert DEFAULT_SETTINGS.claim_ahead == 512
    assert tuned.changed() == {"claim_ahead": 3, "gc_grace_seconds": 0}
    assert repr(tuned) == "Settings(claim_ahead=3, gc_grace_seconds=0)"
    assert dataclasses.replace(DEFAULT_SETTINGS, claim_ahead=4).claim_ahead == 4


def test_unknown_setting_names_the_closest() -> None:
    """replace() with an unknown name raises TypeError naming it and the closest real field."""
    with pytest.raises(TypeError, match=r"unknown setting 'claim_ahaed'.*'claim_ahead'"):
        DEFAULT_SETTINGS.replace(claim_ahaed=10)
    with pytest.raises(TypeError, match="unknown setting 'zzz'"):
        DEFAULT_SETTINGS.replace(zzz=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("claim_ahead", 0),
        ("index_put_chunk", -1),
        ("blob_inline_limit_bytes", -1),
        ("batch_keep_bytes", -5),
        ("gc_grace_seconds", -0.5),
        ("lease_ttl_seconds", 0),
        ("watchdog_poll_seconds", math.inf),
        ("lease_min_seconds", math.nan),
    ],
)
def test_out_of_range_values_are_refused(name: str, value: float) -> None:
    """A zero chunk, a negative size or time, or a non-finite time raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match=rf"setting {name} must be"):
        DEFAULT_SETTINGS.replace(**{name: value})
    with pytest.raises(ValueError, match=name):
        Settings(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("claim_ahead", 2.5),
        ("queue_capacity", "10"),
        ("gc_grace_seconds", None),
        ("claim_ahead", True),
    ],
)
def test_wrong_types_are_refused(name: str, value: object) -> None:
    """A value of the wrong type (a float chunk, a string, None, a bool) raises TypeError."""
    with pytest.raises(TypeError, match=rf"setting {name} must be"):
        DEFAULT_SETTINGS.replace(**{name: value})


def test_zero_is_allowed_where_it_means_something() -> None:
    """Zero grace, zero retries and zero inline limits are valid settings."""
    tuned = DEFAULT_SETTINGS.replace(
        gc_grace_seconds=0, sqlite_io_retries=0, blob_inline_limit_bytes=0, lease_min_seconds=0
    )
    assert tuned.sqlite_io_retries == 0
    never = DEFAULT_SETTINGS.replace(prompt_write_seconds=math.inf)
    assert never.prompt_write_seconds == math.inf


def test_first_poll_longer_than_the_longest_is_refused() -> None:
    """The lease poll cannot start longer than its maximum."""
    with pytest.raises(ConfigurationError, match="lease_first_poll_seconds"):
        DEFAULT_SETTINGS.replace(lease_first_poll_seconds=1.0, lease_max_poll_seconds=0.5)


def test_every_field_is_documented() -> None:
    """Every field appears in the module's table and in docs/store.md's settings table."""
    store_doc = (DOCS / "store.md").read_text()
    for spec in dataclasses.fields(Settings):
        assert re.search(rf"^{spec.name}\s", SETTINGS_DOC or "", re.M), spec.name
        assert f"| `{spec.name}` |" in store_doc, spec.name


def test_stores_keep_the_settings_they_were_opened_with(tmp_path: Path) -> None:
    """open_store and memory_store keep their settings on the object; the default is DEFAULT_SETTINGS."""
    tuned = DEFAULT_SETTINGS.replace(gc_grace_seconds=5)
    with open_store(tmp_path / "a", settings=tuned) as store:
        assert store.settings is tuned
    with open_store(tmp_path / "a") as store:  # not remembered in the folder
        assert store.settings is DEFAULT_SETTINGS
    assert memory_store(settings=tuned).settings is tuned
    assert memory_store().settings is DEFAULT_SETTINGS


def test_lease_seconds_argument_overrides_the_setting(tmp_path: Path) -> None:
    """open_store(lease_seconds=) sets lease_ttl_seconds; without it the setting decides."""
    tuned = DEFAULT_SETTINGS.replace(lease_ttl_seconds=7.0)
    with open_store(tmp_path / "a", settings=tuned) as store:
        assert store.lease_seconds == 7.0
    with open_store(tmp_path / "a", settings=tuned, lease_seconds=3.0) as store:
        assert store.lease_seconds == 3.0 == store.settings.lease_ttl_seconds


def test_tiny_inline_limits_put_a_small_result_in_a_file(tmp_path: Path) -> None:
    """With zero inline limits, even a small result is written to a blob file of its own."""

    def files(folder: Path) -> list[Path]:
        return [p for p in (folder / "blobs").rglob("*") if p.is_file()]

    tiny = DEFAULT_SETTINGS.replace(blob_inline_limit_bytes=0, row_inline_limit_bytes=0)
    for folder, settings, expected in ((tmp_path / "tiny", tiny, 1), (tmp_path / "std", None, 0)):
        graph = ProcessGraph(store=folder, settings=settings)
        node = graph.add_node(1, Inc, {"x": 41})
        assert graph.run_upto(node) == 42
        graph.close()
        assert len(files(folder)) == expected, folder
        with open_store(folder) as store:  # read back with default settings
            graph = ProcessGraph(store=store)
            node = graph.add_node(1, Inc, {"x": 41})
            assert graph.run_upto(node) == 42
            assert graph.last_run.computed == []


def test_graph_settings_override_the_stores_for_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph's settings tune its runs even when its store was opened with other settings.

    The store says every recompute is leased (lease_min_seconds=0); a graph saying
    computes under 50 ms need no lease recomputes its cheap chain without one claim.
    """
    from incgraph.store.leases import Lessee

    claimed: list[str] = []
    claim_many = Lessee.claim_many

    def recording(self: Lessee, keys: Any, **kw: Any) -> Any:
        keys = list(keys)
        claimed.extend(keys)
        return claim_many(self, keys, **kw)

    monkeypatch.setattr(Lessee, "claim_many", recording)
    always = DEFAULT_SETTINGS.replace(lease_min_seconds=0)
    cheap_under_50ms = DEFAULT_SETTINGS.replace(lease_min_seconds=0.05)

    def recompute_claims(settings: Settings | None) -> int:
        with open_store(tmp_path / "s", settings=always) as store:
            for seed in (len(claimed), len(claimed) + 10**6):  # cold, then every node changed
                graph = ProcessGraph(store=store, settings=settings)
                nodes = [graph.add_constant_node(0, "seed", value=seed)]
                for i in range(1, 41):
                    nodes.append(graph.add_node(i, Inc, {"x": nodes[-1]}))
                claimed.clear()
                graph.run_upto(nodes[-1])
                assert graph.settings is (store.settings if settings is None else settings)
            return len(claimed)

    assert recompute_claims(None) == 40  # the store's settings: every recompute leased
    assert recompute_claims(cheap_under_50ms) == 0  # the graph's: known-cheap nodes are not


def test_graph_rejects_settings_of_another_type() -> None:
    """ProcessGraph(settings=) refuses a dict, saying how to build a Settings."""
    with pytest.raises(TypeError, match=r"incgraph\.Settings"):
        ProcessGraph(store=":memory:", settings={"claim_ahead": 1})  # type: ignore[arg-type]


def test_graph_opens_its_memory_store_with_its_settings() -> None:
    """A graph given settings and ':memory:' opens its store with those settings."""
    tuned = DEFAULT_SETTINGS.replace(run_log_limit=3)
    graph = ProcessGraph(store=":memory:", settings=tuned)
    assert graph.store.settings is tuned is graph.settings


def test_sessions_follow_the_settings_they_are_given() -> None:
    """A session takes the settings given (else its store's); a part takes its owner's."""
    store = memory_store(settings=DEFAULT_SETTINGS.replace(lease_ttl_seconds=9.0))
    tuned = DEFAULT_SETTINGS.replace(lease_ttl_seconds=4.0)
    with store.session("run", "plain") as plain:
        assert plain.settings is store.settings
        assert plain.lessee.ttl == 9.0
    with store.session("flow", "tuned", settings=tuned) as run, run.as_current():
        part = store.session("run", "wave", settings=DEFAULT_SETTINGS)
        assert run.settings is tuned is part.settings
        assert run.lessee.ttl == 4.0
