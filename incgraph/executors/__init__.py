"""Executors: where the engine's jobs run (serial by default)."""

from incgraph.executors.base import Executor, SerialExecutor

__all__ = ["Executor", "SerialExecutor", "resolve_executor"]


def resolve_executor(executor: "Executor | str | None") -> Executor:
    """An executor object from a name (``"serial"``) or an executor; ``None`` means serial."""
    if executor is None or executor == "serial":
        return SerialExecutor()
    if isinstance(executor, str):
        from incgraph.executors import registry

        return registry.make(executor)
    return executor
