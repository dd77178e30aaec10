"""A rollouts.jsonl file in, the report's aggregates over its final set and a bounded choice of rows out.

The final set is the one resume and export use (runtime/gym_run/collect/resume.py: an id's first ok
record, else its last failed one), in input order. Aggregates cover every rollout; the charts are
drawn from bounded summaries (runtime/gym_run/report/sketch.py); the table keeps at most `max_rows`
records: the first ones in input order, and room for failed or not-passed rollouts sampled from the
rest (runtime/gym_run/report/table.py), so a filter on failures finds them from across the run.
A report of ten million rollouts needs about as much memory as one of two thousand.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gym_run.collect.resume import FinalSet
from gym_run.endpoint.pricing import CostMeter, PriceTable, add_usage, merge_usage_by_server
from gym_run.endpoint.usage import USAGE_KEYS, record_billed
from gym_run.messages import message_text
from gym_run.metrics.aggregate import Aggregator, is_ok, record_index
from gym_run.report.sketch import BinnedSeries, BoundedCounter, Reservoir, percentile
from gym_run.report.table import Row, TableRows

__all__ = ["ReportData", "Row", "collect_report", "percentile", "usage_by_model"]

TOKEN_SERIES = ("input", "cached input", "output")
HARDEST_TASKS = 10
MAX_REWARD_VALUES = 1000  # distinct rewards counted exactly; past it, the histogram's sample


def _models(record: Mapping[str, Any]) -> dict[str, str]:
    """server -> model: what gym-run priced the record with, else the model its response names."""
    gym = record.get("_gym") or {}
    policy = (record.get("response") or {}).get("model") or "unknown model"
    known = gym.get("model_by_server") or {}
    return {
        server: known.get(server, policy) for server in gym.get("usage_by_server") or {"?": None}
    }


def usage_by_model(record: Mapping[str, Any], *, billed: bool = False) -> dict[str, dict[str, int]]:
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


def _reward(record: Mapping[str, Any]) -> float | None:
    reward = record.get("reward")
    return (
        float(reward) if isinstance(reward, (int, float)) and not isinstance(reward, bool) else None
    )


def passed(record: Mapping[str, Any], threshold: float) -> bool:
    """The aggregate's rule: an ok rollout whose reward reaches the pass threshold."""
    reward = _reward(record)
    return is_ok(record) and reward is not None and reward >= threshold


@dataclass
class ReportData:
    """Everything the HTML and text reports show, built in one pass over the file."""

    path: str
    max_rows: int = 2000
    pass_threshold: float = 1.0
    rollouts: int = 0
    ok: int = 0
    failed: int = 0
    bad_lines: int = 0
    rewards: Counter[float] = field(default_factory=Counter)
    reward_sum: float = 0.0
    reward_count: int = 0
    reward_min: float | None = None
    reward_max: float | None = None
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    usage_models: dict[str, dict[str, int]] = field(default_factory=dict)
    model_calls: int = 0
    tool_calls: int = 0
    latency: Reservoir = field(default_factory=lambda: Reservoir(seed=0))
    tokens: Reservoir = field(default_factory=lambda: Reservoir(seed=1))
    costs: Reservoir = field(default_factory=lambda: Reservoir(seed=2))
    reward_sample: Reservoir = field(default_factory=lambda: Reservoir(seed=3))
    token_series: BinnedSeries = field(default_factory=lambda: BinnedSeries(0, TOKEN_SERIES))
    errors: BoundedCounter = field(default_factory=BoundedCounter)
    verdicts: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    priced_cost: float = 0.0
    unpriced: int = 0
    unpriced_models: set[str] = field(default_factory=set)
    cost_models: dict[str, float | None] = field(default_factory=dict)
    shown: TableRows = field(default_factory=lambda: TableRows(0))
    hardest: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)  # a heap
    warnings: list[str] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)  # gym_run.metrics' block
    _prompt: str = ""
    _prompt_task: int = -1

    @property
    def cost_usd(self) -> float | None:
        """The run's cost, or None when any rollout used a model without a price."""
        return None if self.unpriced else self.priced_cost

    @property
    def reward_mean(self) -> float | None:
        """Over ok rollouts with a reward; the outcome (failures as 0) is in `aggregate`."""
        return self.reward_sum / self.reward_count if self.reward_count else None

    @property
    def latencies(self) -> list[float]:
        return self.latency.values

    @property
    def table(self) -> list[Row]:
        """The rows the table shows (runtime/gym_run/report/table.py chooses them)."""
        return self.shown.rows

    @property
    def rows(self) -> list[Mapping[str, Any]]:
        return [row.record for row in self.table]

    @property
    def row_costs(self) -> list[float | None]:
        return [row.cost for row in self.table]

    def hardest_tasks(self) -> list[dict[str, Any]]:
        """The tasks with the lowest mean reward (failures as 0), lowest first."""
        return [task for _, _, task in sorted(self.hardest, key=lambda t: (-t[0], -t[1]))]


def collect_report(
    path: str,
    *,
    prices: PriceTable | None = None,
    max_rows: int = 2000,
    pass_threshold: float = 1.0,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> ReportData:
    """`prices` re-prices every rollout from its usage; without it, the cost gym-run recorded is
    shown. The aggregate block (gym_run.metrics) is computed in the same pass; `on_record` sees
    every final record too (e.g. a JUnit writer)."""
    data = ReportData(path=path, max_rows=max_rows, pass_threshold=pass_threshold)
    data.shown = TableRows(max_rows)
    meter = CostMeter(prices or PriceTable.load(), {})

    def skipped(_lineno: int, _why: str) -> None:
        data.bad_lines += 1

    final = FinalSet(path, skipped)
    data.token_series = BinnedSeries(final.tasks * max(1, final.num_repeats), TOKEN_SERIES)
    aggregator = Aggregator(
        pass_threshold=pass_threshold,
        num_repeats=final.num_repeats,
        ordered=True,
        on_task=lambda task: _note_task(data, task),
    )
    for position, record in enumerate(final):
        aggregator.add(record)  # closes the previous task first: data._prompt is still its own
        if on_record is not None:
            on_record(record)
        recorded = "cost_usd" in (record.get("_gym") or {})
        _add(data, position, record, meter if prices is not None or not recorded else None)
    data.aggregate = aggregator.document()
    data.warnings = [*meter.warnings]
    if data.bad_lines:
        data.warnings.append(
            f"{data.bad_lines} line(s) of {path} are not JSON objects (or not rollout "
            "records of this run) and were skipped"
        )
    return data


def _note_task(data: ReportData, task: dict[str, Any]) -> None:
    """Keeps the HARDEST_TASKS tasks with the lowest mean reward (a bounded max-heap on -mean)."""
    entry = {
        "task": task["task"],
        "rollouts": task["rollouts"],
        "passed": task["passed"],
        "failed": task["failed"],
        "reward_mean": task["reward_mean"],
        "rewards": task["rewards"][:16],
        "prompt": data._prompt,
    }
    item = (-task["reward_mean"], -task["task"], entry)
    if len(data.hardest) < HARDEST_TASKS:
        heapq.heappush(data.hardest, item)
    elif item[:2] > data.hardest[0][:2]:
        heapq.heapreplace(data.hardest, item)


def _prompt_of(record: Mapping[str, Any]) -> str:
    """The last user text of a row's input: what a task is called in the report."""
    raw = (record.get("responses_create_params") or {}).get("input")
    if isinstance(raw, str):
        return raw[:200]
    for item in reversed(raw if isinstance(raw, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            return message_text(item)[:200]
    return ""


def _add(
    data: ReportData, position: int, record: Mapping[str, Any], meter: CostMeter | None
) -> None:
    """`meter` None: the record's own cost (priced by gym-run with the plan's prices)."""
    data.rollouts += 1
    gym = record.get("_gym") or {}
    cost: float | None = None
    task = record_index(record)[0]
    if task != data._prompt_task:
        data._prompt, data._prompt_task = _prompt_of(record), task
    if gym.get("status") != "ok":
        data.failed += 1
        error = gym.get("error") or {}
        data.errors.note(f"{error.get('class', 'Error')}: {str(error.get('message', ''))[:300]}")
    else:
        data.ok += 1
        _add_reward(data, _reward(record))
        for model, usage in usage_by_model(record).items():
            add_usage(data.usage_models.setdefault(model, {}), usage)
        usage = gym.get("usage") or {}
        add_usage(data.usage, usage)
        inp, cached = usage.get("input_tokens") or 0, usage.get("cached_input_tokens") or 0
        cached = min(cached, inp)
        values = {"input": inp - cached, "cached input": cached}
        values["output"] = usage.get("output_tokens") or 0
        data.token_series.add(position, values)
        data.tokens.add(float(usage.get("total_tokens") or 0))
        data.model_calls += gym.get("model_calls") or 0
        data.tool_calls += gym.get("tool_calls") or 0
        cost = _cost(data, record, meter)
        if cost is not None:
            data.costs.add(cost)
        if "judge_verdict" in record:
            data.verdicts[
                record["judge_verdict"]
                or ("unparseable" if record.get("judge_unparseable") else "no_answer")
            ] += 1
        if gym.get("cache_hit"):
            data.cache_hits += 1
        if isinstance(gym.get("latency_s"), (int, float)):
            data.latency.add(float(gym["latency_s"]))
    ok = gym.get("status") == "ok"
    data.shown.add(Row(position, record, cost, passed(record, data.pass_threshold), not ok))


def _add_reward(data: ReportData, reward: float | None) -> None:
    if reward is None:
        return
    data.reward_sum += reward
    data.reward_count += 1
    data.reward_min = reward if data.reward_min is None else min(data.reward_min, reward)
    data.reward_max = reward if data.reward_max is None else max(data.reward_max, reward)
    data.reward_sample.add(reward)
    key = round(reward, 3)
    if key in data.rewards or len(data.rewards) < MAX_REWARD_VALUES:
        data.rewards[key] += 1


def _cost(data: ReportData, record: Mapping[str, Any], meter: CostMeter | None) -> float | None:
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
