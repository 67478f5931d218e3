"""Processors for executor tests, importable by worker processes (loky, dask)."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

from incgraph.core.processor import Processor


def note(log: str, line: str) -> None:
    """Append ``line`` and this process's id to the file ``log`` (shared by every worker)."""
    with open(log, "a") as f:
        f.write(f"{line} {os.getpid()}\n")


def lines(log: Path, kind: str) -> list[str]:
    """The logged lines starting with ``kind``."""
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.split()[0] == kind]


class Logged(Processor):
    """Logs its construction and release, with the process id, to the file ``log``."""

    def __init__(self, log: str) -> None:
        self.log = log
        note(log, f"init {type(self).__name__}")

    def release(self) -> None:
        note(self.log, f"release {type(self).__name__}")


class Square(Logged):
    resource: ClassVar[str | None] = "gpu"

    def process(self, x: int) -> int:
        if x == 13:
            raise ValueError("unlucky 13")
        return x * x


class Negate(Logged):
    resource: ClassVar[str | None] = "other-model"

    def process(self, y: int) -> int:
        return -y


class Add(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b


class Rendezvous(Processor):
    """Waits until ``parties`` calls are inside ``process`` at once (proves concurrency)."""

    barrier: ClassVar[threading.Barrier | None] = None

    def process(self, x: int) -> int:
        assert Rendezvous.barrier is not None
        Rendezvous.barrier.wait()
        return x + 1


ASYNC_STATE: dict[str, Any] = {"parties": 0, "arrived": 0, "event": None}
"""Shared by AsyncRendezvous calls (a dict: mutable state is not part of code versions)."""


class AsyncRendezvous(Processor):
    """An ``async def process`` that returns only once ``parties`` calls are awaiting together."""

    async def process(self, x: int) -> int:
        state = ASYNC_STATE
        if state["event"] is None:
            state["event"] = asyncio.Event()
        state["arrived"] += 1
        if state["arrived"] >= state["parties"]:
            state["event"].set()
        await asyncio.wait_for(state["event"].wait(), timeout=30)
        return x * 10


def burn(x: int, rounds: int) -> int:
    """Pure-Python CPU work (about ``rounds`` loop steps)."""
    acc = x
    for i in range(rounds):
        acc = (acc * 31 + i) % 1_000_003
    return acc


class Burn(Processor):
    """A CPU-bound pure-Python processor (for the executor benchmark)."""

    def __init__(self, rounds: int = 200_000) -> None:
        self.rounds = rounds

    def process(self, x: int) -> int:
        return burn(x, self.rounds)


class CrashAt(Processor):
    """Kills its worker process (``os._exit``) on the item named by $INCGRAPH_TEST_CRASH_AT."""

    def process(self, x: int) -> int:
        if str(x) == os.environ.get("INCGRAPH_TEST_CRASH_AT"):
            os._exit(3)
        return x + 100


class FileModel:
    """A "model" holding an open file: it cannot be pickled (the file closes with the model)."""

    def __init__(self, path: str) -> None:
        self.weights = [1.0, 2.0]
        self.fh = open(path)  # noqa: SIM115 - the point is a file left open
        weakref.finalize(self, self.fh.close)


class Unpicklable(Processor):
    """Returns ``x * 2``, except for the items in ``bad``: a value that cannot be pickled.

    ``kind`` says which: ``"file"`` (a dict holding a model with an open file) or
    ``"lock"`` (a ``threading.Lock``).
    """

    def __init__(self, bad: tuple[int, ...], kind: str, path: str) -> None:
        self.bad = bad
        self.kind = kind
        self.path = path

    def process(self, x: int) -> Any:
        if x not in self.bad:
            return x * 2
        if self.kind == "lock":
            return threading.Lock()
        return {"model": FileModel(self.path), "n": x}


class Double(Processor):
    def process(self, v: Any) -> int:
        return int(v) * 2


class Hang(Processor):
    """Notes its worker's pid in the file ``log``, then computes for two minutes."""

    def __init__(self, log: str) -> None:
        self.log = log

    def process(self, x: int) -> int:
        note(self.log, "busy")
        threading.Event().wait(120)
        return x


def hang(log: str, x: int) -> int:
    """Notes this process's pid in the file ``log``, then works for two minutes."""
    note(log, "busy")
    threading.Event().wait(120)
    return x


class MakeList(Processor):
    """``list(range(n))``."""

    def process(self, n: int) -> list[int]:
        return list(range(n))


class AppendAndCount(Processor):
    """Appends to its input in place, then counts it."""

    def process(self, xs: list[int]) -> int:
        xs.append(99)
        return len(xs)


class Count(Processor):
    """Counts its input."""

    def process(self, xs: list[int]) -> int:
        return len(xs)
