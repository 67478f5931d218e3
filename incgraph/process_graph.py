"""The batch recipe's module spelling: ``process_graph.ProcessGraph``."""

from incgraph.graph import ProcessGraph

__all__ = ["ProcessGraph"]
