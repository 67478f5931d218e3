"""incgraph.store."""
