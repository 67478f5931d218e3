"""Workers for the fault tests and the fault campaign: a zygote that forks writers and racers.

Run as a script, this module is a *zygote*: it imports incgraph and numpy once,
then reads commands on stdin and forks a child per command, so a campaign of
dozens of SIGKILLs costs a ``fork`` per kill instead of an interpreter start.
It opens no store itself, so children inherit no SQLite connection.

Commands (one line each; the zygote answers one line):

``write STORE SEED ACKS``
    fork a *writer* that saves results forever (direct ``save`` / ``save_many``,
    graph runs, ``gc``, ``verify``) and appends ``LABEL KEY`` to ACKS after each
    commit returns; answer its pid. The test SIGKILLs it.
``write_n STORE SEED ACKS COUNT DONE``
    fork a *bounded writer*: it saves COUNT results (direct saves and graph
    runs, acknowledged as above), after each step loads one result it
    acknowledged earlier and checks it is still there and right (exit code 1
    otherwise), then creates the file DONE and exits; answer its pid. The
    maintenance-beside-writers test runs ``verify`` and ``gc`` meanwhile.
``race STORE LOG OUT THREADS EXECUTOR START``
    fork a *racer* whose THREADS threads each run the cold race graph at Unix
    time START; every ``process`` call appends its node's label to LOG; the
    results and errors go to OUT as JSON; answer its pid.
``hold STORE LOG LEASE SECONDS OUT``
    fork a process that computes the slow node of the lease graph with
    ``lease_seconds=LEASE``, its ``process`` taking SECONDS, and writes the
    result to OUT; answer its pid.
``reap PID``
    wait for a child; answer its exit status.

Every value the workers store is derivable from its record (:func:`expected`),
so a checker can prove that no torn or mixed-up result is ever served.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from incgraph.core.processor import Processor
from incgraph.graph import ProcessGraph
from incgraph.hashing import data_version
from incgraph.store import Record, Store, open_store

RACE_WIDTH = 8
"""Nodes per layer of the race graph (three layers plus one sink)."""


def value_of(i: int) -> Any:
    """The value stored for item ``i``: inline pickles, ``npy`` files and ``pickle5`` files."""
    kind = i % 4
    if kind == 0:
        return {"i": i, "text": f"item {i}"}
    if kind == 1:
        return np.arange(500 + i % 50, dtype=np.int64) * i
    if kind == 2:
        return np.arange(20_000 + (i % 7) * 10_000, dtype=np.float64) * i
    return {"a": np.full(10_000, i, dtype=np.int32), "name": f"v{i}"}


class Make(Processor):
    """The writers' processor: item ``i``'s value."""

    def process(self, i: int) -> object:
        return value_of(i)


def expected(record: Record) -> tuple[Any, dict[str, str] | None]:
    """(value, inputs) a record must have: from its node label (graph) or its key (direct)."""
    if record.node.startswith("item"):
        i = int(record.node[4:])
        return value_of(i), {"i": data_version(i)}
    return value_of(int(record.key, 16)), None


# -- the writer ---------------------------------------------------------------------------------


def _ack(fd: int, labels_keys: list[tuple[str, str]]) -> None:
    if labels_keys:
        os.write(fd, "".join(f"{label} {key}\n" for label, key in labels_keys).encode())


def _direct(store: Store, first: int, count: int) -> list[tuple[str, str]]:
    items = [
        (Record(f"{i:032x}", f"{i:032x}"[::-1], "direct", "w", "c" * 32, "i" * 32), value_of(i))
        for i in range(first, first + count)
    ]
    if count == 1:
        saved = [store.save(*items[0])]
    else:
        saved = store.save_many(items)
    return [(rec.node, rec.key) for rec in saved]


def _graph_run(store: Store, first: int, count: int) -> list[tuple[str, str]]:
    graph = ProcessGraph(store=store)
    nodes = []
    for i in range(first, first + count):
        const = graph.add_constant_node(f"c{i}", "i", value=i)
        nodes.append(graph.add_node(f"item{i}", Make, {"i": const}))
    graph.run_upto(nodes)
    statuses = graph.last_run.statuses
    return [(n.label, statuses[n].key) for n in nodes if statuses[n].status == "computed"]


def writer(store_path: str, seed: int, acks_path: str) -> None:
    """Save results forever, acknowledging each committed one (killed by the test)."""
    rng = random.Random(seed)
    store = open_store(store_path)
    fd = os.open(acks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    i = seed * 100_000
    while True:
        op = rng.random()
        if op < 0.3:
            _ack(fd, _direct(store, i, 1))
            i += 1
        elif op < 0.55:
            count = rng.randint(2, 6)
            _ack(fd, _direct(store, i, count))
            i += count
        elif op < 0.9:
            count = rng.randint(1, 8)
            _ack(fd, _graph_run(store, i, count))
            i += count
        elif op < 0.97:
            store.gc(grace=0)  # keeps every result; reclaims what earlier kills left behind
        else:
            store.verify()


def bounded_writer(store_path: str, seed: int, acks_path: str, count: int, done: str) -> None:
    """Save ``count`` results, re-checking an earlier one after each step; then touch ``done``."""
    rng = random.Random(seed)
    store = open_store(store_path)
    fd = os.open(acks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    first = i = seed * 100_000
    mine: list[str] = []
    while i < first + count:
        step = rng.randint(1, 6)
        saved = _direct(store, i, step) if rng.random() < 0.5 else _graph_run(store, i, step)
        _ack(fd, saved)
        mine += [key for _, key in saved]
        i += step
        if mine:
            _recheck(store, rng.choice(mine))
    store.close()
    Path(done).touch()


def _recheck(store: Store, key: str) -> None:
    """Load the committed result under ``key``: it must be stored, and right."""
    record = store.lookup(key)
    if not isinstance(record, Record):
        raise AssertionError(f"committed result {key} vanished")
    want, _ = expected(record)
    _same(store.load(record), want)


# -- the racer ----------------------------------------------------------------------------------


STEP_SECONDS = "INCGRAPH_TEST_STEP_SECONDS"
"""Environment variable: how long Step.process takes (default 0.01; not part of any key)."""


class Step(Processor):
    """A race-graph node: notes the call in the log, works a little, combines its inputs."""

    def __init__(self, log: str, name: str) -> None:
        self.log, self.name = log, name

    def process(self, a: int, b: int) -> int:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {threading.get_ident()} {self.name}\n".encode())
        finally:
            os.close(fd)
        # the work: widens the window in which others could compute it too
        time.sleep(float(os.environ.get(STEP_SECONDS, "0.01")))
        return (a * 31 + b) % 1_000_003


def race_graph(store: Any, log: str, executor: str | None = None) -> tuple[ProcessGraph, Any]:
    """Three layers of RACE_WIDTH Step nodes over constants, and a sink; returns (graph, sink)."""
    graph = ProcessGraph(store=store, executor=executor)
    layer = [graph.add_constant_node(f"x{j}", "x", value=j) for j in range(RACE_WIDTH)]
    for depth in range(3):
        layer = [
            graph.add_node(
                f"s{depth}_{j}",
                Step,
                {"a": layer[j], "b": layer[(j + 1) % RACE_WIDTH]},
                node_init_kwargs={"log": log, "name": f"s{depth}_{j}"},
            )
            for j in range(RACE_WIDTH)
        ]
    init = {"log": log, "name": "sink"}
    sink = graph.add_node("sink", Step, {"a": layer[0], "b": layer[-1]}, node_init_kwargs=init)
    return graph, sink


def racer(store_path: str, log: str, out: str, threads: int, executor: str, start: float) -> None:
    """Run the race graph in ``threads`` threads from ``start``; write results and errors."""
    results: list[Any] = []
    errors: list[str] = []

    def one() -> None:
        try:
            graph, sink = race_graph(store_path, log, None if executor == "serial" else executor)
            delay = start - time.time()
            if delay > 0:
                time.sleep(delay)  # every process and thread starts at the same instant
            results.append(graph.run_upto(sink))
            graph.close()
        except BaseException:
            errors.append(traceback.format_exc())

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(out, "w") as handle:
        json.dump({"results": results, "errors": errors}, handle)


# -- the lease holder ---------------------------------------------------------------------------


SLOW_SECONDS = "INCGRAPH_TEST_SLOW_SECONDS"
"""Environment variable: how long Slow.process takes (not part of any cache key)."""


class Slow(Processor):
    """Notes the call, then takes ``$INCGRAPH_TEST_SLOW_SECONDS`` (a holder is killed first)."""

    def __init__(self, log: str) -> None:
        self.log = log

    def process(self, x: int) -> int:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        time.sleep(float(os.environ.get(SLOW_SECONDS, "0")))
        return x * 2


def holder(store_path: str, log: str, lease: float, seconds: float, out: str) -> None:
    """Compute the one Slow node (taking ``seconds``) with ``lease``-second leases."""
    os.environ[SLOW_SECONDS] = str(seconds)
    graph = ProcessGraph(store=open_store(store_path, lease_seconds=lease))
    x = graph.add_constant_node(0, "x", value=21)
    node = graph.add_node(1, Slow, {"x": x}, node_init_kwargs={"log": log})
    result = graph.run_upto(node)
    with open(out, "w") as handle:
        json.dump({"result": result, "computed": len(graph.last_run.computed)}, handle)


# -- the zygote ----------------------------------------------------------------------------------


def _child(command: str, args: list[str]) -> None:
    """Run one command in a forked child and leave without running the parent's cleanups."""
    code = 0
    try:
        if command == "write":
            writer(args[0], int(args[1]), args[2])
        elif command == "write_n":
            bounded_writer(args[0], int(args[1]), args[2], int(args[3]), args[4])
        elif command == "race":
            racer(args[0], args[1], args[2], int(args[3]), args[4], float(args[5]))
        else:
            holder(args[0], args[1], float(args[2]), float(args[3]), args[4])
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Read commands on stdin and answer each on stdout (see the module note)."""
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "quit":
            return
        if command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            sys.stdin.close()
            _child(command, args)
        print(pid, flush=True)


# -- the parent's side ----------------------------------------------------------------------------


class Zygote:
    """The fault_worker zygote: forks writers, racers and lease holders on command."""

    def __init__(self, stderr: Path) -> None:
        self.stderr_path = stderr
        self.stderr = open(stderr, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.ask("") == "ready"

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def fork(self, *words: object) -> int:
        return int(self.ask(" ".join(map(str, words))))

    def reap(self, pid: int) -> int:
        return int(self.ask(f"reap {pid}"))

    def errors(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def close(self) -> None:
        try:
            self.ask("quit")
            self.proc.wait(timeout=30)
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.stderr.close()


# -- the checker (runs in the test or campaign process) -------------------------------------------


def check(
    store_path: str, acks_path: str | None = None, checked: set[str] | None = None
) -> dict[str, Any]:
    """Open the store and load every listed result; count what is wrong.

    Returns ``results`` (listed), ``torn`` (listed but failing to load, or not
    the value its record implies), ``lost`` (acknowledged as committed but not
    listed), ``problems`` (found by ``verify``) and the first ``errors``.
    Keys in ``checked`` are not loaded again (a committed result never changes);
    the keys loaded are added to it.
    """
    outcome: dict[str, Any] = {"results": 0, "torn": 0, "lost": 0, "problems": 0, "errors": []}
    with open_store(store_path) as store:
        for record in store.index.records():
            outcome["results"] += 1
            if checked is not None:
                if record.key in checked:
                    continue
                checked.add(record.key)
            try:
                value = store.load(record)
                want, inputs = expected(record)
                _same(value, want)
                assert inputs is None or dict(record.inputs) == inputs, record.inputs
            except Exception as exc:  # every failure is counted and shown, none stops the count
                outcome["torn"] += 1
                outcome["errors"].append(f"{record.node} {record.key}: {exc!r}")
        if acks_path is not None and os.path.exists(acks_path):
            with open(acks_path) as handle:
                acked = [line.split()[1] for line in handle if line.endswith("\n")]
            outcome["acked"] = len(acked)
            outcome["lost"] = len(set(acked) - set(store.lookup_versions(acked)))
        outcome["problems"] = len(store.verify(quarantine=False).problems)
    return outcome


def _same(value: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert isinstance(value, dict) and value.keys() == want.keys(), value
        for name in want:
            _same(value[name], want[name])
    elif isinstance(want, np.ndarray):
        assert isinstance(value, np.ndarray) and value.dtype == want.dtype, type(value)
        np.testing.assert_array_equal(value, want)
    else:
        assert value == want, value


if __name__ == "__main__":
    serve()
