"""Verify responses (rollout records) in, NeMo Gym's `/aggregate_metrics` answer out.

NeMo Gym's agents answer `POST /aggregate_metrics` with `{group_level_metrics, agent_metrics,
key_metrics, repeat_level_metrics}` and its collector writes the same to
`<stem>_aggregate_metrics.json`. Names are `<stat>/<field>` (`mean/reward`, `std/reward`, ...)
with NeMo Gym's conventions, read from nemo_gym/reward_profile.py (0.7.0): every numeric field of
a record (booleans as 0/1, the response's usage counts too), std with n - 1 (0 for one value),
per task across its rollouts, per repeat across tasks, and across repeats the statistics of each
repeat's mean (`mean_across_repeats/mean/reward`). Confidence intervals are not computed.

NeMo Gym sends only rollouts that completed; a gym-run failure record (`_gym.status: failed`)
is left out here too and counted in `agent_metrics["failed_rollouts"]`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from gym_run.metrics.aggregate import is_ok, record_index, record_values
from gym_run.metrics.stats import summarize

STATS = ("mean", "max", "min", "median", "std")


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (pandas' and numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def describe(rows: list[dict[str, float]]) -> dict[str, float]:
    """`<stat>/<field>` for every field any row has (mean, max, min, median, std)."""
    columns: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for name, value in row.items():
            if math.isfinite(value):
                columns[name].append(value)
    out: dict[str, float] = {}
    for stat in STATS:
        for name, values in sorted(columns.items()):
            out[f"{stat}/{name}"] = summarize(values)[stat]
    return out


def aggregate_metrics(verify_responses: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """NeMo Gym's AggregateMetrics as a dict (perf_summary is None: gym-run records no ng_perf)."""
    by_task: dict[int, list[tuple[int, dict[str, float]]]] = defaultdict(list)
    failed = 0
    for record in verify_responses:
        if not is_ok(record):
            failed += 1
            continue
        task, rollout = record_index(record)
        by_task[task].append((rollout, record_values(record)))
    if not by_task:
        return {
            "group_level_metrics": [],
            "agent_metrics": {"failed_rollouts": failed} if failed else {},
            "key_metrics": {},
            "perf_summary": None,
            "repeat_level_metrics": [],
        }
    expected = max(len(rows) for rows in by_task.values())
    groups = []
    for task in sorted(by_task):
        rows = sorted(by_task[task], key=lambda pair: pair[0])
        groups.append(
            {
                "_ng_task_index": task,
                **describe([values for _r, values in rows]),
                "num_rollouts": len(rows),
                "expected_num_rollouts": expected,
                "missing_num_rollouts": expected - len(rows),
                "reward_profile_completion_pct": 100.0 * len(rows) / expected,
                "rollout_infos": [
                    {
                        "rollout_id": f"{task}:{r}",
                        "_ng_task_index": task,
                        "_ng_rollout_index": r,
                        **values,
                    }
                    for r, values in rows
                ],
            }
        )
    everything = [values for rows in by_task.values() for _r, values in rows]
    agent = describe(everything)
    repeats = _repeat_level(by_task)
    agent.update(_across_repeats(repeats))
    agent["num_repeats"] = len({r for rows in by_task.values() for r, _v in rows})
    if failed:
        agent["failed_rollouts"] = failed
    return {
        "group_level_metrics": groups,
        "agent_metrics": agent,
        "key_metrics": {k: v for k, v in agent.items() if k.startswith("mean/")},
        "perf_summary": None,
        "repeat_level_metrics": repeats,
    }


def _repeat_level(by_task: dict[int, list[tuple[int, dict[str, float]]]]) -> list[dict[str, Any]]:
    """One entry per rollout index across tasks; none when every task ran once."""
    by_repeat: dict[int, list[dict[str, float]]] = defaultdict(list)
    for rows in by_task.values():
        for rollout, values in rows:
            by_repeat[rollout].append(values)
    if len(by_repeat) < 2:
        return []
    out = []
    for rollout in sorted(by_repeat):
        present = by_repeat[rollout]
        entry: dict[str, Any] = {
            "_ng_rollout_index": rollout,
            "sample_count": len(present),
            "missing_count": len(by_task) - len(present),
        }
        columns: dict[str, list[float]] = defaultdict(list)
        for row in present:
            for name, value in row.items():
                if math.isfinite(value):
                    columns[name].append(value)
        for name, column in sorted(columns.items()):
            s = summarize(column)
            entry.update(
                {
                    f"mean/{name}": s["mean"],
                    f"median/{name}": s["median"],
                    f"std/{name}": s["std"],
                    f"sem/{name}": s["std"] / math.sqrt(len(column)),
                    f"min/{name}": s["min"],
                    f"max/{name}": s["max"],
                    f"p25/{name}": quantile(column, 0.25),
                    f"p75/{name}": quantile(column, 0.75),
                }
            )
        out.append(entry)
    return out


def _across_repeats(repeats: list[dict[str, Any]]) -> dict[str, float]:
    """Each repeat's `mean/<field>` as one observation: its spread across repeats."""
    columns: dict[str, list[float]] = defaultdict(list)
    for entry in repeats:
        for name, value in entry.items():
            if name.startswith("mean/"):
                columns[name].append(value)
    out: dict[str, float] = {}
    for name, values in sorted(columns.items()):
        s = summarize(values)
        for stat in ("mean", "median", "std", "min", "max"):
            out[f"{stat}_across_repeats/{name}"] = s[stat]
        out[f"se_across_repeats/{name}"] = s["std"] / math.sqrt(len(values))
    return out
