"""A captured value is the value's bytes at capture time: stored as they are, copied on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from incgraph.store import Record, memory_store, open_store


class Pointer:
    """A value naming another blob, as a Flow manifest does."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __incgraph_refs__(self) -> list[str]:
        return [self.target]


def record(dv: str) -> Record:
    return Record("k" + dv[:8], dv, "n", "p", "c", "i")


def test_large_array_changed_after_capture_is_stored_as_captured(tmp_path: Path) -> None:
    """An array big enough for its own file, changed in place after capture, loads as it was."""
    a = np.arange(100_000, dtype=np.float64)
    with open_store(tmp_path) as store:
        captured = store.capture(a)
        a -= 1
        saved = store.save(record("ab" * 16), captured)
        loaded = store.load(saved)
    assert loaded[0] == 0.0 and loaded.flags.writeable


def test_copies_are_private_and_writable() -> None:
    """Each copy decodes anew: changing one changes neither the next nor the stored bytes."""
    store = memory_store()
    frame = pd.DataFrame({"a": range(3)})
    captured = store.capture({"frame": frame, "array": np.zeros(50_000)})
    first = captured.value()
    first["frame"]["b"] = 1
    first["array"] += 1
    second = captured.value()
    assert list(second["frame"].columns) == ["a"] and second["array"].sum() == 0.0


def test_a_captured_value_keeps_the_blobs_it_names(tmp_path: Path) -> None:
    """The references a value declares are recorded when its captured bytes are saved."""
    target = "cd" * 16
    with open_store(tmp_path) as store:
        store.blobs.put(target, [1, 2])
        store.save(record("ab" * 16), store.capture(Pointer(target)))
        refs = store.index.refs()
    assert refs["ab" * 16] == {target}


def test_captured_bytes_fit_any_inline_limit() -> None:
    """A small capture stored by a store with a lower inline limit becomes a pickle file."""
    store = memory_store()
    captured = store.capture(list(range(100)))
    encoded = captured.encoded_for(16)
    assert not isinstance(encoded, bytes) and encoded.codec == "pickle"
    assert captured.encoded_for(1 << 20) == captured.encoding
