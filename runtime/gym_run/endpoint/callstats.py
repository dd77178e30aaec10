"""Counters of model calls: per endpoint client for the run (progress line, metrics) and per rollout
(the record's `_gym.retries`), the latter found through a context variable so the agent loop
between the collector and the client does not have to pass it along."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CallStats:
    """`requests` counts HTTP attempts; `calls` the model calls they served (requests - retries)."""

    calls: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    max_attempts: int = 0

    def add(self, other: CallStats) -> None:
        self.calls += other.calls
        self.requests += other.requests
        self.retries += other.retries
        self.rate_limited += other.rate_limited
        self.failed += other.failed
        self.max_attempts = max(self.max_attempts, other.max_attempts)

    @classmethod
    def total(cls, parts: Iterable[CallStats]) -> CallStats:
        out = cls()
        for part in parts:
            out.add(part)
        return out

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RolloutTrace:
    """What one rollout's model calls went through.

    `paused_s`: time spent waiting for the endpoint's back-pressure (the adaptive cap, waits after
    a 429) or for memory for a large answer; the rollout's deadline does not count it.
    `holds`: reservations of large-answer memory (endpoint/memory.py), given back by `release()`
    once the rollout's record is handed to the writer.
    """

    retries: int = 0
    paused_s: float = 0.0
    holds: list[tuple[Any, int]] = field(default_factory=list)

    def release(self) -> None:
        holds, self.holds = self.holds, []
        for memory, size in holds:
            memory.release(size)


CURRENT_ROLLOUT: contextvars.ContextVar[RolloutTrace | None] = contextvars.ContextVar(
    "gym_current_rollout", default=None
)


def note_retry() -> None:
    trace = CURRENT_ROLLOUT.get()
    if trace is not None:
        trace.retries += 1


def note_pause(seconds: float) -> None:
    """Time the current rollout spent on back-pressure; its deadline does not count it."""
    trace = CURRENT_ROLLOUT.get()
    if trace is not None and seconds > 0:
        trace.paused_s += seconds
