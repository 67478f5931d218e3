"""The queue pipeline front-end (skorche's style): tasks mapped over queues, run as a cached stream.

Declare a pipeline with ``Queue``, ``@task``, ``map``, ``chain``, ``split``,
``merge``, ``batch``, ``unbatch`` and ``filter``, draw it with
``render_pipeline()``, run it with ``run()``::

    import incgraph.queues as skorche

    q_in = skorche.Queue(["cat1.zip", "dog1.zip"])
    q = skorche.chain([download_file, unzip_file], q_in)
    (q_cats, q_dogs) = skorche.split(is_cat, q)
    q_out = skorche.merge([skorche.map(meow, q_cats), skorche.map(woof, q_dogs)])
    report = skorche.run()
    for result in q_out: ...

Each task and op is a node of a `ProcessGraph`
(``pipeline.graph``); items stream between them through bounded queues, each
task on its own worker pool; each task application is cached in the store under
the key the engine would give that node for that item, so a rerun over the same
items computes nothing. ``docs/queues.md`` has the full story.

``map`` and ``filter`` shadow the builtins here, as in skorche: import the
module (``import incgraph.queues as iq``), not its names with ``*``.
"""

from incgraph.queues.default import (
    batch,
    chain,
    default_pipeline,
    filter,
    map,
    merge,
    render_pipeline,
    reset,
    run,
    split,
    unbatch,
)
from incgraph.queues.execution import PipelineRun
from incgraph.queues.pipeline import Pipeline
from incgraph.queues.queue import Queue
from incgraph.queues.report import ItemFailure, NodeCounts, PipelineReport
from incgraph.queues.task import Task, task

__all__ = [
    "ItemFailure",
    "NodeCounts",
    "Pipeline",
    "PipelineReport",
    "PipelineRun",
    "Queue",
    "Task",
    "batch",
    "chain",
    "default_pipeline",
    "filter",
    "map",
    "merge",
    "render_pipeline",
    "reset",
    "run",
    "split",
    "task",
    "unbatch",
]
