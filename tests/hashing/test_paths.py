"""DataPath: files and folders hashed by content, with a stat shortcut remembered across runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from incgraph import DataPath, HashingError, data_version
from incgraph.hashing import _paths


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled at once (no racy window to wait out)."""
    monkeypatch.setattr(_paths, "RACY_SECONDS", 0.0)


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = _paths._read_digest

    def counted(path: Path) -> str:
        reads.append(path.name)
        return real(path)

    monkeypatch.setattr(_paths, "_read_digest", counted)
    return reads


def test_a_file_hashes_by_content(tmp_path: Path) -> None:
    """Editing a file changes its data version; the same bytes give the same one again."""
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    first = data_version(DataPath(f))
    f.write_text("a,b\n1,9\n")  # same size, other bytes
    assert data_version(DataPath(f)) != first
    f.write_text("a,b\n1,2\n")
    assert data_version(DataPath(f)) == first


def test_touching_a_file_keeps_its_version(tmp_path: Path) -> None:
    """A new mtime with the same bytes re-reads the file and gives the same data version."""
    f = tmp_path / "x.csv"
    f.write_text("same")
    before = data_version(DataPath(f))
    os.utime(f, ns=(10**18, 10**18))
    assert data_version(DataPath(f)) == before


def test_the_path_text_is_part_of_the_version(tmp_path: Path) -> None:
    """Two files with equal bytes under different names differ; a plain Path hashes its text."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")
    assert data_version(DataPath(a)) != data_version(DataPath(b))
    assert data_version(DataPath(a)) == data_version(DataPath(str(a)))
    assert data_version(a) != data_version(DataPath(a))


def test_a_folder_hashes_by_names_and_contents(tmp_path: Path) -> None:
    """Adding, editing, renaming a file or adding an empty folder changes a folder's version."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "1.txt").write_text("one")
    (root / "2.txt").write_text("two")
    versions = [data_version(DataPath(root))]
    (root / "sub" / "1.txt").write_text("uno")
    versions.append(data_version(DataPath(root)))
    (root / "sub" / "1.txt").rename(root / "sub" / "one.txt")
    versions.append(data_version(DataPath(root)))
    (root / "3.txt").write_text("three")
    versions.append(data_version(DataPath(root)))
    (root / "empty").mkdir()
    versions.append(data_version(DataPath(root)))
    assert len(set(versions)) == len(versions)
    assert data_version(DataPath(root)) == versions[-1]


def test_folder_version_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    """Two folders with the same files made in different orders hash alike (names sorted)."""
    for name, order in (("x", ["b", "a", "c"]), ("y", ["c", "a", "b"])):
        for f in order:
            (tmp_path / name / "in").mkdir(parents=True, exist_ok=True)
            (tmp_path / name / "in" / f).write_text(f * 3)
    x, y = (_paths._digest(tmp_path / n / "in", set()) for n in ("x", "y"))
    assert x == y


def test_symlinks_are_followed(tmp_path: Path) -> None:
    """A link to a file hashes as its target's bytes: editing the target changes the folder."""
    target = tmp_path / "target.txt"
    target.write_text("v1")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.txt").symlink_to(target)
    before = data_version(DataPath(root))
    target.write_text("v2")
    assert data_version(DataPath(root)) != before


def test_broken_link_missing_path_and_cycles_raise(tmp_path: Path) -> None:
    """A missing path, a dangling link and a folder linking into itself raise, naming them."""
    with pytest.raises(HashingError, match=r"'.*nope.csv' does not exist"):
        data_version(DataPath(tmp_path / "nope.csv"))
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(HashingError, match=r"dangling' is a symbolic link to nothing"):
        data_version(DataPath(tmp_path / "dangling"))
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(loop)
    with pytest.raises(HashingError, match=r"contains itself through a symbolic link"):
        data_version(DataPath(loop))


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: None
) -> None:
    """While a file's stat is unchanged its digest is reused; an edit reads it again."""
    reads = _counting_reads(monkeypatch)
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 1000)
    first = data_version(DataPath(f))
    assert data_version(DataPath(f)) == first
    assert reads == ["big.bin"]
    f.write_bytes(b"y" * 1000)
    assert data_version(DataPath(f)) != first
    assert reads == ["big.bin", "big.bin"]


def test_a_just_modified_file_is_always_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file changed within the racy window is read at every check, never trusted by stat."""
    reads = _counting_reads(monkeypatch)
    f = tmp_path / "fresh.txt"
    f.write_text("new")
    data_version(DataPath(f))
    data_version(DataPath(f))
    assert reads == ["fresh.txt", "fresh.txt"]


def test_digests_are_remembered_across_processes(tmp_path: Path, trusted: None) -> None:
    """A second process finds the digest in the digest table and does not read the file."""
    f = tmp_path / "data.bin"
    f.write_bytes(b"z" * 4096)
    os.utime(f, ns=(10**18, 10**18))  # mtime far from now: ctime is what changed recently
    expected = data_version(DataPath(f))
    script = textwrap.dedent(
        f"""
        from incgraph.hashing import _paths
        from incgraph import DataPath, data_version
        _paths.RACY_SECONDS = 0.0
        def refuse(path):
            raise AssertionError("read the file again")
        _paths._read_digest = refuse
        print(data_version(DataPath({str(f)!r})))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == expected


def test_datapath_behaves_like_its_path(tmp_path: Path) -> None:
    """A DataPath opens like a path, forwards path attributes, pickles and compares by path."""
    import pickle

    f = tmp_path / "t.txt"
    f.write_text("hello")
    p = DataPath(f)
    with open(p) as handle:
        assert handle.read() == "hello"
    assert p.read_text() == "hello" and p.suffix == ".txt" and p.path == f
    assert pickle.loads(pickle.dumps(p)) == p and str(p) == str(f)
    assert DataPath(p) == p and repr(p) == f"DataPath({str(f)!r})"
    assert DataPath(tmp_path) / "t.txt" == f and type(DataPath(tmp_path) / "t.txt") is type(f)


def test_an_edit_that_restores_size_and_mtime_is_seen(tmp_path: Path, trusted: None) -> None:
    """Same size, mtime put back with os.utime: the changed ctime still makes it re-read."""
    f = tmp_path / "same.txt"
    f.write_text("hello")
    os.utime(f, ns=(10**18, 10**18))
    first = data_version(DataPath(f))
    f.write_text("jello")
    os.utime(f, ns=(10**18, 10**18))
    assert data_version(DataPath(f)) != first


@pytest.mark.parametrize("table", ["under-a-file", "garbage"])
def test_an_unusable_digest_table_keeps_digests_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: None, table: str
) -> None:
    """A table that cannot be opened (or is not a database) is skipped: hashing still works."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    if table == "under-a-file":
        where = blocker / "digests.sqlite"
    else:
        where = tmp_path / "digests.sqlite"
        where.write_bytes(b"not a database" * 100)
    monkeypatch.setenv("INCGRAPH_DIGESTS", str(where))
    monkeypatch.setattr(_paths, "_MEMO", _paths._DigestMemo())
    reads = _counting_reads(monkeypatch)
    f = tmp_path / "data.txt"
    f.write_text("abc")
    os.utime(f, ns=(10**18, 10**18))
    first = data_version(DataPath(f))
    assert data_version(DataPath(f)) == first
    assert reads == ["data.txt"]


def test_processes_writing_the_digest_table_together_agree(tmp_path: Path, trusted: None) -> None:
    """Three processes hashing the same folder at once through one table agree, without errors."""
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(60):
        (folder / f"{i}.txt").write_text(f"row {i}")
        os.utime(folder / f"{i}.txt", ns=(10**18, 10**18))
    script = textwrap.dedent(
        f"""
        from incgraph.hashing import _paths
        from incgraph import DataPath, data_version
        _paths.RACY_SECONDS = 0.0
        print(data_version(DataPath({str(folder)!r})))
        """
    )
    env = {**os.environ, "INCGRAPH_DIGESTS": str(tmp_path / "shared.sqlite")}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outs = [p.communicate()[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == [data_version(DataPath(folder))] * 3
