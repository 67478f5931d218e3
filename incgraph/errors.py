"""Every error incgraph raises, in one tree.

Each class also subclasses the builtin a caller would naturally catch, so
``except TypeError`` around a type mismatch still works::

    IncgraphError
    ├── GraphDefinitionError (ValueError)   a graph that cannot be built
    │   └── CycleError                      nodes that depend on themselves
    ├── InputTypeError (TypeError)          a value or upstream type does not fit an annotation
    ├── ConstantNotSetError (ValueError)    a run needs a constant that was never set
    ├── ConfigurationError (ValueError)     an option value incgraph does not know
    ├── HashingError (TypeError)            a value has no deterministic content hash
    ├── NotCachedError (KeyError)           a result that is not stored: run_only's upstream, a key
    ├── NodeError (RuntimeError)            a processor raised; carries node and original exception
    ├── StoreError (OSError)                the store cannot be read or written
    │   ├── StoreCorruptError               an index row or blob failed its check
    │   ├── SignatureError                  a remote blob's HMAC tag is missing or wrong
    │   ├── StoreFullError                  the disk is full (ENOSPC)
    │   ├── UnstorableResultError           a result cannot be pickled (names the part)
    │   └── ReadOnlyStoreError              a write to a store opened read-only
    ├── ExtraNotInstalledError (ImportError) an optional extra is missing; says what to pip install
    ├── ParallelError (RuntimeError)        in-batch parallel calls failed; carries every exception
    ├── FlowError                           Flow/Layer front-end
    │   ├── FlowDefinitionError (TypeError) bad registration/annotation/cycle, before running
    │   ├── ArtifactNotFoundError (AttributeError) a layer read an attribute upstream never set
    │   └── ExecutionNotFoundError (LookupError) no stored execution has that id
    └── PipelineError (RuntimeError)        queue pipeline misuse or a failed run
        └── QueueEmpty (queue.Empty)        a finished output queue has no more items

Messages name the node, the argument and what to do about it.
"""

from __future__ import annotations

import queue as _stdlib_queue
from typing import Any

__all__ = [
    "ArtifactNotFoundError",
    "ConfigurationError",
    "ConstantNotSetError",
    "CycleError",
    "ExecutionNotFoundError",
    "ExtraNotInstalledError",
    "FlowDefinitionError",
    "FlowError",
    "GraphDefinitionError",
    "HashingError",
    "IncgraphError",
    "InputTypeError",
    "NodeError",
    "NotCachedError",
    "ParallelError",
    "PipelineError",
    "QueueEmpty",
    "ReadOnlyStoreError",
    "SignatureError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "UnstorableResultError",
    "require_extra",
]


class IncgraphError(Exception):
    """Root of every error incgraph raises."""


class GraphDefinitionError(IncgraphError, ValueError):
    """The graph cannot be built as asked: duplicate id, unknown or missing input."""


class CycleError(GraphDefinitionError):
    """Adding a node would make the graph cyclic."""


class InputTypeError(IncgraphError, TypeError):
    """A constant, an upstream result or a produced value does not fit an annotation."""


class ConstantNotSetError(IncgraphError, ValueError):
    """A run needs a constant node whose value was never set."""


class ConfigurationError(IncgraphError, ValueError):
    """An option has a value incgraph does not know; the message lists the valid ones."""


class HashingError(IncgraphError, TypeError):
    """A value cannot be content-hashed deterministically.

    Register a hasher with `incgraph.register_hasher`, or mark the node
    ``cache=False``.
    """


class NotCachedError(IncgraphError, KeyError):
    """A result the store does not hold: ``run_only``'s upstream, or an unknown key prefix."""

    __str__ = Exception.__str__  # the message as written, not KeyError's quoted repr


class NodeError(IncgraphError, RuntimeError):
    """A processor raised while computing a node.

    Attributes
    ----------
    node : str
        The node's label (its id and processor name).
    exception : BaseException
        The original exception, also chained as ``__cause__``.
    """

    def __init__(self, message: str, *, node: str, exception: BaseException) -> None:
        super().__init__(message)
        self.node = node
        self.exception = exception

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_node_error, (str(self), self.node, self.exception))


def _rebuild_node_error(message: str, node: str, exception: BaseException) -> NodeError:
    return NodeError(message, node=node, exception=exception)


class StoreError(IncgraphError, OSError):
    """The store cannot be read or written."""


class StoreCorruptError(StoreError):
    """An index row or a blob failed its integrity check; it is never served."""


class SignatureError(StoreError):
    """A blob's HMAC signature is missing or does not match this process's key.

    Not a `StoreCorruptError`: the engine does not treat it as a miss to
    recompute, because the usual cause is a key that differs from the one the
    store's writers use. Nothing is unpickled; set the right key.
    """


class StoreFullError(StoreError):
    """A write failed because the disk is full; the store is left intact."""


class UnstorableResultError(StoreError):
    """A result cannot be stored (or sent back from a worker process): it cannot be pickled.

    The message names the part that cannot be pickled and its type, such as
    ``result['model'].fh: _io.TextIOWrapper``. In a batch, only that item fails
    at that node.

    Attributes
    ----------
    part : str
        The path to the part that cannot be pickled, and its type.
    """

    def __init__(self, message: str, part: str = "") -> None:
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.part))


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened read-only."""


class ExtraNotInstalledError(IncgraphError, ImportError):
    """An optional dependency is missing. The message says what to ``pip install``."""


class ParallelError(IncgraphError, RuntimeError):
    """One or more in-batch parallel calls failed and no ``post`` function handled them.

    Attributes
    ----------
    exceptions : list[BaseException]
        Every exception raised, in init order.
    """

    def __init__(self, message: str, exceptions: list[BaseException]) -> None:
        super().__init__(message)
        self.exceptions = exceptions

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.exceptions))


class FlowError(IncgraphError):
    """Root of the Flow/Layer front-end's errors."""


class FlowDefinitionError(FlowError, TypeError):
    """A flow cannot be built: bad registration, unresolvable annotation, or a cycle."""


class ArtifactNotFoundError(FlowError, AttributeError):
    """A layer read an attribute that its upstream layer never set."""


class ExecutionNotFoundError(FlowError, LookupError):
    """No execution with the requested id is stored for this flow."""


class PipelineError(IncgraphError, RuntimeError):
    """A queue pipeline was misused or could not finish."""


class QueueEmpty(PipelineError, _stdlib_queue.Empty):
    """A finished output queue has no more items (also a `queue.Empty`)."""


def require_extra(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise an error saying what to install.

    Examples
    --------
    >>> json = require_extra("json", "none-needed")
    >>> require_extra("no_such_module_xyz", "dask")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incgraph.errors.ExtraNotInstalledError: ... pip install 'incgraph[dask]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"this feature needs {module!r}: pip install 'incgraph[{extra}]'"
        ) from exc
