"""Final rollout records in, the aggregate metrics document out (NeMo Gym's means + our `_gym` block),
and NeMo Gym's `/aggregate_metrics` answer for records a collector sends (`aggregate_metrics`).

Metrics describe the final set (runtime/gym_run/collect/resume.py decides which record of an id is final): the
runner adds a record when it becomes final and drops a failed one when a retry supersedes it, so
metrics never need the rollouts file read back. Failed records carry no usage or cost.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from gym_run.endpoint.usage import USAGE_KEYS, add_usage, empty_usage, record_billed


class Metrics:
    """Running totals over the final records."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.usage = dict.fromkeys(USAGE_KEYS, 0)
        self.usage_by_server: dict[str, dict[str, int]] = {}
        self.billed_tokens = 0  # what the budget counts: tokens not replayed from the cache
        self.priced_usd = 0.0  # the priced part of the cost (all of it when nothing is unpriced)
        self.priced = 0  # ok records that carry a cost (cost_usd present)
        self.unpriced = 0  # ... whose cost_usd is null (a model without a price)
        self.cost_by_server: dict[str, float | None] = {}
        self.judge: Counter[str] = Counter()
        self.cache: Counter[str] | None = None

    @property
    def rollouts(self) -> int:
        return self.ok + self.failed

    def add(self, record: dict[str, Any]) -> None:
        gym = record.get("_gym") or {}
        if gym.get("status") != "ok":
            self.failed += 1
            return
        self.ok += 1
        for key, value in (gym.get("usage") or {}).items():
            if key in self.usage and isinstance(value, int):
                self.usage[key] += value
        for server, usage in (gym.get("usage_by_server") or {}).items():
            add_usage(self.usage_by_server.setdefault(server, empty_usage()), usage)
        self.billed_tokens += sum(u["total_tokens"] for u in record_billed(gym).values())
        self._add_cost(gym)
        if "judge_verdict" in record:
            self.judge[
                record["judge_verdict"]
                or ("unparseable" if record.get("judge_unparseable") else "no_answer")
            ] += 1
        if "cache_hit" in gym:
            self.cache = self.cache if self.cache is not None else Counter()
            self.cache.update(
                rollouts_replayed=bool(gym["cache_hit"]),
                hits=(gym.get("cache") or {}).get("hits", 0),
                misses=(gym.get("cache") or {}).get("misses", 0),
            )
        for key, value in record.items():
            if (
                key.startswith("_")
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
            ):
                continue
            self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def _add_cost(self, gym: dict[str, Any]) -> None:
        if "cost_usd" not in gym:
            return
        self.priced += 1
        if gym["cost_usd"] is None:
            self.unpriced += 1
        for server, cost in (gym.get("cost_by_server") or {}).items():
            if cost is None:
                self.cost_by_server[server] = None
            else:
                self.priced_usd += cost
                so_far = self.cost_by_server.get(server, 0.0)
                if so_far is not None:
                    self.cost_by_server[server] = so_far + cost

    @property
    def total_usd(self) -> float | None:
        """The final set's cost; None when any of it used a model without a price, never 0 for it."""
        return None if self.unpriced or not self.priced else self.priced_usd

    def drop_failed(self) -> None:
        """A failed record stopped being final (a later record of the same id replaces it)."""
        self.failed -= 1

    def means(self) -> dict[str, float]:
        """Mean of every numeric top-level field over the ok rollouts that have it (e.g. reward)."""
        return {key: self._sums[key] / self._counts[key] for key in sorted(self._sums)}

    def cost(self, warnings: list[str] | None = None) -> dict[str, Any]:
        total = self.total_usd
        return {
            "total_usd": total,
            "mean_usd": None if total is None or not self.ok else total / self.ok,
            "priced_usd": self.priced_usd,
            "unpriced_rollouts": self.unpriced,
            "by_server": dict(sorted(self.cost_by_server.items())),
            "warnings": list(warnings or []),
        }

    def totals(
        self, *, planned: int | None = None, warnings: list[str] | None = None
    ) -> dict[str, Any]:
        """What the final set holds: counts, tokens (per server), cost, judge verdicts, cache."""
        planned = self.rollouts if planned is None else planned
        totals: dict[str, Any] = {
            "counts": {
                "planned": planned,
                "rollouts": self.rollouts,
                "ok": self.ok,
                "failed": self.failed,
                "missing": max(0, planned - self.rollouts),
            },
            "usage": dict(self.usage),
            "usage_by_server": dict(sorted(self.usage_by_server.items())),
            "tokens_per_rollout": self.usage["total_tokens"] / self.ok if self.ok else None,
            "cost": self.cost(warnings),
        }
        if self.judge:
            totals["judge"] = {
                "equal": 0,
                "not_equal": 0,
                "unparseable": 0,
                **dict(sorted(self.judge.items())),
            }
        if self.cache is not None:
            totals["cache"] = {k: self.cache[k] for k in ("rollouts_replayed", "hits", "misses")}
        return totals

    def document(
        self,
        *,
        wall_time_s: float,
        plan_hash: str,
        planned: int | None = None,
        run: dict[str, Any] | None = None,
        calls: dict[str, int] | None = None,
        warnings: list[str] | None = None,
        budget: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`counts`, `usage`, `cost`, `judge` and `cache` cover the final set; `wall_time_s`,
        `rollouts_per_s`, `run` and `calls` describe this invocation of gym-run only."""
        new = (run or {}).get("new", self.rollouts)
        gym: dict[str, Any] = {
            "plan": plan_hash,
            **self.totals(planned=planned, warnings=warnings),
            "wall_time_s": round(wall_time_s, 3),
            "rollouts_per_s": round(new / wall_time_s, 3) if wall_time_s > 0 else None,
        }
        if budget is not None:
            gym["budget"] = budget
        if run is not None:
            gym["run"] = run
        if calls is not None:
            gym["calls"] = calls
        return {**self.means(), "_gym": gym}


# NeMo Gym's /aggregate_metrics: per numeric field (a record's own and its `response.usage`'s, bools
# as 0/1) these statistics over the agent's records and over each task's; `key_metrics` are the
# means. Fields a record lacks are skipped; `std` is the sample deviation, absent below two values
# unless no field of the group has two (then 0 for the fields every record has).
STATS = ("mean", "max", "min", "median", "std")
TASK, ROLLOUT = "_ng_task_index", "_ng_rollout_index"


def aggregate_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`{group_level_metrics, agent_metrics, key_metrics}` as NeMo Gym's agents answer it, over
    the records as sent (the collector decides which count); `agent_metrics["_gym"]` adds our
    totals (ok/failed, tokens per server, cost) over those that carry a `_gym` block."""
    records = list(records)
    if not records:
        return {"group_level_metrics": [], "agent_metrics": {}, "key_metrics": {}}
    rows = [_numeric(r) for r in records]
    by_task: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        by_task.setdefault(row.get(TASK, 0), []).append(i)
    groups = []
    for task in sorted(by_task, key=_order):
        members = sorted(by_task[task], key=lambda i: _order(rows[i].get(ROLLOUT, 0)))
        group: dict[str, Any] = {TASK: task}
        group.update(_describe([rows[i] for i in members], drop=(TASK, ROLLOUT)))
        first = records[members[0]]
        group["sample"] = {"agent_ref": first.get("agent_ref") or {"name": "agent"}}
        group["num_rollouts"] = group["expected_num_rollouts"] = len(members)
        group["missing_num_rollouts"] = 0
        group["reward_profile_completion_pct"] = 100.0
        group["rollout_infos"] = [_rollout_info(records[i], rows[i]) for i in members]
        groups.append(group)
    agent: dict[str, Any] = dict(_describe(rows, drop=(TASK, ROLLOUT)))
    key = {k: v for k, v in agent.items() if k.startswith("mean/")}
    ours = Metrics()
    for record in records:
        if isinstance(record.get("_gym"), dict):
            ours.add(dict(record))
    if ours.rollouts:
        agent["_gym"] = ours.totals()
    return {"group_level_metrics": groups, "agent_metrics": agent, "key_metrics": key}


def _numeric(record: Mapping[str, Any]) -> dict[str, float]:
    """The record's numeric fields, `response.usage`'s top-level counts over them (NeMo Gym's merge)."""
    response = record.get("response")
    usage = response.get("usage") if isinstance(response, Mapping) else None
    merged = {**record, **usage} if isinstance(usage, Mapping) else dict(record)
    merged.setdefault(TASK, 0)
    merged.setdefault(ROLLOUT, 0)
    return {k: int(v) if isinstance(v, bool) else v for k, v in merged.items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if _is_number(value) else (1, str(value))


def _describe(rows: list[dict[str, float]], *, drop: tuple[str, ...]) -> dict[str, float]:
    """`<stat>/<field>` for every field of any row, in NeMo Gym's order (stat by stat)."""
    fields = list(dict.fromkeys(k for row in rows for k in row if k not in drop))
    values = {f: [row[f] for row in rows if f in row] for f in fields}
    no_spread = all(len(v) < 2 for v in values.values())
    out: dict[str, float] = {}
    for stat in STATS:
        for f, vals in values.items():
            if stat == "std":
                if len(vals) >= 2:
                    out[f"std/{f}"] = statistics.stdev(vals)
                elif no_spread and len(vals) == len(rows):
                    out[f"std/{f}"] = 0.0
            elif vals:
                out[f"{stat}/{f}"] = _stat(stat, vals)
    return out


def _stat(stat: str, vals: list[float]) -> float:
    if stat == "mean":
        return math.fsum(vals) / len(vals)
    if stat == "median":
        return float(statistics.median(vals))
    return max(vals) if stat == "max" else min(vals)


def _rollout_info(record: Mapping[str, Any], row: dict[str, float]) -> dict[str, Any]:
    """One rollout's line in its task's `rollout_infos`: its id, indices, reward and numbers."""
    task, rollout = row[TASK], row[ROLLOUT]
    info: dict[str, Any] = {"rollout_id": f"{task}:{rollout}", TASK: task, ROLLOUT: rollout}
    if "reward" in record:
        info["reward"] = record["reward"]
    info.update({k: v for k, v in row.items() if k not in (TASK, ROLLOUT, "reward")})
    return info
