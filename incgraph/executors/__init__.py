"""incgraph.executors."""
