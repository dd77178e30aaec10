"""`--fail-under [METRIC=]X` in, pass or a one-line reason out, judged on the aggregate block.

Metrics: `reward` (the default: mean reward over every final rollout, a failed one counting 0),
`pass_rate` (share of rollouts with reward >= the pass threshold), `pass@K` (unbiased, any K up to
num_repeats: computed from the per-task pass counts the block keeps) and `mean@K` (the K the block
reports). A metric that cannot be computed (no rollouts, K larger than the repeats) fails the gate:
a gate that cannot see the number must not pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gym_run.metrics.passk import pass_at_k

METRICS_HELP = "reward (default), pass_rate, pass@K or mean@K"


@dataclass(frozen=True)
class Gate:
    metric: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        """'0.8' -> reward >= 0.8; 'pass_rate=0.9'; 'pass@4=0.95'. ValueError says what is wrong."""
        metric, sep, number = text.partition("=")
        if not sep:
            metric, number = "reward", text
        metric = metric.strip()
        try:
            threshold = float(number)
        except ValueError:
            raise ValueError(f"--fail-under {text!r}: {number!r} is not a number") from None
        if not _known(metric):
            raise ValueError(f"--fail-under {text!r}: unknown metric {metric!r} ({METRICS_HELP})")
        return cls(metric, threshold)

    def check(self, aggregate: dict[str, Any]) -> str | None:
        """None when the run meets the gate, else the line to print."""
        value = metric_value(aggregate, self.metric)
        if value is None:
            return f"{self.metric} cannot be computed for this run (below --fail-under {self.threshold:g})"
        if value < self.threshold:
            return f"{self.metric} {value:.4f} is below --fail-under {self.threshold:g}"
        return None

    def describe(self, aggregate: dict[str, Any]) -> str:
        value = metric_value(aggregate, self.metric)
        shown = "n/a" if value is None else f"{value:.4f}"
        verdict = "ok" if self.check(aggregate) is None else "FAILED"
        return f"gate: {self.metric} {shown} >= {self.threshold:g}: {verdict}"


def _known(metric: str) -> bool:
    if metric in ("reward", "pass_rate"):
        return True
    prefix, at, number = metric.partition("@")
    return bool(at) and prefix in ("pass", "mean") and number.isdigit() and int(number) >= 1


def metric_value(aggregate: dict[str, Any], metric: str) -> float | None:
    """A headline number of an aggregate block by name (None when it cannot be computed)."""
    outcome = aggregate.get("outcome") or {}
    if metric == "reward":
        return outcome.get("reward_mean")
    if metric == "pass_rate":
        return outcome.get("pass_rate")
    if not _known(metric):
        raise ValueError(f"unknown metric {metric!r} ({METRICS_HELP})")
    prefix, _, number = metric.partition("@")
    k = int(number)
    repeats = aggregate.get("repeats") or {}
    if prefix == "mean":
        value = (repeats.get("mean@k") or {}).get(str(k))
        if value is None and k == 1:
            return outcome.get("reward_mean")  # one rollout per task: mean@1 is the mean
        return value
    if not repeats:
        return outcome.get("pass_rate") if k == 1 else None
    return pass_at_k_from_counts(repeats.get("tasks_by_passed") or {}, k)


def pass_at_k_from_counts(tasks_by_passed: dict[str, dict[str, int]], k: int) -> float | None:
    """Mean pass@k over the tasks with at least k rollouts, from {n: {c: tasks}}."""
    total = weight = 0.0
    for n_text, by_c in tasks_by_passed.items():
        n = int(n_text)
        if n < k:
            continue
        for c_text, tasks in by_c.items():
            total += tasks * pass_at_k(n, int(c_text), k)
            weight += tasks
    return total / weight if weight else None
