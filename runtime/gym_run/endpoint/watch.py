"""Model call outcomes in, "stop the run" out: the circuit breaker of one endpoint, and the hooks
a run gives its endpoint clients (live spend for the budget, the breaker's verdict).

A wrong key, a model name the endpoint does not know, or an endpoint that is down makes every
rollout fail the same way; recording 2,000 identical failures helps nobody. After
`circuit_breaker.consecutive_failures` calls in a row fail the same way with an error no retry
fixes, the run admits no new rows, and the rollouts in flight are abandoned at their next model
call (not recorded: a resume runs them again), as they are once the budget is reached.
"""

from __future__ import annotations

from typing import Any, Protocol

from gym_run.endpoint.retry import Failure

#: 4xx answers that concern one request (a timeout, a conflict, its size), not the endpoint
_ROW_SPECIFIC = frozenset({408, 409, 413})


class RunStopped(Exception):
    """The run admits no more model calls (budget reached, endpoint unusable); the rollout that
    asked is abandoned, not recorded as failed, so a resume runs it again."""


class Watch(Protocol):
    """What a run lets its endpoint clients report; `gym-run serve` and `check` have none."""

    def check(self) -> None:
        """Raises RunStopped once the run admits no more model calls."""

    def spent(self, server: str, usage: Any) -> None:
        """A call was paid for: its `usage` counts against the budget now, not when the rollout ends."""

    def endpoint_down(self, server: str, reason: str) -> None:
        """The breaker of `server` tripped: `reason` is the one line to show."""


def signature(failure: Failure) -> tuple[Any, ...] | None:
    """What makes two failed calls "the same failure" of the endpoint, or None when a failure says
    nothing about the endpoint as a whole (a 5xx that outlived its retries, a timeout, one bad row)."""
    if failure.kind == "connection":
        return ("unreachable",)
    if failure.kind != "status" or failure.status is None:
        return None
    same = (failure.status, failure.error_type, failure.code, failure.message[:200])
    if failure.status == 429:
        return None if failure.rate_limited else same  # a used-up quota is the endpoint's state
    return same if 400 <= failure.status < 500 and failure.status not in _ROW_SPECIFIC else None


class Breaker:
    """Counts identical endpoint failures in a row; any success, or a different failure, resets it."""

    def __init__(self, threshold: int | None) -> None:
        self.threshold = threshold
        self._last: tuple[Any, ...] | None = None
        self.count = 0
        self.tripped = False

    def success(self) -> None:
        self._last, self.count = None, 0

    def failure(self, failure: Failure) -> bool:
        """True exactly once: when this failure makes `threshold` identical ones in a row."""
        sig = signature(failure)
        if sig is None:
            self._last, self.count = None, 0
            return False
        self.count = self.count + 1 if sig == self._last else 1
        self._last = sig
        if self.threshold is None or self.tripped or self.count < self.threshold:
            return False
        self.tripped = True
        return True
