"""open_store(path, shared="group"): folders 2770 with setgid, files 0660, members of the group share it."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from incgraph.errors import ConfigurationError
from incgraph.store import open_store, read_marker

from .contract import blob_value, dv, record

BIG = list(range(20_000))  # a value kept as a blob file


def modes(root: Path) -> dict[str, int]:
    """Permission bits of every folder and file under ``root`` (and of ``root``)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_group_store_folders_and_files_are_group_writable(tmp_path: Path) -> None:
    """Every folder is 2770 and every file 0660 in a group-shared store, whatever the umask."""
    old = os.umask(0o022)
    try:
        with open_store(tmp_path / "store", shared="group") as store:
            store.save(record(1, 10), BIG)
            store.save(record(2, 20), blob_value(2))
    finally:
        os.umask(old)
    found = modes(tmp_path / "store")
    folders = {name: mode for name, mode in found.items() if (tmp_path / "store" / name).is_dir()}
    files = {name: mode for name, mode in found.items() if name not in folders}
    assert set(folders.values()) == {0o2770} and len(folders) >= 3
    assert set(files.values()) == {0o660} and "index.sqlite" in files


def test_private_store_stays_private(tmp_path: Path) -> None:
    """Without shared=, folders are 0700 and blob files 0600."""
    with open_store(tmp_path / "store") as store:
        store.save(record(1, 10), BIG)
    found = modes(tmp_path / "store")
    assert found["."] == 0o700 and found["blobs"] == 0o700
    assert all(mode == 0o600 for name, mode in found.items() if name.endswith(".pkl"))


def test_marker_remembers_group_mode(tmp_path: Path) -> None:
    """A store made shared stays shared when a member opens it without shared=."""
    open_store(tmp_path / "store", shared="group").close()
    assert read_marker(tmp_path / "store")["shared"] == "group"  # type: ignore[index]
    with open_store(tmp_path / "store") as store:
        store.save(record(1, 10), BIG)
    assert {mode for name, mode in modes(tmp_path / "store").items() if name.endswith(".pkl")} == {
        0o660
    }


def test_unknown_shared_mode_is_refused(tmp_path: Path) -> None:
    """shared= with an unknown value raises ConfigurationError listing the valid one."""
    with pytest.raises(ConfigurationError, match='shared="group"'):
        open_store(tmp_path / "store", shared="everyone")


@pytest.fixture
def group_folder() -> Iterator[tuple[Path, int]]:
    """A folder other users can reach, owned by a fresh group id, with the setgid bit."""
    base = Path(tempfile.mkdtemp(prefix="incgraph-group-"))
    base.chmod(0o755)
    gid = 42_4242
    shared = base / "team"
    shared.mkdir()
    os.chown(shared, 0, gid)
    shared.chmod(0o2770)
    try:
        yield shared, gid
    finally:
        shutil.rmtree(base)


def as_user(uid: int, groups: list[int], work: object) -> int:
    """Run ``work()`` in a forked child with another user id and groups; its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, do the work, report by exit code
        code = 1
        try:
            os.setgroups(groups)
            os.setgid(groups[0] if groups else 65534)
            os.setuid(uid)
            work()  # type: ignore[operator]
            code = 0
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_another_member_of_the_group_saves_and_loads(group_folder: tuple[Path, int]) -> None:
    """A second user in the folder's group writes into the store and the first reads it; others cannot."""
    if os.geteuid() != 0:  # as an ordinary user, the mode checks above are the whole test
        assert modes(group_folder[0])["."] & 0o2070 == 0o2070
        return
    folder, gid = group_folder
    with open_store(folder / "store", shared="group") as store:
        store.save(record(1, 10), BIG)

    def member() -> None:
        with open_store(folder / "store") as mine:
            assert mine.load(dv(10)) == BIG
            mine.save(record(2, 20), [*BIG, 1])

    def outsider() -> None:
        open_store(folder / "store").lookup(dv(1))

    assert as_user(65534, [gid], member) == 0
    assert as_user(65533, [65533], outsider) == 3
    with open_store(folder / "store") as store:
        assert store.load(dv(20)) == [*BIG, 1]
        assert (folder / "store").stat().st_gid == gid
