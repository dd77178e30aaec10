"""The aggregate block (gym_run.metrics) in, the strings the HTML report shows out: outcome,
pass@k per k, tasks, and the statistics of every numeric field. Formatting only; no numbers are
computed here, so the report shows exactly what the metrics file holds."""

from __future__ import annotations

from typing import Any

from gym_run.report.svgchart import fmt


def _n(value: Any) -> str:
    if value is None:
        return "n/a"
    return fmt(float(value)) if isinstance(value, (int, float)) else str(value)


def aggregate_view(block: dict[str, Any]) -> dict[str, Any] | None:
    if not block:
        return None
    rollouts, outcome = block["rollouts"], block["outcome"]
    reward = (block.get("fields") or {}).get("reward") or {}
    failures = block.get("failures") or {}
    outcome_rows = [
        ("mean reward (ok rollouts)", _n(reward.get("mean"))),
        ("mean reward (failed as 0)", _n(outcome.get("reward_mean"))),
        (
            f"pass rate (reward >= {block['pass_threshold']:g})",
            "n/a"
            if outcome.get("pass_rate") is None
            else f"{100 * outcome['pass_rate']:.1f}% ({outcome['passed']:,} of {rollouts['final']:,})",
        ),
        (
            "failed rollouts",
            f"{rollouts['failed']:,}"
            + (": " + ", ".join(f"{c} {n:,}" for c, n in failures.items()) if failures else ""),
        ),
    ]
    if "missing" in rollouts:
        outcome_rows.append(("missing rollouts", f"{rollouts['missing']:,}"))
    tasks = block.get("tasks") or {}
    repeats = block.get("repeats") or {}
    k_rows = [
        (k, _n(repeats["pass@k"].get(k)), _n((repeats.get("mean@k") or {}).get(k)))
        for k in repeats.get("pass@k", {})
    ]
    return {
        "note": f"Failed rollouts are {block['failed_rollouts']}.",
        "outcome": outcome_rows,
        "tasks": (
            f"{tasks.get('count', 0):,} tasks: all rollouts passed on {tasks.get('all_passed', 0):,}, "
            f"none on {tasks.get('none_passed', 0):,}, some on {tasks.get('some_passed', 0):,}"
            + (f"; {tasks['incomplete']:,} incomplete" if tasks.get("incomplete") else "")
        ),
        "k_rows": k_rows,
        "repeats": repeats.get("num_repeats"),
        "spread": _n(repeats.get("std_across_repeats")) if repeats else None,
        "fields": [
            (
                name,
                f"{s['count']:,}",
                *(_n(s.get(k)) for k in ("mean", "std", "min", "median", "max")),
                bool(s.get("median_approx")),
            )
            for name, s in (block.get("fields") or {}).items()
        ],
    }
