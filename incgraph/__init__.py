"""incgraph: a persistent, cached, incremental computation engine."""

from incgraph.errors import IncgraphError
from incgraph.sentinels import MISSING

__version__ = "0.1.0"

__all__ = ["MISSING", "IncgraphError", "__version__"]
