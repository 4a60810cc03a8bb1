"""Processing pipelines: the inline (single-thread) processor, later sharded workers."""
