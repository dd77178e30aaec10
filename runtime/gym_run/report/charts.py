"""The report's aggregates in, its charts as inline SVG out: every chart summarises all rollouts
with a bounded number of bars (bins of values or of input positions), never one element per
rollout, so it reads the same at 20 rollouts and at 100,000."""

from __future__ import annotations

from typing import Any

from gym_run.report.data import TOKEN_SERIES, ReportData
from gym_run.report.sketch import Reservoir
from gym_run.report.svgchart import PALETTE, binned, fmt, histogram, stacked_bar_chart

FAILED_COLOR = PALETTE[3]
COST_COLOR = "#b279a2"  # not the failures' red


def _scale(sample: Reservoir) -> float:
    """A saturated reservoir's counts stand for all the values it was drawn from."""
    return sample.seen / len(sample) if len(sample) else 1.0


def reward_chart(data: ReportData) -> str:
    """Ok rollouts by reward value (or in bins), and the failed ones beside them in red: a failed
    rollout has no reward, but it is one of the rollouts the run was asked for."""
    title, x_label = "Reward distribution", "reward (failed: no reward)"
    exact = len(data.rewards) <= 12 and sum(data.rewards.values()) == data.reward_count
    if exact:
        labels = [fmt(v) for v in sorted(data.rewards)]
        counts = [float(data.rewards[v]) for v in sorted(data.rewards)]
    else:
        sample = data.reward_sample
        labels, counts = binned(sample.values, tail=None, scale=_scale(sample))
    ok = [*counts, 0.0]
    failed = [0.0] * len(counts) + [float(data.failed)]
    if not data.failed:
        return stacked_bar_chart(
            labels,
            [("", counts, PALETTE[2])],
            title=title.split(" (")[0],
            x_label="reward",
            y_label="rollouts",
            label_every=1 if exact else 2,
            counts=True,
        )
    return stacked_bar_chart(
        [*labels, "failed"],
        [("ok", ok, PALETTE[2]), ("failed", failed, FAILED_COLOR)],
        title=title,
        x_label=x_label,
        y_label="rollouts",
        label_every=1 if exact else 2,
        counts=True,
    )


def latency_chart(data: ReportData) -> str:
    """Milliseconds when every rollout took under a second (the stand-in), else seconds."""
    values = data.latency.values
    fast = bool(values) and max(values) < 1
    return histogram(
        [v * 1000 for v in values] if fast else values,
        title="Latency distribution",
        x_label=f"{'milliseconds' if fast else 'seconds'} per rollout",
        color=PALETTE[0],
        scale=_scale(data.latency),
    )


def token_series_chart(data: ReportData) -> str:
    """Mean tokens per ok rollout over the run, in at most 60 bins of consecutive rollouts."""
    labels, means = data.token_series.means()
    width = data.token_series.width
    colors = {"input": PALETTE[0], "cached input": PALETTE[4], "output": PALETTE[1]}
    return stacked_bar_chart(
        labels,
        [(name, means[name], colors[name]) for name in TOKEN_SERIES],
        title="Tokens per rollout over the run",
        x_label="rollout (input order)"
        if width == 1
        else f"rollouts in input order; a bar: {width:,} rollouts, the mean of the ok ones",
        y_label="tokens",
        label_every=max(1, len(labels) // (10 if width == 1 else 5)),
    )


def cost_chart(data: ReportData) -> str:
    """Cost per rollout when any rollout is priced; otherwise total tokens per rollout, the
    quantity a price would turn into cost (the cost card says why there is none)."""
    if len(data.costs):
        return histogram(
            data.costs.values,
            title="Cost per rollout (USD)",
            x_label="USD per rollout",
            color=COST_COLOR,
            scale=_scale(data.costs),
        )
    return histogram(
        data.tokens.values,
        title="Tokens per rollout (no cost: no price)",
        x_label="tokens per rollout (all model servers)",
        color=PALETTE[4],
        scale=_scale(data.tokens),
    )


def tasks_chart(aggregate: dict[str, Any]) -> str | None:
    """With repeats: how many tasks passed 0, 1, ... k of their k rollouts."""
    repeats = aggregate.get("repeats") or {}
    n = str(repeats.get("num_repeats", ""))
    by_passed = (repeats.get("tasks_by_passed") or {}).get(n)
    if not by_passed:
        return None
    labels = [f"{c} of {n}" for c in range(int(n) + 1)]
    counts = [float(by_passed.get(str(c), 0)) for c in range(int(n) + 1)]
    return stacked_bar_chart(
        labels,
        [("", counts, PALETTE[2])],
        title=f"Tasks by rollouts passed (of {n})",
        x_label="rollouts passed",
        y_label="tasks",
        label_every=1 if int(n) <= 12 else 2,
        counts=True,
    )


def charts(data: ReportData) -> dict[str, str | None]:
    return {
        "reward": reward_chart(data),
        "latency": latency_chart(data),
        "tokens": token_series_chart(data),
        "cost": cost_chart(data),
        "tasks": tasks_chart(data.aggregate),
    }
