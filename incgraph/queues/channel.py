"""Bounded channels that carry items between stages in small chunks.

Design note
-----------
A `Channel` is the runtime form of a declared queue. Handing items over
one at a time through `queue.Queue` costs a lock round trip and often a
thread wake-up per item (microseconds each); a pipeline of trivial functions
would spend all its time there. So producers put `Chunk` s -- a list of
items plus, when known, the list of their data versions -- and consumers take up
to ``max_items`` at once (a chunk longer than that is split, the rest stays at
the front). Order is FIFO per producer; a channel fed by several producers (the
output of ``merge``) interleaves their chunks as they arrive.

*Backpressure.* ``put`` waits while the channel holds ``capacity`` items or more,
so a fast producer can be at most one chunk past the bound and memory stays flat
however long the input stream is. An output queue that nobody reads during the
run is switched to unbounded (`Channel.unbound`) when the caller waits for
the run to finish, so waiting never deadlocks on unread results.

*End and abort.* A channel knows how many producers feed it; when the last one
closes it and it is drained, ``get`` returns ``None``. Every channel of a run
shares one `Abort` flag: setting it wakes every waiter, ``put`` returns
``False`` and stages stop at their next hand-off. Nothing here raises for
control flow.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Abort", "Channel", "Chunk"]


class Chunk:
    """Items travelling together, with their data versions when a stage already knows them.

    Examples
    --------
    >>> head, rest = Chunk([1, 2, 3], ["a", "b", "c"]).split(2)
    >>> head.items, head.dvs, rest.items, rest.dvs
    ([1, 2], ['a', 'b'], [3], ['c'])
    """

    __slots__ = ("dvs", "items")

    def __init__(self, items: list[Any], dvs: list[Any] | None = None) -> None:
        self.items = items
        self.dvs = dvs

    def __len__(self) -> int:
        return len(self.items)

    def split(self, n: int) -> tuple[Chunk, Chunk]:
        """The first ``n`` items and the rest."""
        dvs = self.dvs
        head = Chunk(self.items[:n], None if dvs is None else dvs[:n])
        rest = Chunk(self.items[n:], None if dvs is None else dvs[n:])
        return head, rest


class Abort:
    """The stop flag every channel of one run shares; setting it wakes every waiter."""

    def __init__(self) -> None:
        self.is_set = False
        self._channels: list[Channel] = []

    def watch(self, channel: Channel) -> None:
        """Wake ``channel``'s waiters when the run is aborted."""
        self._channels.append(channel)

    def set(self) -> None:
        """Stop the run: every blocked ``put``/``get`` returns at once."""
        self.is_set = True
        for channel in self._channels:
            channel.wake()


class Channel:
    """A bounded FIFO of chunks between stages.

    Parameters
    ----------
    name : str
        The queue's name, for messages.
    capacity : int
        ``put`` waits while the channel holds at least this many items.
    producers : int
        How many producers must ``close`` it before a drained ``get`` returns ``None``.
    abort : Abort
        The run's stop flag.

    Examples
    --------
    >>> ch = Channel("q", capacity=10, producers=1, abort=Abort())
    >>> ch.put(Chunk([1, 2, 3]))
    True
    >>> ch.close()
    >>> ch.get(2).items, ch.get(2).items, ch.get(2)
    ([1, 2], [3], None)
    """

    def __init__(self, name: str, capacity: int, producers: int, abort: Abort) -> None:
        self.name = name
        self.capacity = capacity
        self.total = 0  # items ever put: the count a merge node reports
        self.terminal = False  # an output queue: values are loaded before they are put
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[Chunk] = deque()
        self._size = 0
        self._producers = producers
        self._bounded = True
        self._abort = abort
        self._open_tail: Chunk | None = None  # the chunk put_item may still extend
        abort.watch(self)

    # -- producing ---------------------------------------------------------------------

    def put(self, chunk: Chunk) -> bool:
        """Append ``chunk``, waiting while the channel is full; ``False`` if the run was aborted."""
        n = len(chunk)
        abort = self._abort
        with self._cond:
            while self._bounded and self._size >= self.capacity and not abort.is_set:
                self._cond.wait()
            if abort.is_set:
                return False
            if n:
                self._chunks.append(chunk)
                self._size += n
                self.total += n
                self._cond.notify_all()
        return True

    def put_item(self, item: Any, limit: int) -> bool:
        """Append one item, to the channel's last chunk when this producer opened it.

        For producers that must not hold items back (an input iterator that may
        block before its next item): each item is visible at once, and still
        travels in chunks of up to ``limit`` items. ``False`` if the run was aborted.
        """
        abort = self._abort
        with self._cond:
            while self._bounded and self._size >= self.capacity and not abort.is_set:
                self._cond.wait()
            if abort.is_set:
                return False
            chunks = self._chunks
            tail = self._open_tail
            if chunks and chunks[-1] is tail and tail is not None and len(tail) < limit:
                tail.items.append(item)
            else:
                tail = Chunk([item])
                chunks.append(tail)
                self._open_tail = tail
            self._size += 1
            self.total += 1
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """One producer is done; when all are, a drained channel ends."""
        with self._cond:
            self._producers -= 1
            self._cond.notify_all()

    # -- consuming ---------------------------------------------------------------------

    def get(
        self,
        max_items: int,
        *,
        block: bool = True,
        timeout: float | None = None,
        drain_after_abort: bool = False,
        gather: bool = False,
    ) -> Chunk | None:
        """Up to ``max_items`` items, or ``None`` once the channel is closed and drained.

        Also ``None`` when the run was aborted (unless ``drain_after_abort``, used
        by output queues so results already made can still be read). With
        ``block=False`` (or when ``timeout`` expires) an open but empty channel
        gives an empty chunk. ``gather`` joins whole waiting chunks up to
        ``max_items`` (their data versions are dropped).
        """
        abort = self._abort
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._chunks:
                if abort.is_set or self._producers <= 0:
                    return None
                if not block:
                    return Chunk([])
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return Chunk([])
                self._cond.wait(remaining)
            if abort.is_set and not drain_after_abort:
                return None
            chunk = self._chunks.popleft()
            if len(chunk) > max_items:
                chunk, rest = chunk.split(max_items)
                self._chunks.appendleft(rest)
            elif gather:
                items = list(chunk.items)
                while self._chunks and len(items) + len(self._chunks[0]) <= max_items:
                    more = self._chunks.popleft()
                    items.extend(more.items)
                    self._size -= len(more)
                chunk = Chunk(items)
            self._size -= len(chunk)
            self._cond.notify_all()
            return chunk

    def wait_until(
        self, ready: Callable[[], bool], *, want_input: bool, timeout: float | None = None
    ) -> None:
        """Block until ``ready()`` is true or the run aborts; with ``want_input``, also
        until data arrives or the channel ends; at most ``timeout`` seconds if given.

        Used by a stage that also waits on its workers: their futures call
        `wake` when they finish, so one wait covers both. (The timeout is for a
        stage waiting on another process, which has no way to wake it.)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not (
                ready()
                or self._abort.is_set
                or (want_input and (self._chunks or self._producers <= 0))
            ):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._cond.wait(remaining)

    def wake(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        with self._cond:
            self._cond.notify_all()

    def unbound(self) -> None:
        """Let producers put without waiting (an output nobody reads while the run goes on)."""
        with self._cond:
            self._bounded = False
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """Every producer closed the channel and it is drained (or the run was aborted)."""
        with self._cond:
            return (self._producers <= 0 and not self._chunks) or (
                self._abort.is_set and not self._chunks
            )

    def __len__(self) -> int:
        return self._size
