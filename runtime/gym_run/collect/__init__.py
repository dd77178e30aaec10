"""Collection: rows in, rollout records out through one writer; resume, budget, progress, metrics."""
