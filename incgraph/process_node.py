"""The original batch recipe's spelling: ``from incgraph import process_node; class P(process_node.Processor)``."""

from incgraph.core.processor import Processor

__all__ = ["Processor"]
