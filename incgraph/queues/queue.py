"""``Queue``: the edges of a pipeline, and where its results are read.

Design note
-----------
A `Queue` is declared, not filled: ``Queue(items)`` is an input whose
items (a list, a range, a generator...) are read lazily when the pipeline runs,
``Queue()`` is an empty queue a stage may write to, and the functions of
`incgraph.queues` return new queues for their outputs. Each queue has at
most one producer and one consumer; ``split`` and ``merge`` are how streams fork
and join.

A queue that no stage reads is an *output*: while and after the pipeline runs,
``get()`` takes its next item and iterating takes items until the pipeline is
done. Reading consumes, as with `queue.Queue`. When the run is over and
the queue drained, ``get()`` raises `queue.Empty` (or returns
``default`` when one is given): it never blocks forever, so ``while True:
q.get()`` ends with ``queue.Empty`` instead of hanging.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from incgraph.errors import InputTypeError, PipelineError, QueueEmpty
from incgraph.sentinels import MISSING

if TYPE_CHECKING:
    from incgraph.queues.channel import Channel, Chunk
    from incgraph.queues.pipeline import Pipeline
    from incgraph.queues.stages import Stage

__all__ = ["Queue"]

_READ_SIZE = 4096


class Queue:
    """A queue of items flowing between the stages of a pipeline.

    Parameters
    ----------
    items : iterable, optional
        The contents of an input queue, read when the pipeline runs (a generator
        is read lazily, so it may be endless or huge). Leave out for an empty
        queue to pass as a stage's ``queue_out``.
    name : str, optional
        Shown in drawings and messages.

    Examples
    --------
    >>> import incgraph.queues as iq
    >>> p = iq.Pipeline(store=":memory:")
    >>> q_out = p.map(str.upper, iq.Queue(["a", "b"], name="letters"))
    >>> _ = p.run()
    >>> q_out.get(), list(q_out)
    ('A', ['B'])
    >>> q_out.get(default="done")
    'done'
    """

    def __init__(self, items: Iterable[Any] | Any = MISSING, *, name: str | None = None) -> None:
        if isinstance(items, (str, bytes)):
            raise InputTypeError(
                f"Queue({items!r:.40}): a string is one item, not a queue of characters; "
                "pass a list of items, e.g. Queue([...]), and use name= for a name"
            )
        if items is not MISSING and not isinstance(items, Iterable):
            raise InputTypeError(
                f"Queue({type(items).__name__}): the first argument is the queue's contents "
                "and must be iterable (a list, range, generator...); use name= for a name"
            )
        self.items = items
        self.name = name
        self.pipeline: Pipeline | None = None
        self.producer: Stage | None = None
        self.consumer: Stage | None = None
        self._channel: Channel | None = None
        self._on_starve: Callable[[Queue], None] | None = None
        self._buffer: deque[Any] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Queue {self.name or '?'}>"

    @property
    def is_input(self) -> bool:
        """Whether items enter the pipeline here (no stage writes to this queue)."""
        return self.producer is None

    @property
    def is_output(self) -> bool:
        """Whether results leave the pipeline here (no stage reads this queue)."""
        return self.consumer is None

    # -- reading results ---------------------------------------------------------------

    def _output_channel(self) -> Channel:
        if self.consumer is not None:
            raise PipelineError(
                f"queue {self.name!r} feeds {self.consumer.name!r}: its items are consumed "
                "inside the pipeline; read the pipeline's output queues instead"
            )
        if self._channel is None:
            raise PipelineError(
                f"queue {self.name!r} has no items yet: call run() (or run(block=False)) "
                "on its pipeline before reading it"
            )
        return self._channel

    def get(self, block: bool = True, timeout: float | None = None, default: Any = MISSING) -> Any:
        """Take the next result, waiting for it while the pipeline runs.

        Parameters
        ----------
        block, timeout
            As for `queue.Queue.get`.
        default : optional
            Returned instead of raising when no item is left.

        Raises
        ------
        QueueEmpty
            (a `queue.Empty`)
            The pipeline is done and the queue drained (or ``timeout`` expired, or
            ``block=False`` and no item is ready); ``exhausted`` tells which.
        PipelineError
            The pipeline has not been run, or this queue is read by a stage.
        """
        channel = self._output_channel()
        with self._lock:
            if not self._buffer:
                chunk = self._take(channel, block, timeout)
                if chunk is not None:
                    self._buffer.extend(chunk.items)
            if self._buffer:
                return self._buffer.popleft()
        if default is not MISSING:
            return default
        raise QueueEmpty(
            f"queue {self.name!r} is exhausted"
            if self.exhausted
            else f"queue {self.name!r}: no item ready"
        )

    def _take(self, channel: Channel, block: bool, timeout: float | None) -> Chunk | None:
        chunk = channel.get(_READ_SIZE, block=False, drain_after_abort=True)
        if chunk is None or len(chunk) or not block:
            return chunk
        if self._on_starve is not None:  # about to wait: other outputs must not block the run
            self._on_starve(self)
        return channel.get(_READ_SIZE, block=True, timeout=timeout, drain_after_abort=True)

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    @property
    def exhausted(self) -> bool:
        """The pipeline is done with this queue and every item was read."""
        channel = self._output_channel()
        return not self._buffer and channel.finished

    def qsize(self) -> int:
        """How many results are waiting to be read right now."""
        channel = self._output_channel()
        return len(self._buffer) + len(channel)

    def __iter__(self) -> Iterator[Any]:
        """Take results as they arrive until the pipeline is done with this queue.

        Items are taken a chunk at a time; breaking out of the loop puts the
        unread rest of the chunk back, so nothing is lost.
        """
        channel = self._output_channel()
        while True:
            with self._lock:
                if self._buffer:
                    batch = list(self._buffer)
                    self._buffer.clear()
                else:
                    chunk = self._take(channel, True, None)
                    if chunk is None:
                        return
                    batch = chunk.items
            taken = 0
            try:
                for item in batch:
                    taken += 1
                    yield item
            finally:
                if taken < len(batch):
                    with self._lock:
                        self._buffer.extendleft(reversed(batch[taken:]))
