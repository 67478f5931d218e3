"""The batch recipe's spelling: ``from incgraph import process_node; process_node.Processor``."""

from incgraph.core.processor import Processor

__all__ = ["Processor"]
