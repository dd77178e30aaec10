"""Counters of model calls: per endpoint client for the run (progress line, metrics) and per rollout
(the record's `_gym.retries`), the latter found through a context variable so the agent loop
between the collector and the client does not have to pass it along."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import asdict, dataclass


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
    """What one rollout's model calls went through."""

    retries: int = 0


CURRENT_ROLLOUT: contextvars.ContextVar[RolloutTrace | None] = contextvars.ContextVar(
    "gym_current_rollout", default=None
)


def note_retry() -> None:
    trace = CURRENT_ROLLOUT.get()
    if trace is not None:
        trace.retries += 1
