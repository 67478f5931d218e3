"""incgraph.parallel."""
