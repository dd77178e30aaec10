"""Final rollout records in, the aggregate metrics document out (NeMo Gym's means + our `_gym` block).

Metrics describe the final set (runtime/gym_run/collect/resume.py decides which record of an id is final): the
runner adds a record when it becomes final and drops a failed one when a retry supersedes it, so
metrics never need the rollouts file read back. Failed records carry no usage or cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
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

    def add(self, record: Mapping[str, Any]) -> None:
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

    def _add_cost(self, gym: Mapping[str, Any]) -> None:
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

    def sum_of(self, key: str) -> float:
        return self._sums.get(key, 0.0)

    def count_of(self, key: str) -> int:
        return self._counts.get(key, 0)

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
        aggregate: dict[str, Any] | None = None,
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
        if aggregate is not None:
            gym["aggregate"] = aggregate
        return {**self.means(), "_gym": gym}
