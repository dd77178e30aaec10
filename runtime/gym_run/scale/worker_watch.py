"""A Ray worker's model calls in, "stop making calls" out: the run's watch inside a worker
(gym_run.endpoint.watch.Watch), the driver's RunWatch on the other side of `results`.

The driver holds the one budget. A worker cannot wait for it: with a fast endpoint it makes many
calls while its news is on the way, so it keeps a view of its own, the driver's spend as of the
last `results` plus what it spent since, and stops itself (rollouts abandoned at their next model
call) once that view reaches a limit. The view never exceeds the true total, so a worker never
stops early; the other workers' unreported calls are what a run can go over by, as calls already
sent are in a local run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gym_run.collect.budget import Budget
from gym_run.collect.stops import RunWatch
from gym_run.endpoint.pricing import CostMeter


class WorkerWatch:
    """Paid calls and a tripped breaker kept for the driver; the local view of the budget; the
    driver's halt (`halt`)."""

    def __init__(self, wake: Callable[[], None], budget: Budget, meter: CostMeter) -> None:
        self.spent_calls: list[tuple[str, Any]] = []
        self.down: tuple[str, str] | None = None
        self._down_unsent = False
        self._wake = wake  # ends the driver's wait for `results` now
        self._prompt = budget.limited  # else nobody needs to hear of spend before the records
        self._local = RunWatch(
            Budget(budget.max_usd, budget.max_tokens),
            meter,
            stop=lambda: None,
            notice=lambda _line: None,
            in_flight=lambda: 0,
        )
        self._unsent = (0.0, 0)  # spend since the spend the driver last told us about

    @property
    def stopped(self) -> str | None:
        return self._local.stopped

    def check(self) -> None:
        self._local.check()

    def spent(self, server: str, usage: Any) -> None:
        if not self._prompt:
            return  # no limit to watch: the records carry the cost
        self.spent_calls.append((server, usage))
        budget = self._local.budget
        before = (budget.spent_usd, budget.spent_tokens)
        self._local.spent(server, usage)  # charged to the local view; stops here at a limit
        self._unsent = (
            self._unsent[0] + budget.spent_usd - before[0],
            self._unsent[1] + budget.spent_tokens - before[1],
        )
        if self._prompt:
            self._wake()

    def endpoint_down(self, server: str, reason: str) -> None:
        if self.down is None:
            self.down, self._down_unsent = (server, reason), True
            self.halt(f"the endpoint of {server} is unusable")
        self._wake()

    def halt(self, reason: str) -> None:
        """No model call starts here any more: rollouts in flight raise RunStopped at their next."""
        if self._local.stopped is None:
            self._local.stopped = reason

    def news(self) -> bool:
        """Something the driver should hear before the next record: the breaker, or spend."""
        return self._down_unsent or bool(self.spent_calls)

    def take_down(self) -> tuple[str, str] | None:
        """The tripped breaker's (server, reason), once."""
        if not self._down_unsent:
            return None
        self._down_unsent = False
        return self.down

    def take_spent(self, driver_spent: tuple[float, int]) -> list[tuple[str, Any]]:
        """The paid calls for the driver, which had spent `driver_spent` before hearing of them:
        the local view becomes that plus these calls."""
        calls, self.spent_calls = self.spent_calls, []
        budget = self._local.budget
        budget.spent_usd = driver_spent[0] + self._unsent[0]
        budget.spent_tokens = driver_spent[1] + self._unsent[1]
        self._unsent = (0.0, 0)
        self._local.check_budget()
        return calls
