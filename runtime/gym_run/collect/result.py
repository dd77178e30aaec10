"""What a run or a reverify ends with (the metrics document, where the files are, why it stopped,
the exit code the CLI gives) and how it reports on the way (progress, notices)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from gym_run.collect.budget import Budget
from gym_run.collect.progress import PLAIN_INTERVAL_S
from gym_run.errors import (
    EXIT_BELOW_THRESHOLD,
    EXIT_BUDGET,
    EXIT_ENDPOINT_DOWN,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
)


@dataclass
class JobResult:
    metrics: dict[str, Any]
    rollouts_path: str
    metrics_path: str
    first_error: str | None = None
    interrupted: bool = False
    run: dict[str, Any] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    endpoint_down: str | None = None  # the circuit breaker stopped the run: why, in one line

    @property
    def counts(self) -> dict[str, int]:
        return self.metrics["_gym"]["counts"]

    @property
    def aggregate(self) -> dict[str, Any]:
        """The aggregate block (gym_run.metrics) of the final set; {} when it was not computed."""
        return self.metrics["_gym"].get("aggregate") or {}

    def exit_code(self, gates_hold: bool = True) -> int:
        """What gym-run exits with: 130 interrupted, 5 budget, 7 the endpoint is unusable (the
        circuit breaker), 6 below a gate, 3 some failed or missing, 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.budget.stopped:
            return EXIT_BUDGET
        if self.endpoint_down:
            return EXIT_ENDPOINT_DOWN
        if not gates_hold:
            return EXIT_BELOW_THRESHOLD
        return EXIT_SOME_FAILED if self.counts["failed"] or self.counts["missing"] else EXIT_OK


def stderr_notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class ProgressSpec:
    stream: TextIO | None = None
    show: bool | None = None  # None: a redrawn line on a terminal, plain lines otherwise
    interval_s: float = PLAIN_INTERVAL_S  # plain lines: one every so many seconds
