"""The Flow/Layer front-end: layers as steps, sharded artifacts, ForEach fan-out and joins.

A `Flow` subclass collects `Layer` classes; calling an instance
runs them in-process. Each layer, and each task of a `ForEach`, is a
node of a `ProcessGraph`, so flows share the store,
the executors and the cache with every other front-end: rerunning a flow whose
code and inputs did not change computes nothing. See ``docs/flow.md``.

Examples
--------
>>> from incgraph.flow import Flow, Layer, ForEach, Parameter
>>> class GridFlow(Flow): ...
>>> @GridFlow.register
... class Shard(Layer):
...     def __call__(self) -> None:
...         self.shard(foo=[1, 2, 3], bar=["a", "b"])
>>> @GridFlow.register(
...     foreach=ForEach(
...         parameters=[
...             Parameter(layer=Shard, attribute="foo"),
...             Parameter(layer=Shard, attribute="bar"),
...         ]
...     )
... )
... class Process(Layer):
...     def __call__(self, shard: Shard) -> None:
...         print(self.index, shard.foo, shard.bar)
>>> if flow := GridFlow(store=":memory:"):
...     execution = flow()
0 1 a
1 2 a
2 3 a
3 1 b
4 2 b
5 3 b
"""

from incgraph.flow.accessor import Accessor
from incgraph.flow.execution import Execution
from incgraph.flow.flow import Flow
from incgraph.flow.foreach import ForEach, Parameter
from incgraph.flow.layer import FlowParams, Layer

__all__ = ["Accessor", "Execution", "Flow", "FlowParams", "ForEach", "Layer", "Parameter"]
