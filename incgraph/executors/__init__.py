"""Executors: where the engine's jobs run (serial by default)."""

from incgraph.executors.base import Executor, SerialExecutor

__all__ = ["Executor", "SerialExecutor", "check_executor", "resolve_executor"]


def resolve_executor(executor: object) -> Executor:
    """An executor object from a name (``"serial"``) or an executor; ``None`` means serial.

    An object that has ``submit`` but not every member of `Executor` (a
    `concurrent.futures.ThreadPoolExecutor`, a user's own class) is wrapped in
    `incgraph.executors.adapted.AdaptedExecutor`; one without ``submit`` raises
    `TypeError` saying what to pass.

    Examples
    --------
    >>> resolve_executor(None).name
    'serial'
    >>> resolve_executor(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: executor= takes an executor name (serial, threads, ...) or an object with a submit...
    """
    if executor is None or executor == "serial":
        return SerialExecutor()
    if isinstance(executor, str):
        from incgraph.executors import registry

        return registry.make(executor)
    if isinstance(executor, Executor):
        return executor
    if not callable(getattr(executor, "submit", None)):
        from incgraph.executors import registry

        raise TypeError(
            f"executor= takes an executor name ({', '.join(registry.EXECUTORS)}) or an object "
            f"with a submit(fn, *args) method returning a concurrent.futures.Future; got "
            f"{type(executor).__name__!r}, which has no submit method"
        )
    from incgraph.executors.adapted import AdaptedExecutor

    return AdaptedExecutor(executor)


def check_executor(executor: object) -> None:
    """Raise now, not at the first run, if ``executor`` cannot be one.

    An unknown name raises `ConfigurationError` listing the valid names; an
    object without ``submit`` raises `TypeError`.

    Examples
    --------
    >>> check_executor("threads")
    >>> check_executor(42)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: executor= takes an executor name (serial, threads, ...) or an object with a submit...
    """
    if executor is None or isinstance(executor, Executor):
        return
    if isinstance(executor, str):
        from incgraph.executors import registry

        if executor not in registry.EXECUTORS:
            registry.make(executor)  # raises, listing the valid names
        return
    resolve_executor(executor)
