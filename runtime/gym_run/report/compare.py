"""Two rollouts files in, the comparison `gym-run compare A B` shows out: per side the aggregate
metrics, tokens, cost and latency; per task the mean reward of A and B and the change.

Both final sets are read in task order, in step, task by task (a merge join on the task index),
so memory holds one task of each plus the bounded tables: the first `max_rows` tasks, the largest
changes either way, and field statistics. Tasks are matched by index; when the two runs asked a
task different prompts, that task is counted in `input_mismatch` (the runs are then not
comparable on it, and the text says so).

The paired change (B - A per task, failed rollouts as reward 0) comes with a normal-approximation
95% interval of its mean, so "B is better" can be told from noise when there are enough tasks.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gym_run.collect.resume import FinalSet
from gym_run.endpoint.usage import add_usage, empty_usage
from gym_run.messages import last_text
from gym_run.metrics.aggregate import Aggregator, is_ok, outcome_reward, record_index
from gym_run.metrics.stats import Distribution

TOP_CHANGES = 20


@dataclass
class Side:
    """One run: its aggregate block, usage, cost and latency over its final set."""

    path: str
    aggregator: Aggregator
    usage: dict[str, int] = field(default_factory=empty_usage)
    cost_usd: float = 0.0
    unpriced: int = 0  # ok rollouts without a price (the cost is then n/a)
    latency: Distribution = field(default_factory=Distribution)
    bad_lines: int = 0
    aggregate: dict[str, Any] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        self.aggregator.add(record)
        if not is_ok(record):
            return
        gym = record.get("_gym") or {}
        add_usage(self.usage, gym.get("usage") or (record.get("response") or {}).get("usage"))
        cost = gym.get("cost_usd")
        if isinstance(cost, (int, float)):
            self.cost_usd += cost
        else:
            self.unpriced += 1
        if isinstance(gym.get("latency_s"), (int, float)):
            self.latency.add(gym["latency_s"])

    @property
    def cost(self) -> float | None:
        return None if self.unpriced else self.cost_usd


@dataclass
class TaskRow:
    task: int
    question: str
    a: float | None  # mean reward of the task's rollouts (failed = 0); None: not in that run
    b: float | None
    a_rollouts: int = 0
    b_rollouts: int = 0
    a_failed: int = 0
    b_failed: int = 0
    mismatch: bool = False

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass
class Comparison:
    a: Side
    b: Side
    max_rows: int
    rows: list[TaskRow] = field(default_factory=list)  # the first max_rows tasks
    tasks: int = 0  # tasks in both runs
    only_a: int = 0
    only_b: int = 0
    better: int = 0
    worse: int = 0
    same: int = 0
    input_mismatch: int = 0
    deltas: Distribution = field(default_factory=Distribution)
    _up: list[tuple[float, int, TaskRow]] = field(default_factory=list)  # min-heaps of |change|
    _down: list[tuple[float, int, TaskRow]] = field(default_factory=list)

    @property
    def improvements(self) -> list[TaskRow]:
        return [row for _d, _t, row in sorted(self._up, key=lambda x: (-x[0], -x[1]))]

    @property
    def regressions(self) -> list[TaskRow]:
        return [row for _d, _t, row in sorted(self._down, key=lambda x: (-x[0], -x[1]))]

    def interval(self) -> tuple[float, float] | None:
        """95% interval of the mean paired change (normal approximation), None under 2 tasks."""
        mean, std = self.deltas.mean, self.deltas.std
        if mean is None or std is None or self.deltas.count < 2:
            return None
        half = 1.96 * std / math.sqrt(self.deltas.count)
        return mean - half, mean + half

    def add(self, row: TaskRow) -> None:
        if len(self.rows) < self.max_rows:
            self.rows.append(row)
        delta = row.delta
        if delta is None:
            self.only_a += row.b is None
            self.only_b += row.a is None
            return
        self.tasks += 1
        self.input_mismatch += row.mismatch
        self.deltas.add(delta)
        if abs(delta) < 1e-12:
            self.same += 1
            return
        self.better += delta > 0
        self.worse += delta < 0
        heap = self._up if delta > 0 else self._down
        item = (abs(delta), -row.task, row)
        if len(heap) < TOP_CHANGES:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)


def _by_task(records: FinalSet) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for task, group in itertools.groupby(records, key=lambda r: record_index(r)[0]):
        yield task, list(group)


def _question(records: list[dict[str, Any]]) -> str:
    params = records[0].get("responses_create_params") or {}
    raw = params.get("input")
    text = raw if isinstance(raw, str) else last_text(raw, "user") or ""
    return " ".join(text.split())[:120]


def _input(records: list[dict[str, Any]]) -> Any:
    return (records[0].get("responses_create_params") or {}).get("input")


def compare_files(
    a_path: str, b_path: str, *, pass_threshold: float = 1.0, max_rows: int = 2000
) -> Comparison:
    """Reads both final sets once, in step; the result holds only bounded tables."""
    sides = []
    for path in (a_path, b_path):
        final = FinalSet(path)
        side = Side(
            path,
            Aggregator(pass_threshold=pass_threshold, num_repeats=final.num_repeats, ordered=True),
        )

        def skipped(_lineno: int, _why: str, side: Side = side) -> None:
            side.bad_lines += 1

        final.skip = skipped
        sides.append((side, final))
    (a, a_final), (b, b_final) = sides
    comparison = Comparison(a, b, max_rows)
    a_tasks, b_tasks = _by_task(a_final), _by_task(b_final)
    next_a, next_b = next(a_tasks, None), next(b_tasks, None)
    while next_a is not None or next_b is not None:
        if next_b is None or (next_a is not None and next_a[0] < next_b[0]):
            assert next_a is not None
            comparison.add(_row(next_a, None, a, b))
            next_a = next(a_tasks, None)
        elif next_a is None or next_b[0] < next_a[0]:
            comparison.add(_row(None, next_b, a, b))
            next_b = next(b_tasks, None)
        else:
            comparison.add(_row(next_a, next_b, a, b))
            next_a, next_b = next(a_tasks, None), next(b_tasks, None)
    a.aggregate, b.aggregate = a.aggregator.document(), b.aggregator.document()
    return comparison


def _row(
    a_task: tuple[int, list[dict[str, Any]]] | None,
    b_task: tuple[int, list[dict[str, Any]]] | None,
    a: Side,
    b: Side,
) -> TaskRow:
    task = (a_task or b_task or (0, []))[0]
    row = TaskRow(task, _question((a_task or b_task or (0, [{}]))[1]), None, None)
    for side, found, prefix in ((a, a_task, "a"), (b, b_task, "b")):
        if found is None:
            continue
        records = found[1]
        for record in records:
            side.add(record)
        setattr(row, prefix, sum(outcome_reward(r) for r in records) / len(records))
        setattr(row, f"{prefix}_rollouts", len(records))
        setattr(row, f"{prefix}_failed", sum(not is_ok(r) for r in records))
    if a_task is not None and b_task is not None:
        row.mismatch = _input(a_task[1]) != _input(b_task[1])
    return row
