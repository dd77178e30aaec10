"""Rollouts in input order in, the bounded set of them the report's table shows out.

The first three quarters of `max_rows` are the first rollouts of the file; the last quarter are
the rollouts after them, with failed and not-passed ones first from anywhere further on, so a
filter on failures finds some however late they came. Memory: at most 1.25 x max_rows records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    """One rollout the table shows: its position in the final set, the record and its cost."""

    position: int
    record: dict[str, Any]
    cost: float | None
    passed: bool = False


@dataclass
class TableRows:
    max_rows: int
    head: list[Row] = field(default_factory=list)  # the first ones, always shown
    rest: list[Row] = field(default_factory=list)  # the next ones, in order
    later: list[Row] = field(default_factory=list)  # not passed, after `rest` filled up
    not_passed_after_head: int = 0

    @property
    def reserve(self) -> int:
        return self.max_rows // 4

    def add(self, row: Row) -> None:
        if len(self.head) < self.max_rows - self.reserve:
            self.head.append(row)
            return
        self.not_passed_after_head += not row.passed
        if len(self.rest) < self.reserve:
            self.rest.append(row)
        elif not row.passed and len(self.later) < self.reserve:
            self.later.append(row)

    @property
    def rows(self) -> list[Row]:
        """The head, then `reserve` rows after it: not-passed first, the next in order after them."""
        if not self.later:
            return self.head + self.rest
        bad = ([r for r in self.rest if not r.passed] + self.later)[: self.reserve]
        good = [r for r in self.rest if r.passed][: self.reserve - len(bad)]
        return self.head + sorted(bad + good, key=lambda r: r.position)
