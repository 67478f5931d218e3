"""incgraph.run."""
