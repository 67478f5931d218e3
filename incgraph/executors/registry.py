"""Executors by name: ``ProcessGraph(executor="threads")`` and friends.

Each entry is imported only when asked for, so optional extras (dask) load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from incgraph.errors import ConfigurationError
from incgraph.executors.base import Executor

__all__ = ["EXECUTORS", "make"]

EXECUTORS: dict[str, str] = {
    "serial": "incgraph.executors.base:SerialExecutor",
    "threads": "incgraph.executors.threads:ThreadExecutor",
    "processes": "incgraph.executors.processes:ProcessExecutor",
    "asyncio": "incgraph.executors.asyncio:AsyncioExecutor",
    "dask": "incgraph.executors.dask:DaskExecutor",
}


def make(name: str, **options: Any) -> Executor:
    """Construct the executor called ``name`` with ``options``.

    Examples
    --------
    >>> make("serial").name
    'serial'
    >>> make("gpu-cluster")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incgraph.errors.ConfigurationError: unknown executor 'gpu-cluster'; valid executors are ...
    """
    if name not in EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {name!r}; valid executors are {', '.join(EXECUTORS)}"
        )
    module_name, _, attr = EXECUTORS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    executor: Executor = cls(**options)
    return executor
