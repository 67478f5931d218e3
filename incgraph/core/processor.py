"""Processors: the user's unit of computation, and their lazy lifecycle.

Design note
-----------
A processor is a class with a ``process(self, **inputs)`` method. The graph
never constructs one up front: a node's instance is created (``__init__`` with
the node's init kwargs, then ``setup()``) only when that node must compute,
and dropped again by ``release_resources()`` (which calls ``release()`` first).
A fully cached rerun therefore constructs nothing, which is what makes it
cheap to keep heavy models (an LLM, a video decoder) behind a processor.

``version`` is mixed into the node's code version: bump it to invalidate
results when something the code fingerprint cannot see has changed (a model
file on disk, say). ``ignore`` names inputs and init kwargs left out of the
cache key (a ``device``, a ``verbose`` flag), and ``packages`` names installed
packages whose versions enter it (see `incgraph.hashing._packages`).
``code_ignore`` names what the code version leaves out on purpose (an object
that cannot change results and cannot be fingerprinted).
``resource`` names what the processor holds in memory. Breadth-first batches
release an instance that holds something (``setup``, ``release`` or a
``resource``) after its pass, unless the next pass declares the same resource.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

__all__ = ["Processor", "is_async_processor"]


class Processor:
    """Base class of every processor.

    Subclasses define ``process`` with annotated keyword parameters; its
    inputs are bound by name in `ProcessGraph.add_node`.

    Attributes
    ----------
    version : object
        Bump to invalidate every result of this processor.
    code_source : object or None
        What the code version fingerprints: ``None`` (the default) means this class.
        Front-ends that generate a processor around user code (a queue task's
        function) point it at that code, so the node's cache key is the user
        code's, not the generated wrapper's.
    resource : str or None
        Name of the heavy resource this processor holds (e.g. ``"llm"``).
        Consecutive batch passes over processors with the same resource keep
        their instances; otherwise an instance that holds something (this, or
        a ``setup``/``release`` hook) is released after its pass.
    ignore : tuple of str
        Names of ``process`` inputs or constructor keyword arguments that do
        not affect the result (``("device", "num_workers", "verbose")``). They
        are left out of the cache key, so changing one is a cache hit. The
        risk is yours: a result that does depend on an ignored name is served
        for every value of it. Each name must be an input or an init kwarg
        (checked at ``add_node``).
    packages : tuple of str
        Installed packages (as ``pip`` names them, e.g. ``("scikit-learn",)``)
        whose versions enter the cache key: upgrading one recomputes this
        processor's results. Checked at ``add_node``; an unknown name raises.
    code_ignore : tuple of str
        Names the code version leaves out: module globals, class attributes,
        closure variables, defaults or imported names the processor's code
        reads that cannot change its results (a client object, a cache). The
        risk is yours: an edit to a name listed here never recomputes anything.
        See ``docs/hashing.md``.

    Examples
    --------
    >>> class SumInt(Processor):
    ...     def process(self, a: int, b: int) -> int:
    ...         return a + b
    >>> SumInt().process(a=1, b=2)
    3
    >>> class Embed(Processor):
    ...     ignore = ("batch_size",)  # how many rows at a time: same result
    ...     def process(self, text: str, batch_size: int = 32) -> int:
    ...         return len(text)
    """

    version: ClassVar[object] = None
    resource: ClassVar[str | None] = None
    code_source: ClassVar[object] = None
    ignore: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[tuple[str, ...]] = ()
    code_ignore: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:
        """Acquire heavy resources. Called once, right after construction, before ``process``."""

    def release(self) -> None:
        """Free what `setup` acquired. Called by ``release_resources()``."""

    @classmethod
    def name(cls) -> str:
        """The processor's name, as shown by ``node.name()`` and in messages."""
        return cls.__name__

    def process(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        """Compute the node's result from its inputs. Subclasses must override this."""
        raise TypeError(
            f"{type(self).__name__} does not define process(); "
            "define `def process(self, <inputs>) -> <type>:` on the subclass"
        )


def is_async_processor(cls: type[Processor]) -> bool:
    """Whether ``cls.process`` is a coroutine function (``async def process``)."""
    return inspect.iscoroutinefunction(cls.process)
