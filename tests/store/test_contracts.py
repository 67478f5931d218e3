"""Every store backend (tests/store/backends.py) passes every contract suite (contract.py)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from incgraph.settings import DEFAULT_SETTINGS, Settings
from incgraph.store import BlobStore, Index, Ledger, Store

from .backends import BACKENDS, Backend, MakeStore
from .contract import (
    BlobStoreContract,
    IndexContract,
    LedgerContract,
    RunLogContract,
    StoreContract,
)
from .writer_contract import WriterContract


@pytest.fixture(params=BACKENDS, ids=[backend.name for backend in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_store(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MakeStore]:
    """New stores of the test's backend, ``make_store(settings)``; closed at the end."""
    made: list[Store] = []

    def make(settings: Settings = DEFAULT_SETTINGS) -> Store:
        made.append(backend.make(request, tmp_path / f"store-{len(made)}", settings))
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    """A fresh, empty store of each backend."""
    return make_store()


class TestIndex(IndexContract):
    """The index of every backend."""


class TestBlobStore(BlobStoreContract):
    """The blob store of every backend."""


class TestLedger(LedgerContract):
    """The ledger of every backend (the SQLite one and the one in memory)."""


class TestRunLog(RunLogContract):
    """The run log over every backend's ledger."""


class TestStore(StoreContract):
    """Every backend assembled into a Store."""


class TestWriter(WriterContract):
    """The session writer over every backend."""


def _members(protocol: type) -> list[str]:
    """The names a protocol declares (methods and properties), without dunder names."""
    own = vars(protocol)
    return sorted(
        name
        for name, value in own.items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    )


def _parameters(function: object) -> list[tuple[str, object]]:
    """(name, kind) of a callable's parameters after ``self``."""
    found = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    return [(p.name, p.kind) for p in found[1:]]


@pytest.mark.parametrize("protocol", [Index, BlobStore, Ledger], ids=lambda p: p.__name__)
def test_every_part_has_every_protocol_member_with_its_parameters(
    protocol: type, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each backend's index, blob store and ledger define every member of their protocol, each
    method taking at least the protocol's parameters, by the same names and kinds."""
    attribute = {Index: "index", BlobStore: "blobs", Ledger: "ledger"}[protocol]
    for backend in BACKENDS:
        store = backend.make(request, tmp_path / backend.name, DEFAULT_SETTINGS)
        part = getattr(store, attribute)
        kind = type(part).__name__
        for name in _members(protocol):
            assert hasattr(part, name), f"{backend.name}: {kind} lacks {name}"
            declared = vars(protocol)[name]
            if isinstance(declared, property):
                continue
            theirs = _parameters(getattr(type(part), name))
            mine = _parameters(declared)
            assert theirs[: len(mine)] == mine, f"{backend.name}: {kind}.{name}"
            extra = [kind for _, kind in theirs[len(mine) :]]
            assert all(kind == inspect.Parameter.KEYWORD_ONLY for kind in extra), name
        store.close()
