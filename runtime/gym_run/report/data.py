"""A rollouts.jsonl file in, the report's aggregates over its final set and its first rows out.

The final set is the one resume and export use (runtime/gym_run/collect/resume.py: an id's first ok record, else
its last failed one), in input order. Aggregates cover every rollout; only the first `max_rows`
are kept whole for the table, and latencies are kept as a bounded, seeded reservoir sample, so a
report of ten million rollouts needs about as much memory as one of two thousand.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gym_run.collect.resume import FinalSet
from gym_run.endpoint.pricing import CostMeter, PriceTable, add_usage, merge_usage_by_server
from gym_run.endpoint.usage import USAGE_KEYS, record_billed
from gym_run.metrics.aggregate import Aggregator

RESERVOIR = 100_000


def _models(record: dict[str, Any]) -> dict[str, str]:
    """server -> model: what gym-run priced the record with, else the model its response names."""
    gym = record.get("_gym") or {}
    policy = (record.get("response") or {}).get("model") or "unknown model"
    known = gym.get("model_by_server") or {}
    return {
        server: known.get(server, policy) for server in gym.get("usage_by_server") or {"?": None}
    }


def usage_by_model(record: dict[str, Any], *, billed: bool = False) -> dict[str, dict[str, int]]:
    """{model: usage} of one rollout over every model server (policy and judge); `billed` leaves
    out what the response cache replayed."""
    gym = record.get("_gym") or {}
    by_server = (
        record_billed(gym)
        if billed
        else (gym.get("usage_by_server") or {"?": gym.get("usage") or {}})
    )
    models = _models(record)
    return merge_usage_by_server(*({models.get(s, s): u} for s, u in by_server.items()))


@dataclass
class ReportData:
    """Everything the HTML and text reports show, built in one pass over the file."""

    path: str
    max_rows: int = 2000
    rollouts: int = 0
    ok: int = 0
    failed: int = 0
    bad_lines: int = 0
    rewards: Counter[float] = field(default_factory=Counter)
    reward_sum: float = 0.0
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    usage_models: dict[str, dict[str, int]] = field(default_factory=dict)
    model_calls: int = 0
    tool_calls: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    priced_cost: float = 0.0
    unpriced: int = 0
    unpriced_models: set[str] = field(default_factory=set)
    cost_models: dict[str, float | None] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    row_costs: list[float | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)  # gym_run.metrics' block
    _latency_seen: int = 0

    @property
    def cost_usd(self) -> float | None:
        """The run's cost, or None when any rollout used a model without a price."""
        return None if self.unpriced else self.priced_cost

    @property
    def reward_mean(self) -> float | None:
        return self.reward_sum / sum(self.rewards.values()) if self.rewards else None


def collect_report(
    path: str,
    *,
    prices: PriceTable | None = None,
    max_rows: int = 2000,
    pass_threshold: float = 1.0,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> ReportData:
    """`prices` re-prices every rollout from its usage; without it, the cost gym-run recorded is
    shown. The aggregate block (gym_run.metrics) is computed in the same pass; `on_record` sees
    every final record too (e.g. a JUnit writer)."""
    data = ReportData(path=path, max_rows=max_rows)
    meter = CostMeter(prices or PriceTable.load(), {})
    sampler = random.Random(0)

    def skipped(_lineno: int, _why: str) -> None:
        data.bad_lines += 1

    final = FinalSet(path, skipped)
    aggregator = Aggregator(
        pass_threshold=pass_threshold, num_repeats=final.num_repeats, ordered=True
    )
    for record in final:
        aggregator.add(record)
        if on_record is not None:
            on_record(record)
        _add(
            data,
            record,
            meter if prices is not None or "cost_usd" not in (record.get("_gym") or {}) else None,
            sampler,
        )
    data.aggregate = aggregator.document()
    data.warnings = [*meter.warnings]
    if data.bad_lines:
        data.warnings.append(
            f"{data.bad_lines} line(s) of {path} are not JSON objects (or not rollout "
            "records of this run) and were skipped"
        )
    return data


def _add(
    data: ReportData, record: dict[str, Any], meter: CostMeter | None, sampler: random.Random
) -> None:
    """`meter` None: the record's own cost (priced by gym-run with the plan's prices)."""
    data.rollouts += 1
    gym = record.get("_gym") or {}
    cost: float | None = None
    if gym.get("status") != "ok":
        data.failed += 1
        error = gym.get("error") or {}
        data.errors[f"{error.get('class', 'Error')}: {str(error.get('message', ''))[:300]}"] += 1
    else:
        data.ok += 1
        reward = record.get("reward")
        if isinstance(reward, (int, float)) and not isinstance(reward, bool):
            data.rewards[round(float(reward), 3)] += 1
            data.reward_sum += reward
        for model, usage in usage_by_model(record).items():
            add_usage(data.usage_models.setdefault(model, {}), usage)
        add_usage(data.usage, gym.get("usage"))
        data.model_calls += gym.get("model_calls") or 0
        data.tool_calls += gym.get("tool_calls") or 0
        cost = _cost(data, record, meter)
        if "judge_verdict" in record:
            data.verdicts[
                record["judge_verdict"]
                or ("unparseable" if record.get("judge_unparseable") else "no_answer")
            ] += 1
        if gym.get("cache_hit"):
            data.cache_hits += 1
        _sample_latency(data, gym.get("latency_s"), sampler)
    if len(data.rows) < data.max_rows:
        data.rows.append(record)
        data.row_costs.append(cost)


def _cost(data: ReportData, record: dict[str, Any], meter: CostMeter | None) -> float | None:
    """One rollout's cost, also summed per model (None sticks: a model without a price stays n/a)."""
    if meter is None:
        gym = record["_gym"]
        models = _models(record)
        by_model: dict[str, float | None] = {}
        for server, c in (gym.get("cost_by_server") or {}).items():
            model = models.get(server, server)
            by_model[model] = (
                None
                if c is None or by_model.get(model, 0.0) is None
                else by_model.get(model, 0.0) + c
            )
        cost = gym["cost_usd"]
    else:
        priced = meter.rollout(usage_by_model(record, billed=True))
        by_model, cost = priced.by_server, priced.total_usd
    for model, c in by_model.items():
        if c is None:
            data.unpriced_models.add(model)
            data.cost_models[model] = None
        elif data.cost_models.get(model, 0.0) is not None:
            data.cost_models[model] = data.cost_models.get(model, 0.0) + c  # type: ignore[operator]
        data.priced_cost += c or 0.0
    if cost is None:
        data.unpriced += 1
    return cost


def _sample_latency(data: ReportData, latency: Any, sampler: random.Random) -> None:
    """Reservoir sampling (Algorithm R): a uniform sample of every latency, bounded in size."""
    if not isinstance(latency, (int, float)):
        return
    data._latency_seen += 1
    if len(data.latencies) < RESERVOIR:
        data.latencies.append(float(latency))
    else:
        slot = sampler.randrange(data._latency_seen)
        if slot < RESERVOIR:
            data.latencies[slot] = float(latency)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
