"""incgraph.flow."""
