"""incgraph.hashing."""
