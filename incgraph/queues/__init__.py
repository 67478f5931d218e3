"""incgraph.queues."""
