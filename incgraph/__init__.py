"""incgraph: a persistent, cached, incremental computation engine.

Re-exports only; every name lives in the module that owns it. Names are imported
when first used (a module ``__getattr__``), so ``import incgraph`` stays cheap: the
engine, the store, the front-ends and any optional library load on first use.

Examples
--------
>>> from incgraph import ProcessGraph, Processor
>>> class SumInt(Processor):
...     def process(self, a: int, b: int) -> int:
...         return a + b
>>> graph = ProcessGraph(store=":memory:")
>>> node = graph.add_node(1, SumInt, {"a": 1, "b": 2})
>>> graph.run_upto(node)
3
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from incgraph.core.graph import Node
    from incgraph.core.plan import Decision, Plan
    from incgraph.core.processor import Processor
    from incgraph.errors import (
        ArtifactNotFoundError,
        ConfigurationError,
        ConstantNotSetError,
        CycleError,
        ExecutionNotFoundError,
        ExtraNotInstalledError,
        FlowDefinitionError,
        FlowError,
        GraphDefinitionError,
        HashingError,
        IncgraphError,
        InputTypeError,
        NodeError,
        NotCachedError,
        ParallelError,
        PipelineError,
        QueueEmpty,
        ReadOnlyStoreError,
        SignatureError,
        StoreCorruptError,
        StoreError,
        StoreFullError,
        UnstorableResultError,
    )
    from incgraph.flow import Accessor, Execution, Flow, ForEach, Layer, Parameter
    from incgraph.graph import ProcessGraph
    from incgraph.hashing import code_version, data_version, register_hasher
    from incgraph.hashing._paths import DataPath
    from incgraph.memoized import MemoizedFunction, memoize
    from incgraph.parallel import Batch, action, any_action_failed, inbatch_parallel
    from incgraph.queues import (
        ItemFailure,
        Pipeline,
        PipelineReport,
        PipelineRun,
        Queue,
    )
    from incgraph.queues.task import Task, task
    from incgraph.run.batch import BatchFailure, BatchStats
    from incgraph.run.engine import RunReport
    from incgraph.sentinels import MISSING
    from incgraph.settings import DEFAULT_SETTINGS, Settings
    from incgraph.store import Record, Store, memory_store, open_store
    from incgraph.store.transfer import pull, push

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Accessor": "incgraph.flow",
    "ArtifactNotFoundError": "incgraph.errors",
    "Batch": "incgraph.parallel",
    "BatchFailure": "incgraph.run.batch",
    "BatchStats": "incgraph.run.batch",
    "ConfigurationError": "incgraph.errors",
    "ConstantNotSetError": "incgraph.errors",
    "CycleError": "incgraph.errors",
    "DEFAULT_SETTINGS": "incgraph.settings",
    "DataPath": "incgraph.hashing._paths",
    "Decision": "incgraph.core.plan",
    "Execution": "incgraph.flow",
    "ExecutionNotFoundError": "incgraph.errors",
    "ExtraNotInstalledError": "incgraph.errors",
    "Flow": "incgraph.flow",
    "FlowDefinitionError": "incgraph.errors",
    "FlowError": "incgraph.errors",
    "ForEach": "incgraph.flow",
    "GraphDefinitionError": "incgraph.errors",
    "HashingError": "incgraph.errors",
    "IncgraphError": "incgraph.errors",
    "InputTypeError": "incgraph.errors",
    "ItemFailure": "incgraph.queues",
    "Layer": "incgraph.flow",
    "MISSING": "incgraph.sentinels",
    "MemoizedFunction": "incgraph.memoized",
    "Node": "incgraph.core.graph",
    "NodeError": "incgraph.errors",
    "NotCachedError": "incgraph.errors",
    "ParallelError": "incgraph.errors",
    "Parameter": "incgraph.flow",
    "Pipeline": "incgraph.queues",
    "PipelineError": "incgraph.errors",
    "PipelineReport": "incgraph.queues",
    "PipelineRun": "incgraph.queues",
    "Plan": "incgraph.core.plan",
    "ProcessGraph": "incgraph.graph",
    "Processor": "incgraph.core.processor",
    "Queue": "incgraph.queues",
    "QueueEmpty": "incgraph.errors",
    "ReadOnlyStoreError": "incgraph.errors",
    "Record": "incgraph.store",
    "SignatureError": "incgraph.errors",
    "RunReport": "incgraph.run.engine",
    "Settings": "incgraph.settings",
    "Store": "incgraph.store",
    "StoreCorruptError": "incgraph.errors",
    "StoreError": "incgraph.errors",
    "StoreFullError": "incgraph.errors",
    "Task": "incgraph.queues.task",
    "UnstorableResultError": "incgraph.errors",
    "action": "incgraph.parallel",
    "any_action_failed": "incgraph.parallel",
    "code_version": "incgraph.hashing",
    "data_version": "incgraph.hashing",
    "inbatch_parallel": "incgraph.parallel",
    "memoize": "incgraph.memoized",
    "memory_store": "incgraph.store",
    "open_store": "incgraph.store",
    "pull": "incgraph.store.transfer",
    "push": "incgraph.store.transfer",
    "register_hasher": "incgraph.hashing",
    "task": "incgraph.queues.task",
}


def __getattr__(name: str) -> Any:
    """Import a public name from the module that owns it, on first use."""
    owner = _LAZY.get(name)
    if owner is None:
        raise AttributeError(f"module 'incgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(owner), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_SETTINGS",
    "MISSING",
    "Accessor",
    "ArtifactNotFoundError",
    "Batch",
    "BatchFailure",
    "BatchStats",
    "ConfigurationError",
    "ConstantNotSetError",
    "CycleError",
    "DataPath",
    "Decision",
    "Execution",
    "ExecutionNotFoundError",
    "ExtraNotInstalledError",
    "Flow",
    "FlowDefinitionError",
    "FlowError",
    "ForEach",
    "GraphDefinitionError",
    "HashingError",
    "IncgraphError",
    "InputTypeError",
    "ItemFailure",
    "Layer",
    "MemoizedFunction",
    "Node",
    "NodeError",
    "NotCachedError",
    "ParallelError",
    "Parameter",
    "Pipeline",
    "PipelineError",
    "PipelineReport",
    "PipelineRun",
    "Plan",
    "ProcessGraph",
    "Processor",
    "Queue",
    "QueueEmpty",
    "ReadOnlyStoreError",
    "Record",
    "RunReport",
    "Settings",
    "SignatureError",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "Task",
    "UnstorableResultError",
    "__version__",
    "action",
    "any_action_failed",
    "code_version",
    "data_version",
    "inbatch_parallel",
    "memoize",
    "memory_store",
    "open_store",
    "pull",
    "push",
    "register_hasher",
    "task",
]
