"""The JSON record ``graph.persist(path)`` keeps of node states: built, merged, written if changed.

Design note
-----------
The file at ``path`` holds, per node id, what the latest run that recorded it
found for the current inputs: ``name``, ``status`` (``constant``, ``hit``,
``computed``, ``failed``, ``skipped``), ``cache_key``, ``data_version``,
``duration_s`` (seconds the result took to compute) and ``output`` when the
result is JSON-representable. A run merges its nodes into what the file
already holds (nodes it did not visit stay), so several runs or several
targets can share one file.

Outputs. A value the run has in hand is recorded as it is; a stored result
the run did not load (a hit, an intermediate node) is loaded for the record
when its stored size is at most the settings' ``persist_output_load_bytes``
(64 KiB by default). A value that does not
round-trip through JSON (an array, a model, NaN), or whose JSON text exceeds
`OUTPUT_MAX_CHARS`, is recorded without ``output``.

Writes. A hit whose cache key and data version the file already records
leaves that entry as it is (nothing is loaded for it), and the file is
replaced (write to a temporary file, then an atomic rename) only when its
text changes. So a fully cached rerun, and a batch whose ``prep_fn`` calls
``persist`` per item, rewrite no file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from incgraph.core.graph import Node
from incgraph.run.engine import NodeStatus, RunReport
from incgraph.sentinels import MISSING
from incgraph.settings import Settings
from incgraph.store.protocols import Record

__all__ = ["OUTPUT_MAX_CHARS", "jsonable", "write_record"]

OUTPUT_MAX_CHARS = 100_000
"""An output whose JSON text is longer than this is not recorded."""


def jsonable(value: Any) -> Any:
    """``value`` if it round-trips through JSON (finite floats, short enough), else ``MISSING``.

    Examples
    --------
    >>> jsonable({"a": [1, 2.5, "x"]}), jsonable(float("nan")) is MISSING, jsonable({1j}) is MISSING
    ({'a': [1, 2.5, 'x']}, True, True)
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return MISSING
    if len(text) > OUTPUT_MAX_CHARS:
        return MISSING
    return value


def write_record(
    path: Path,
    graph_name: str | None,
    report: RunReport,
    store: Any,
    settings: Settings | None = None,
) -> bool:
    """Merge ``report``'s node states into the JSON record at ``path``; whether it was written.

    ``settings`` (default: the store's) says how large a stored result may be to
    be loaded for its output (``persist_output_load_bytes``).

    Examples
    --------
    >>> import tempfile
    >>> from incgraph import ProcessGraph, Processor
    >>> class Inc(Processor):
    ...     def process(self, x: int) -> int:
    ...         return x + 1
    >>> g = ProcessGraph(store=":memory:")
    >>> n = g.add_node(1, Inc, {"x": g.add_constant_node(0, "x", value=1)})
    >>> _ = g.run_upto(n)
    >>> path = Path(tempfile.mkdtemp()) / "state.json"
    >>> [write_record(path, g.name, g.last_run, g.store) for _ in range(2)]
    [True, False]
    >>> json.loads(path.read_text())["nodes"]["1"]["output"]
    2
    """
    old_text, nodes = _read(path)
    fresh = {
        node: st
        for node, st in report.statuses.items()
        if not (st.status == "hit" and _recorded(nodes.get(str(node.id)), st))
    }
    stored = _stored(store, fresh)
    limit = (settings or store.settings).persist_output_load_bytes
    for node, st in fresh.items():
        record = stored.get(st.key or "")
        nodes[str(node.id)] = _entry(node, st, report.values, record, store, limit)
    text = json.dumps({"graph": graph_name, "nodes": nodes}, indent=2, default=str)
    if text == old_text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def _read(path: Path) -> tuple[str | None, dict[str, Any]]:
    """The file's text and its ``nodes`` (empty when it is missing or not a record)."""
    try:
        text = path.read_text()
        nodes = json.loads(text).get("nodes")
    except (OSError, ValueError, AttributeError):
        return None, {}
    return text, nodes if isinstance(nodes, dict) else {}


def _recorded(entry: Any, st: NodeStatus) -> bool:
    """Whether ``entry`` already records the result ``st`` found."""
    return (
        isinstance(entry, dict)
        and entry.get("cache_key") == st.key
        and entry.get("data_version") == st.data_version
    )


def _stored(store: Any, statuses: dict[Node, NodeStatus]) -> dict[str, Record]:
    """The index rows of the stored results among ``statuses``, in one bulk read."""
    keys = [st.key for st in statuses.values() if st.key and st.status in ("hit", "computed")]
    return dict(store.lookup_many(keys)) if keys else {}


def _entry(
    node: Node,
    st: NodeStatus,
    values: dict[Node, Any],
    record: Record | None,
    store: Any,
    limit: int,
) -> dict[str, Any]:
    duration = st.duration if st.status != "hit" or record is None else record.duration
    entry: dict[str, Any] = {
        "name": node.name(),
        "status": st.status,
        "cache_key": st.key,
        "data_version": st.data_version,
        "duration_s": round(duration, 6),
    }
    output = _output(node, st, values, record, store, limit)
    if output is not MISSING:
        entry["output"] = output
    return entry


def _output(
    node: Node,
    st: NodeStatus,
    values: dict[Node, Any],
    record: Record | None,
    store: Any,
    limit: int,
) -> Any:
    """The node's JSON-representable output, or ``MISSING`` (loaded if at most ``limit`` bytes)."""
    if node in values:
        return jsonable(values[node])
    if node.is_constant and st.status == "constant":
        return jsonable(node.value)
    if record is None or not 0 < record.size <= limit:
        return MISSING
    try:
        return jsonable(store.load(record))
    except Exception:  # unreadable now: the record says so by having no output
        return MISSING
