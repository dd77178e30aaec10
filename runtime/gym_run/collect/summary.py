"""A finished job (its metrics document) in, the few lines gym-run prints after a run out."""

from __future__ import annotations

from typing import Any


def usd(value: float) -> str:
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def cost_lines(cost: dict[str, Any]) -> list[str]:
    """`cost: $0.0123 (policy_model $0.0100, judge_model $0.0023)`, or the n/a warnings, each once."""
    by_server = cost.get("by_server") or {}
    if cost.get("total_usd") is not None:
        parts = ", ".join(f"{s} {usd(c)}" for s, c in by_server.items() if c is not None)
        mean = f"; {usd(cost['mean_usd'])} per rollout" if cost.get("mean_usd") is not None else ""
        return [
            f"cost: {usd(cost['total_usd'])}" + (f" ({parts})" if len(by_server) > 1 else "") + mean
        ]
    warnings = list(cost.get("warnings") or []) or ["cost: n/a"]
    if cost.get("priced_usd"):
        warnings[0] += f"; the priced part: {usd(cost['priced_usd'])}"
    return warnings


def outcome_lines(aggregate: dict[str, Any]) -> list[str]:
    """Mean reward (ok rollouts; and with failures as 0 when there are any), pass rate, pass@k."""
    rollouts, outcome = aggregate["rollouts"], aggregate["outcome"]
    field = (aggregate.get("fields") or {}).get("reward") or {}
    mean = field.get("mean")
    line = "mean reward: n/a" if mean is None else f"mean reward: {mean:.4f}"
    if rollouts["failed"] and outcome.get("reward_mean") is not None:
        line += (
            f" over {rollouts['ok']} ok; {outcome['reward_mean']:.4f} with the "
            f"{rollouts['failed']} failed counted as 0"
        )
    lines = [line]
    if outcome.get("pass_rate") is not None:
        lines.append(
            f"pass rate: {100 * outcome['pass_rate']:.1f}% ({outcome['passed']} of "
            f"{rollouts['final']} with reward >= {aggregate['pass_threshold']:g})"
        )
    repeats = aggregate.get("repeats")
    if repeats:
        tasks = aggregate["tasks"]["count"]
        parts = [f"pass@{k} {v:.3f}" for k, v in repeats["pass@k"].items() if v is not None]
        n = str(repeats["num_repeats"])
        if n in repeats["mean@k"]:
            parts.append(f"mean@{n} {repeats['mean@k'][n]:.3f}")
        spread = repeats.get("std_across_repeats")
        if spread is not None:
            parts.append(f"std of the repeats' means {spread:.3f}")
        lines.append(f"{tasks} tasks x {n}: " + ", ".join(parts))
    if (aggregate.get("tasks") or {}).get("file"):
        lines.append(f"per task: {aggregate['tasks']['file']}")
    return lines


def summary_lines(metrics: dict[str, Any], *, first_error: str | None = None) -> list[str]:
    """Counts, budget stop, reward, tokens (per server when there are several), cost, judge, cache."""
    gym = metrics["_gym"]
    counts, usage, run, calls = (
        gym["counts"],
        gym["usage"],
        gym.get("run", {}),
        gym.get("calls", {}),
    )
    reward = metrics.get("reward")
    missing = f", {counts['missing']} missing" if counts.get("missing") else ""
    lines = [
        f"rollouts: {counts['ok']} ok, {counts['failed']} failed (of {counts['planned']}){missing}"
    ]
    if run.get("resumed"):
        superseded = f", {run['superseded']} failed ones re-run" if run.get("superseded") else ""
        lines.append(
            f"resumed: {run['from_before']} from before, {run['new']} written now{superseded}"
        )
    if first_error:
        lines.append(f"first failure: {first_error}")
    aggregate = gym.get("aggregate")
    lines += (
        outcome_lines(aggregate)
        if aggregate
        else [
            f"mean reward: {reward:.4f}" if isinstance(reward, (int, float)) else "mean reward: n/a"
        ]
    )
    lines += [
        f"tokens: {usage['input_tokens']} in ({usage['cached_input_tokens']} cached), "
        f"{usage['output_tokens']} out ({usage['reasoning_tokens']} reasoning), {usage['total_tokens']} total",
    ]
    by_server = gym.get("usage_by_server") or {}
    if len(by_server) > 1:
        lines.append(
            "tokens by server: "
            + ", ".join(f"{s} {u['total_tokens']}" for s, u in by_server.items())
        )
    if gym.get("cost"):
        lines += cost_lines(gym["cost"])
    if gym.get("judge"):
        lines.append("judge: " + ", ".join(f"{k} {n}" for k, n in gym["judge"].items()))
    if gym.get("cache"):
        c = gym["cache"]
        lines.append(
            f"cache: {c['rollouts_replayed']} of {counts['ok']} rollouts replayed "
            f"({c['hits']} calls from the cache, {c['misses']} sent)"
        )
    if calls.get("retries"):
        lines.append(
            f"retries: {calls['retries']} ({calls['rate_limited']} after 429), "
            f"at most {calls['max_attempts']} attempts for one call"
        )
    lines.append(
        f"wall time: {gym['wall_time_s']:.2f} s ({gym['rollouts_per_s'] or 0:.1f} rollouts/s)"
    )
    return lines
