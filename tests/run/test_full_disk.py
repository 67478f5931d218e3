"""A full disk stops a batch with StoreFullError, and its leases never hold up the rerun.

Where a tmpfs can be mounted (as root, outside a locked-down container) the
disk is a real, small tmpfs filled up to the last 200 KB, so SQLite itself runs
out of room while the batch writes its results and then again while it releases
its leases. Elsewhere the same two failures are raised through the store's own
translation of ENOSPC (result writes and lease writes fail).
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from incgraph import Processor
from incgraph.errors import StoreFullError
from incgraph.graph import ProcessGraph
from incgraph.store import Store
from incgraph.store.failure import store_error
from incgraph.store.sqlite_ledger import SqliteLedger

ITEMS = list(range(100))


class Page(Processor):
    """A 3 KB result per item (kept in SQLite, whose file then fills the disk).

    It takes longer than a lease costs (a few milliseconds), so its items are leased.
    """

    def process(self, i: int) -> str:
        time.sleep(0.003)
        return str(i) + "x" * 3000


@contextmanager
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Any]]:
    """(store folder, ``fill()``, ``free()``): a store on a disk that can be filled, then freed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mounted_tmpfs(disk):  # not root, or a container that may not mount
        yield tmp_path / "store", *_failing_writes(monkeypatch)
        return
    filler = disk / "filler"

    def fill() -> None:
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        os.truncate(filler, filler.stat().st_size - 200_000)

    try:
        yield disk / "store", fill, lambda: filler.unlink()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _mounted_tmpfs(disk: Path) -> bool:
    """Mount a 6 MB tmpfs on ``disk``; whether that was allowed."""
    if os.geteuid() != 0:
        return False
    command = ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)]
    try:
        done = subprocess.run(command, capture_output=True, check=False)
    except OSError:  # no mount command
        return False
    return done.returncode == 0


def _failing_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[Callable[[], None], Any]:
    def enospc(*args: Any, **kwargs: Any) -> Any:
        raise store_error(OSError(errno.ENOSPC, "No space left on device"), "index.sqlite")

    def fill() -> None:
        monkeypatch.setattr(Store, "save_many", enospc)
        monkeypatch.setattr(SqliteLedger, "release", enospc)
        monkeypatch.setattr(SqliteLedger, "end_run", enospc)

    return fill, monkeypatch.undo


def test_a_full_disk_releases_the_batch_leases_for_the_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After StoreFullError and freeing space, no key is held: the rerun claims every one."""
    with full_disk(tmp_path, monkeypatch) as (folder, fill, free):
        graph = ProcessGraph(store=folder)
        item = graph.add_constant_node(0, "i")
        page = graph.add_node(1, Page, {"i": item})
        graph.process_batch(ITEMS[:2], [page], progress=False)
        fill()
        with pytest.raises(StoreFullError, match=r"node 1 \(.*Page\).*full.*free some space"):
            graph.process_batch(ITEMS, [page], progress=False)
        held = list(graph.store.ledger.lease_states())
        assert held  # the batch held leases when the disk filled up
        free()
        with graph.store.lessee() as lessee:
            assert lessee.claim_many(held).theirs == []  # nothing to wait for: all released
        stats = graph.process_batch(ITEMS, [page], progress=False)
        assert stats.completed == ITEMS and stats.cached + stats.computed == len(ITEMS)
        assert graph.store.ledger.lease_states() == {}
        graph.close()
