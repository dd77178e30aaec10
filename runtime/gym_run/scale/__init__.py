"""Scale-out: one collection on a Ray cluster (the driver stays the one writer), and shards for
batch arrays with no engine, merged back into one final set. Ray is an optional extra."""
