"""Final rollout records in, aggregate metrics out: the one computation the metrics file, the
report, compare, reverify, the Python API and `/aggregate_metrics` share.

What is counted how (docs/metrics.md says the same for users):

- `fields`: every numeric field of the **ok** rollouts (top-level fields, booleans as 0/1, as NeMo
  Gym does, plus gym-run's tokens, latency, calls and cost from `_gym`): count, mean, std, min, max,
  median. A failed rollout has no reward to describe, so it is not in them.
- `outcome`: every final rollout, a **failed one counting as reward 0 and not passed**. A failure
  is the system under test not delivering an answer (or the run not getting one), so the headline
  number and the CI gate must not improve when rollouts fail; the count of failures stands beside
  it. A rollout passes when its reward >= `pass_threshold` (default 1.0).
- `tasks`: per task (input row) across its repeats; `repeats` (num_repeats > 1): the unbiased
  pass@k, mean@k (mean over tasks of the mean reward of each task's first k rollouts), the mean of
  each repeat and their spread.

Memory: the field statistics are bounded (runtime/gym_run/metrics/stats.py); per-task state is held
only until its task is complete, so records in task order (every final-set reader yields them so)
keep it to one task. `on_task` receives each task's row as it completes, to be written out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gym_run.metrics.passk import ks_for, pass_at_k
from gym_run.metrics.stats import Distribution, summarize

GYM_FIELDS = ("latency_s", "model_calls", "tool_calls", "retries", "cost_usd")
USAGE_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)
MAX_ERROR_CLASSES = 20
FAILED_ROLLOUTS = (
    "counted as reward 0 and not passed in outcome, tasks and repeats; left out of fields"
)

TaskSink = Callable[[dict[str, Any]], None]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def record_values(record: Mapping[str, Any]) -> dict[str, float]:
    """A record's numeric fields: top level (not `_`-prefixed; booleans 0/1), then the token counts
    (gym-run's `_gym.usage`, all model servers; else the response's `usage`, as NeMo Gym reads)
    and gym-run's own measurements, under their plain names unless the record has that name."""
    values: dict[str, float] = {}
    for key, value in record.items():
        number = None if key.startswith("_") else _number(value)
        if number is not None:
            values[key] = number
    gym = record.get("_gym") or {}
    usage = gym.get("usage") or (record.get("response") or {}).get("usage") or {}
    for key in USAGE_FIELDS:
        number = _number(usage.get(key))
        if number is not None:
            values.setdefault(key, number)
    for key in GYM_FIELDS:
        number = _number(gym.get(key))
        if number is not None:
            values.setdefault(key, number)
    return values


def record_index(record: Mapping[str, Any]) -> tuple[int, int]:
    """(task, rollout) of a record: NeMo Gym's index fields, else gym-run's `_gym.id`."""
    task, rollout = record.get("_ng_task_index"), record.get("_ng_rollout_index")
    if isinstance(task, int) and isinstance(rollout, int):
        return task, rollout
    rid = str((record.get("_gym") or {}).get("id", ""))
    parts = rid.split(":")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    raise ValueError(f"record has no task/rollout index (_ng_task_index or _gym.id): {rid[:40]!r}")


def is_ok(record: Mapping[str, Any]) -> bool:
    """gym-run's status; a record of another tool (no `_gym`) is ok when it has a reward."""
    gym = record.get("_gym")
    if isinstance(gym, dict) and "status" in gym:
        return gym["status"] == "ok"
    return _number(record.get("reward")) is not None


def outcome_reward(record: Mapping[str, Any]) -> float:
    """The reward the outcome counts: 0 for a failed rollout or one without a numeric reward."""
    reward = _number(record.get("reward")) if is_ok(record) else None
    return reward if reward is not None and math.isfinite(reward) else 0.0


def error_class(record: Mapping[str, Any]) -> str:
    error = (record.get("_gym") or {}).get("error") or {}
    return str(error.get("class") or "Error")


@dataclass
class _Task:
    rewards: dict[int, float] = field(default_factory=dict)  # rollout -> outcome reward
    passed: dict[int, bool] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)  # ok rollouts only
    ok: int = 0
    failed: int = 0


class Aggregator:
    """Add final records (any order; task order keeps memory flat), then `document()`.

    `ordered=True` promises task order (a final-set reader): a task is closed as soon as the next
    one starts. Otherwise a task closes when it has `num_repeats` records, or at the end.
    """

    def __init__(
        self,
        *,
        pass_threshold: float = 1.0,
        num_repeats: int | None = None,
        planned: int | None = None,
        ordered: bool = False,
        on_task: TaskSink | None = None,
    ) -> None:
        self.pass_threshold = pass_threshold
        self.num_repeats = num_repeats
        self.planned = planned
        self.ordered = ordered
        self.on_task = on_task
        self.ok = self.failed = self.passed = 0
        self.fields: dict[str, Distribution] = {}
        self.outcome = Distribution()
        self.errors: Counter[str] = Counter()
        self._pending: dict[int, _Task] = {}
        self._current: int | None = None
        self._closed_below = -1  # ordered: every task <= this one is closed
        self.tasks = 0
        self.incomplete_tasks = 0
        self.all_passed = self.none_passed = self.some_passed = 0
        self.task_means = Distribution()
        self.task_stds = Distribution()
        self.max_repeats = 0
        self._nc: Counter[tuple[int, int]] = Counter()  # (rollouts n, passed c) -> tasks
        self._mean_k: dict[int, list[float]] = {}  # k -> [sum of first-k means, tasks]
        self._by_repeat: dict[int, Distribution] = {}  # rollout index -> outcome rewards

    @property
    def rollouts(self) -> int:
        return self.ok + self.failed

    def add(self, record: Mapping[str, Any]) -> None:
        task, rollout = record_index(record)
        if self.ordered:
            if task <= self._closed_below:
                raise ValueError(
                    f"records are not in task order (task {task} after task {self._closed_below})"
                )
            if self._current is not None and task != self._current:
                self._close(self._current)
        self._current = task
        state = self._pending.setdefault(task, _Task())
        reward = outcome_reward(record)
        passed = is_ok(record) and reward >= self.pass_threshold
        state.rewards[rollout] = reward
        state.passed[rollout] = passed
        self.outcome.add(reward)
        self.passed += passed
        self._by_repeat.setdefault(rollout, Distribution()).add(reward)
        if is_ok(record):
            self.ok += 1
            state.ok += 1
            for name, value in record_values(record).items():
                self.fields.setdefault(name, Distribution()).add(value)
                state.values.setdefault(name, []).append(value)
        else:
            self.failed += 1
            state.failed += 1
            cls = error_class(record)
            if cls in self.errors or len(self.errors) < MAX_ERROR_CLASSES:
                self.errors[cls] += 1
            else:
                self.errors["(other classes)"] += 1
        if not self.ordered and self.num_repeats and len(state.rewards) >= self.num_repeats:
            self._close(task)

    def _close(self, task: int) -> None:
        state = self._pending.pop(task, None)
        if state is None:
            return
        self._closed_below = max(self._closed_below, task)
        n = len(state.rewards)
        c = sum(state.passed.values())
        rewards = [state.rewards[r] for r in sorted(state.rewards)]
        mean = sum(rewards) / n
        self.tasks += 1
        self.max_repeats = max(self.max_repeats, n)
        if self.num_repeats and n < self.num_repeats:
            self.incomplete_tasks += 1
        self.all_passed += c == n
        self.none_passed += c == 0
        self.some_passed += 0 < c < n
        self.task_means.add(mean)
        self._nc[n, c] += 1
        if n > 1:
            self.task_stds.add(summarize(rewards)["std"])
        for k in ks_for(n):
            acc = self._mean_k.setdefault(k, [0.0, 0])
            acc[0] += sum(rewards[:k]) / k
            acc[1] += 1
        if self.on_task is not None:
            self.on_task(
                {
                    "task": task,
                    "rollouts": n,
                    "ok": state.ok,
                    "failed": state.failed,
                    "passed": c,
                    "reward_mean": mean,
                    "rewards": rewards,
                    "fields": {k: summarize(v) for k, v in sorted(state.values.items())},
                }
            )

    def finish(self) -> None:
        """Closes the tasks still open (the last one, or every one of an unordered stream)."""
        for task in sorted(self._pending):
            self._close(task)
        self._current = None

    def document(self) -> dict[str, Any]:
        """The `aggregate` block of the metrics file (JSON-ready); closes what is still open."""
        self.finish()
        rollouts: dict[str, Any] = {"final": self.rollouts, "ok": self.ok, "failed": self.failed}
        if self.planned is not None:
            rollouts["missing"] = max(0, self.planned - self.rollouts)
        doc: dict[str, Any] = {
            "pass_threshold": self.pass_threshold,
            "failed_rollouts": FAILED_ROLLOUTS,
            "rollouts": rollouts,
            "outcome": {
                "reward_mean": self.outcome.mean,
                "pass_rate": self.passed / self.rollouts if self.rollouts else None,
                "passed": self.passed,
                "reward": self.outcome.as_dict(),
            },
            "fields": {name: d.as_dict() for name, d in sorted(self.fields.items())},
            "failures": dict(self.errors.most_common()),
            "tasks": {
                "count": self.tasks,
                "incomplete": self.incomplete_tasks,
                "all_passed": self.all_passed,
                "none_passed": self.none_passed,
                "some_passed": self.some_passed,
                "reward_mean": self.task_means.as_dict(),
            },
        }
        if self.max_repeats > 1:
            doc["repeats"] = self._repeats()
        return doc

    def _repeats(self) -> dict[str, Any]:
        per_repeat = [self._by_repeat[r] for r in sorted(self._by_repeat)]
        means = [d.mean for d in per_repeat if d.mean is not None]
        return {
            "num_repeats": self.max_repeats,
            "pass@k": {str(k): self.pass_at(k) for k in ks_for(self.max_repeats)},
            "mean@k": {str(k): s / n for k, (s, n) in sorted(self._mean_k.items()) if n},
            "tasks_per_k": {str(k): self._tasks_with(k) for k in ks_for(self.max_repeats)},
            "tasks_by_passed": {
                str(n): {str(c): t for (n2, c), t in sorted(self._nc.items()) if n2 == n}
                for n in sorted({n for n, _c in self._nc})
            },
            "per_repeat_mean": means,
            "std_across_repeats": summarize(means)["std"] if means else None,
            "mean_task_std": self.task_stds.mean,
        }

    def _tasks_with(self, k: int) -> int:
        return sum(t for (n, _c), t in self._nc.items() if n >= k)

    def pass_at(self, k: int) -> float | None:
        """Mean over the tasks with at least k rollouts of the unbiased pass@k; any k, at the end."""
        tasks = self._tasks_with(k)
        if not tasks:
            return None
        return sum(t * pass_at_k(n, c, k) for (n, c), t in self._nc.items() if n >= k) / tasks


def aggregate(
    records: Iterable[dict[str, Any]],
    *,
    pass_threshold: float = 1.0,
    num_repeats: int | None = None,
    planned: int | None = None,
    ordered: bool = False,
    with_tasks: bool = False,
) -> dict[str, Any]:
    """The aggregate block over `records`; `with_tasks` adds `task_rows` (one per task, in task
    order), which grows with the number of tasks."""
    rows: list[dict[str, Any]] = []
    agg = Aggregator(
        pass_threshold=pass_threshold,
        num_repeats=num_repeats,
        planned=planned,
        ordered=ordered,
        on_task=rows.append if with_tasks else None,
    )
    for record in records:
        agg.add(record)
    doc = agg.document()
    if with_tasks:
        doc["task_rows"] = sorted(rows, key=lambda r: r["task"])
    return doc
