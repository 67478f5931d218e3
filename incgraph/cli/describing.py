"""What a stored result is, in the words of the front-end that made it.

Design note
-----------
The store records every result under its node label and processor name. For a
plain graph, a pipeline or a memoized function those are what the user wrote
(``3``, ``__main__.Total``). A flow stores generated processors and
*manifests*: a layer's result is a small mapping from artifact name to an entry
(a value kept inline, a blob's data version, or a shard of entries), and its
artifacts' bytes are separate blobs. Shown raw, a flow's store reads as
``incgraph.flow.processors.LayerProcessor[Data]`` results of 194 bytes, when
the layer wrote 800 KB.

This module translates, for the command only (nothing here changes what is
stored): `processor_label` names a flow record by its layer, task, join,
memo or execution; `artifact_refs` gives the blobs a manifest names
(so ``ls`` shows what a layer occupies on disk); `artifact_rows` lists a
manifest's artifacts for ``show``. Manifests are recognized by their class,
which is imported only when a record's processor says a flow made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from incgraph.store.protocols import Record

__all__ = ["FLOW_PREFIX", "artifact_refs", "artifact_rows", "is_flow", "processor_label"]

FLOW_PREFIX = "incgraph.flow."
_LAYER = "incgraph.flow.processors.LayerProcessor["
_LABELS = {
    "incgraph.flow.processors.ForEachJoin": "flow: ForEach join",
    "incgraph.flow.ForEach": "flow: ForEach memo",
    "incgraph.flow.Execution": "flow: run record",
}


def is_flow(rec: Record) -> bool:
    """Whether a flow made this record (a layer, task, join, memo or run record)."""
    return rec.processor.startswith(FLOW_PREFIX)


def processor_label(rec: Record) -> str:
    """The processor column: the user's processor, or the flow layer/task the record is.

    Examples
    --------
    >>> made_by = "incgraph.flow.processors.LayerProcessor[Work]"
    >>> rec = Record("k" * 32, "d" * 32, "F/Work[3]", made_by, "c" * 32, "i" * 32)
    >>> processor_label(rec)
    'flow: task of layer Work'
    """
    name = rec.processor
    if name.startswith(_LAYER) and name.endswith("]"):
        layer = name[len(_LAYER) : -1]
        if rec.node.endswith("]"):
            return f"flow: task of layer {layer}"
        return f"flow: layer {layer}"
    return _LABELS.get(name, name)


def _refs(entry: tuple[str, Any]) -> Iterable[str]:
    """The data versions of the blobs an entry names."""
    from incgraph.flow.artifacts import REF, SHARD

    kind, payload = entry
    if kind == REF:
        yield payload
    elif kind == SHARD:
        for element in payload:
            yield from _refs(element)


def artifact_refs(value: Any) -> set[str] | None:
    """The data versions of the blobs a layer's manifest names, or None if it is no manifest."""
    from incgraph.flow.artifacts import Manifest

    if not isinstance(value, Manifest):
        return None
    return {dv for entry in value.values() for dv in _refs(entry)}


def artifact_rows(value: Any, sizes: Mapping[str, int]) -> list[tuple[str, str]] | None:
    """(artifact name, what it is) for each artifact of a manifest, or None if it is no manifest.

    A small value is shown as its repr, a blob as its size, a shard as its
    element count and the bytes of its elements' blobs.
    """
    from incgraph.cli.tables import size
    from incgraph.flow.artifacts import INLINE, REF, Manifest

    if not isinstance(value, Manifest):
        return None
    rows = []
    for name in sorted(value):
        kind, payload = value[name]
        if kind == INLINE:
            text = repr(payload)
            rows.append((name, f"value {text if len(text) <= 60 else text[:57] + '...'}"))
        elif kind == REF:
            rows.append((name, f"blob {payload[:12]}, {size(sizes.get(payload, 0))}"))
        else:
            blobs = sorted(set(_refs((kind, payload))))
            stored = sum(sizes.get(dv, 0) for dv in blobs)
            rows.append((name, f"shard of {len(payload)}: {len(blobs)} blob(s), {size(stored)}"))
    return rows
