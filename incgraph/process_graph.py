"""The original batch recipe's spelling: ``from incgraph import process_graph; process_graph.ProcessGraph()``."""

from incgraph.graph import ProcessGraph

__all__ = ["ProcessGraph"]
