"""Rollouts in input order in, the bounded set of them the report's table shows out.

Three quarters of `max_rows` are the first rollouts of the file; the last quarter come from the
rest: failed rollouts first, then ok ones that did not pass, each a uniform (seeded) sample of the
whole rest, so a filter on failures shows failures from across the run, not only its start; passed
ones fill what is left, in order. Memory: at most 1.75 x max_rows records.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    """One rollout the table shows: its position in the final set, the record and its cost."""

    position: int
    record: Mapping[str, Any]
    cost: float | None
    passed: bool = False
    failed: bool = False


@dataclass
class Sample:
    """Algorithm R over rows: a uniform sample of at most `size` of those offered."""

    size: int
    seed: int
    rows: list[Row] = field(default_factory=list)
    seen: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def offer(self, row: Row) -> None:
        self.seen += 1
        if len(self.rows) < self.size:
            self.rows.append(row)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.rows[slot] = row


@dataclass
class TableRows:
    max_rows: int
    head: list[Row] = field(default_factory=list)  # the first ones, always shown
    next: list[Row] = field(default_factory=list)  # passed ones right after the head, in order
    failed: Sample = field(init=False)
    missed: Sample = field(init=False)  # ok, not passed

    def __post_init__(self) -> None:
        self.failed = Sample(self.reserve, seed=1)
        self.missed = Sample(self.reserve, seed=2)

    @property
    def reserve(self) -> int:
        return self.max_rows // 4

    @property
    def not_passed_after_head(self) -> int:
        return self.failed.seen + self.missed.seen

    def add(self, row: Row) -> None:
        if len(self.head) < self.max_rows - self.reserve:
            self.head.append(row)
        elif row.failed:
            self.failed.offer(row)
        elif not row.passed:
            self.missed.offer(row)
        elif len(self.next) < self.reserve:
            self.next.append(row)

    @property
    def rows(self) -> list[Row]:
        """The head, then `reserve` rows of the rest: failed, not passed, passed, by position."""
        rest = (self.failed.rows + self.missed.rows + self.next)[: self.reserve]
        return self.head + sorted(rest, key=lambda r: r.position)
