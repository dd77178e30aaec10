"""Aggregate metrics: statistics against the standard library, pass@k against brute force, the
documented treatment of failed rollouts, and task order keeping memory to one task."""

from __future__ import annotations

import itertools
import random
import statistics
from typing import Any

import pytest
from gym_run.metrics.aggregate import Aggregator, aggregate, record_values
from gym_run.metrics.gate import Gate, metric_value
from gym_run.metrics.nemo import aggregate_metrics
from gym_run.metrics.passk import ks_for, pass_at_k
from gym_run.metrics.stats import EXACT_DISTINCT, RELATIVE_ACCURACY, Distribution, summarize


def ok(task: int, rollout: int, reward: float, **extra: Any) -> dict[str, Any]:
    gym = {
        "id": f"abc:{task}:{rollout}",
        "status": "ok",
        "usage": {"input_tokens": 10 + task, "output_tokens": 5, "total_tokens": 15 + task},
        "latency_s": 0.1 * (rollout + 1),
        "tool_calls": 1,
    }
    return {
        "reward": reward,
        **extra,
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "_gym": gym,
    }


def failed(task: int, rollout: int, cls: str = "ModelCallError") -> dict[str, Any]:
    return {
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "_gym": {
            "id": f"abc:{task}:{rollout}",
            "status": "failed",
            "error": {"class": cls, "message": "HTTP 429"},
        },
    }


@pytest.mark.parametrize("n", [1, 2, 5, 6, 101])
def test_distribution_matches_the_standard_library(n: int) -> None:
    rng = random.Random(n)
    values = [rng.choice([0.0, 0.5, 1.0]) if n < 50 else rng.gauss(3, 2) for _ in range(n)]
    dist = Distribution()
    for value in values:
        dist.add(value)
    assert dist.count == n
    assert dist.mean == pytest.approx(statistics.fmean(values))
    assert dist.std == pytest.approx(statistics.stdev(values) if n > 1 else 0.0)
    assert dist.median == pytest.approx(statistics.median(values))
    assert (dist.min, dist.max) == (min(values), max(values))
    assert dist.median_exact


def test_distribution_median_stays_bounded_and_within_its_accuracy() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 2) for _ in range(50_000)] + [-3.0, 0.0]
    dist = Distribution()
    for value in values:
        dist.add(value)
    assert not dist.median_exact
    assert dist.as_dict()["median_approx"] is True
    exact = sorted(values)[(len(values) - 1) // 2]
    assert dist.median == pytest.approx(exact, rel=RELATIVE_ACCURACY * 1.01)
    sketch = dist._sketch
    assert sketch is not None
    assert len(sketch.positive) + len(sketch.negative) < 5 * EXACT_DISTINCT
    assert dist.std == pytest.approx(statistics.stdev(values))


def test_non_finite_values_are_counted_not_used() -> None:
    dist = Distribution()
    for value in (1.0, float("nan"), float("inf"), 3.0):
        dist.add(value)
    assert dist.as_dict() == {
        "count": 2,
        "mean": 2.0,
        "std": pytest.approx(1.4142135),
        "min": 1.0,
        "max": 3.0,
        "median": 2.0,
        "non_finite": 2,
    }


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_is_the_unbiased_estimator(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(outcomes, k))


def test_pass_at_k_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(10) == [1, 2, 4, 8, 10]


def test_failed_rollouts_count_as_zero_in_the_outcome_and_not_in_fields() -> None:
    records = [ok(0, 0, 1.0), ok(0, 1, 0.0), failed(1, 0), ok(1, 1, 1.0)]
    doc = aggregate(records, num_repeats=2, planned=6)
    assert doc["rollouts"] == {"final": 4, "ok": 3, "failed": 1, "missing": 2}
    assert doc["fields"]["reward"]["count"] == 3
    assert doc["fields"]["reward"]["mean"] == pytest.approx(2 / 3)
    assert doc["outcome"]["reward_mean"] == pytest.approx(0.5)
    assert doc["outcome"]["pass_rate"] == pytest.approx(0.5)
    assert doc["failures"] == {"ModelCallError": 1}
    assert doc["tasks"]["some_passed"] == 2
    # pass@2: each task has one pass in two rollouts -> 1.0; pass@1 = 1/2
    assert doc["repeats"]["pass@k"] == {"1": pytest.approx(0.5), "2": pytest.approx(1.0)}
    assert "reward 0" in doc["failed_rollouts"]


def test_record_values_take_gym_measurements_and_booleans() -> None:
    values = record_values(ok(2, 0, 0.5, judge_unparseable=True, answer="x"))
    assert values["reward"] == 0.5
    assert values["judge_unparseable"] == 1.0
    assert values["input_tokens"] == 12
    assert values["tool_calls"] == 1
    assert "answer" not in values and "_ng_task_index" not in values


def test_task_order_closes_each_task_before_the_next() -> None:
    rows: list[dict[str, Any]] = []
    agg = Aggregator(ordered=True, on_task=rows.append)
    for task in range(3):
        for rollout in range(4):
            agg.add(ok(task, rollout, float(rollout % 2)))
        assert len(agg._pending) == 1  # only the task being read
    agg.finish()
    assert [r["task"] for r in rows] == [0, 1, 2]
    assert rows[0]["rewards"] == [0.0, 1.0, 0.0, 1.0]
    assert rows[0]["fields"]["reward"]["std"] == pytest.approx(statistics.stdev([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="not in task order"):
        agg.add(ok(0, 0, 1.0))


def rounded(value: Any) -> Any:
    """Floats to 12 digits: a running mean depends (in its last bits) on the order of additions."""
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_any_order_gives_the_same_document() -> None:
    rng = random.Random(3)
    records = [ok(t, r, rng.choice([0.0, 1.0])) for t in range(20) for r in range(4)]
    records += [failed(20, 0), failed(20, 1), ok(20, 2, 1.0), ok(20, 3, 0.0)]
    ordered = aggregate(records, ordered=True, with_tasks=True)
    shuffled = list(records)
    rng.shuffle(shuffled)
    assert rounded(aggregate(shuffled, num_repeats=4, with_tasks=True)) == rounded(ordered)
    assert rounded(aggregate(shuffled, with_tasks=True)) == rounded(ordered)


def test_mean_at_k_uses_each_tasks_first_k_rollouts() -> None:
    records = [ok(0, r, v) for r, v in enumerate([1.0, 0.0, 0.0, 0.0])]
    records += [ok(1, r, v) for r, v in enumerate([0.0, 1.0, 1.0, 1.0])]
    doc = aggregate(records)
    assert doc["repeats"]["mean@k"] == {"1": 0.5, "2": 0.5, "4": 0.5}
    assert doc["repeats"]["per_repeat_mean"] == [0.5, 0.5, 0.5, 0.5]
    records = [ok(0, r, v) for r, v in enumerate([1.0, 1.0, 0.0, 0.0])]
    assert aggregate(records)["repeats"]["mean@k"] == {"1": 1.0, "2": 1.0, "4": 0.5}


def test_gate_values_by_name() -> None:
    doc = aggregate([ok(0, 0, 1.0), ok(0, 1, 0.0), ok(0, 2, 0.0), ok(1, 0, 0.0)])
    assert metric_value(doc, "reward") == pytest.approx(1 / 4)
    assert metric_value(doc, "pass_rate") == pytest.approx(1 / 4)
    # pass@2: only task 0 has two rollouts; any k up to 3, not only the ones the block lists
    assert metric_value(doc, "pass@2") == pytest.approx(brute_pass_at_k([True, False, False], 2))
    assert metric_value(doc, "pass@3") == 1.0
    assert metric_value(doc, "pass@1") == pytest.approx((1 / 3 + 0) / 2)
    assert metric_value(doc, "pass@4") is None
    with pytest.raises(ValueError, match="unknown metric"):
        metric_value(doc, "accuracy")


def test_gate_parses_and_fails_closed() -> None:
    doc = aggregate([ok(0, 0, 1.0), failed(1, 0)])
    assert Gate.parse("0.5") == Gate("reward", 0.5)
    assert Gate.parse("pass@4=0.9") == Gate("pass@4", 0.9)
    assert Gate.parse("0.5").check(doc) is None
    assert "below" in (Gate.parse("pass_rate=0.6").check(doc) or "")
    assert "cannot be computed" in (Gate.parse("pass@2=0.1").check(doc) or "")
    assert Gate.parse("pass@1=0.5").check(doc) is None  # one rollout per task: the pass rate
    for bad in ("x", "accuracy=0.5", "pass@0=1", "reward=high"):
        with pytest.raises(ValueError, match="--fail-under"):
            Gate.parse(bad)


def test_nemo_gym_shape() -> None:
    records = [ok(0, 0, 1.0), ok(0, 1, 0.0), ok(1, 0, 1.0), failed(1, 1)]
    out = aggregate_metrics(records)
    assert set(out) == {
        "group_level_metrics",
        "agent_metrics",
        "key_metrics",
        "perf_summary",
        "repeat_level_metrics",
    }
    first, second = out["group_level_metrics"]
    assert first["_ng_task_index"] == 0 and first["mean/reward"] == 0.5
    assert first["std/reward"] == pytest.approx(statistics.stdev([1.0, 0.0]))
    assert second["std/reward"] == 0.0  # one value: NeMo Gym fills 0
    assert second["missing_num_rollouts"] == 1
    agent = out["agent_metrics"]
    assert agent["mean/reward"] == pytest.approx(2 / 3)
    assert agent["num_repeats"] == 2 and agent["failed_rollouts"] == 1
    assert out["key_metrics"]["mean/reward"] == agent["mean/reward"]
    assert [e["_ng_rollout_index"] for e in out["repeat_level_metrics"]] == [0, 1]
    assert agent["mean_across_repeats/mean/reward"] == pytest.approx((1.0 + 0.0) / 2)
    assert aggregate_metrics([])["group_level_metrics"] == []


@pytest.mark.parametrize("seed", range(5))
def test_short_list_statistics_match_the_streaming_ones(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.choice([0.0, 0.25, 1.0, rng.random()]) for _ in range(rng.randint(1, 9))]
    dist = Distribution()
    for value in values:
        dist.add(value)
    fast = summarize(values)
    assert fast.keys() == dist.as_dict().keys()
    for key, value in dist.as_dict().items():
        assert fast[key] == pytest.approx(value)
    assert summarize([])["count"] == 0 and summarize([float("nan")])["non_finite"] == 1
