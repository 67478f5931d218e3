"""Quickstart: the batch recipe's example, then reruns that show what was cached and what computed.

Run it twice: the second process computes nothing, because every result is
already in the store (``.incgraph-quickstart/`` next to this script by default,
or the folder given as the first argument).

    python examples/quickstart.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from incgraph import ProcessGraph, Processor


# Define a node. Nodes may initialize and reuse models, but should strive to be stateless.
class SumInt(Processor):
    def process(self, a: int, b: int) -> int:
        return a + b


class SlowSquare(Processor):
    """Stands in for an expensive model: it takes a while to load and to run."""

    def setup(self) -> None:
        print("    (loading SlowSquare's model...)")
        time.sleep(0.2)

    def process(self, x: int) -> int:
        time.sleep(0.3)
        return x * x


def show(graph: ProcessGraph, what: str, value: object) -> None:
    report = graph.last_run
    computed = ", ".join(n.describe() for n in report.computed) or "nothing"
    print(f"{what:<28} -> {value!s:<6} computed: {computed}; cache hits: {len(report.hits)}")


def main(store: Path) -> None:
    graph = ProcessGraph(store=store)

    node_const = graph.add_constant_node(id=0, name="MyConst")
    node1 = graph.add_node(1, SumInt, {"a": node_const, "b": 200})
    node2 = graph.add_node(2, SumInt, {"a": 300, "b": node1})
    node3 = graph.add_node(3, SlowSquare, {"x": node2})

    node_const.set_value(100)
    print("Why each node would hit or compute:")
    print("  " + str(graph.explain(node3)).replace("\n", "\n  "))
    show(graph, "run_upto(node2), const=100", graph.run_upto(node2))  # 600

    node_const.set_value(1)
    show(graph, "run_upto(node2), const=1", graph.run_upto(node2))  # 501

    node_const.set_value(100)
    show(graph, "run_upto(node2), const=100", graph.run_upto(node2))  # 600, a pure hit

    start = time.perf_counter()
    value = graph.run_upto(node3)
    show(graph, "run_upto(node3)", value)
    print(f"{'':<28}    ({time.perf_counter() - start:.3f} s)")

    graph.release_resources()
    print()
    print(graph.render(explain=True))
    print(f"\nResults are stored in {store}/ - run this script again: nothing computes.")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / ".incgraph-quickstart")
