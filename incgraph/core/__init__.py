"""incgraph.core."""
