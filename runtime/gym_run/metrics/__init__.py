"""Statistics over a final set of rollouts: the one place aggregate metrics are computed.

`collect/metrics.py` keeps the running totals of a run (counts, usage, cost); this package turns a
set of final records into the aggregate block (`aggregate.aggregate`, `aggregate.Aggregator`) and
NeMo Gym's `/aggregate_metrics` shape (`nemo.aggregate_metrics`).
"""
