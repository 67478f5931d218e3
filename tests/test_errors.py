"""The exception tree: one root, and each error also the builtin a caller would catch."""

from __future__ import annotations

import pickle
import queue

import pytest

from incgraph import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.GraphDefinitionError, ValueError),
        (errors.CycleError, ValueError),
        (errors.InputTypeError, TypeError),
        (errors.ConstantNotSetError, ValueError),
        (errors.ConfigurationError, ValueError),
        (errors.HashingError, TypeError),
        (errors.NotCachedError, LookupError),
        (errors.NodeError, RuntimeError),
        (errors.StoreError, OSError),
        (errors.StoreCorruptError, OSError),
        (errors.StoreFullError, OSError),
        (errors.ReadOnlyStoreError, OSError),
        (errors.ExtraNotInstalledError, ImportError),
        (errors.ParallelError, RuntimeError),
        (errors.FlowDefinitionError, TypeError),
        (errors.ArtifactNotFoundError, AttributeError),
        (errors.ExecutionNotFoundError, LookupError),
        (errors.PipelineError, RuntimeError),
        (errors.QueueEmpty, queue.Empty),
    ],
)
def test_each_error_is_an_incgraph_error_and_its_builtin(cls: type, builtin: type) -> None:
    """`except IncgraphError` and `except <builtin>` both catch it."""
    assert issubclass(cls, errors.IncgraphError)
    assert issubclass(cls, builtin)


def test_every_public_error_is_in_the_tree() -> None:
    """errors.__all__ lists only IncgraphError subclasses (and the require_extra helper)."""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.IncgraphError), name


def test_node_and_parallel_errors_survive_pickling() -> None:
    """Errors crossing process boundaries keep their node, original exception and list."""
    err = errors.NodeError("node 2 (X) failed", node="2", exception=ValueError("bad"))
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.node, type(back.exception)) == (str(err), "2", ValueError)
    perr = errors.ParallelError("2 failed", [KeyError("a"), ValueError("b")])
    pback = pickle.loads(pickle.dumps(perr))
    assert [type(e) for e in pback.exceptions] == [KeyError, ValueError]


def test_require_extra_names_the_install_line() -> None:
    """A missing optional dependency says which extra to pip install."""
    with pytest.raises(errors.ExtraNotInstalledError, match=r"pip install 'incgraph\[dask\]'"):
        errors.require_extra("surely_not_a_module_xyz", "dask")
    assert errors.require_extra("json", "none").dumps(1) == "1"
