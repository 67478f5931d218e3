"""incgraph: a persistent, cached, incremental computation engine.

Re-exports only; every name lives in the module that owns it.

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
    StoreCorruptError,
    StoreError,
    StoreFullError,
)
from incgraph.flow import Accessor, Execution, Flow, ForEach, Layer, Parameter
from incgraph.graph import ProcessGraph
from incgraph.hashing import code_version, data_version, register_hasher
from incgraph.memoized import MemoizedFunction, memoize
from incgraph.parallel import Batch, action, any_action_failed, inbatch_parallel
from incgraph.queues import (
    ItemFailure,
    Pipeline,
    PipelineReport,
    PipelineRun,
    Queue,
    Task,
    task,
)
from incgraph.run.batch import BatchFailure, BatchStats
from incgraph.run.engine import RunReport
from incgraph.sentinels import MISSING
from incgraph.store import Record, Store, memory_store, open_store

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "Accessor",
    "ArtifactNotFoundError",
    "Batch",
    "BatchFailure",
    "BatchStats",
    "ConfigurationError",
    "ConstantNotSetError",
    "CycleError",
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
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "Task",
    "__version__",
    "action",
    "any_action_failed",
    "code_version",
    "data_version",
    "inbatch_parallel",
    "memoize",
    "memory_store",
    "open_store",
    "register_hasher",
    "task",
]
