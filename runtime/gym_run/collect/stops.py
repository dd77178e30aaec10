"""What each model call reports in, "admit no more" out: the budget counted as spend happens, and
the circuit breaker's verdict on an endpoint; the run's side of gym_run/endpoint/watch.Watch.

Once the run stops (budget reached, endpoint unusable) no new row is admitted and every rollout in
flight is abandoned at its next model call (RunStopped: no record, so a resume runs it again), so
one runaway rollout cannot spend past the budget and an unusable endpoint costs a few failures,
not one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gym_run.collect.budget import Budget
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.pricing import CostMeter, cost_usd
from gym_run.endpoint.usage import normalise_usage
from gym_run.endpoint.watch import RunStopped, Watch
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.registry import Servers


class RunWatch:
    """One per run, shared by every endpoint client of it."""

    def __init__(
        self,
        budget: Budget,
        meter: CostMeter,
        *,
        stop: Callable[[], None],
        notice: Callable[[str], None],
        in_flight: Callable[[], int],
    ) -> None:
        self.budget, self.meter = budget, meter
        self._stop, self._notice, self._in_flight = stop, notice, in_flight
        self.stopped: str | None = None  # why no model call starts any more
        self.down: str | None = None  # the breaker's one line, when it tripped

    def attach(self, servers: Servers) -> None:
        attach_watch(servers, self)

    def check(self) -> None:
        if self.stopped is not None:
            raise RunStopped(self.stopped)

    def spent(self, server: str, usage: Any) -> None:
        """A call was paid for: priced at its server's model, charged now, the budget checked."""
        model = self.meter.models.get(server, server)
        price = self.meter.table.price_for(model)
        tokens = normalise_usage(usage)["total_tokens"]
        self.budget.charge_call(cost_usd(usage, price) if price is not None else None, tokens)
        self.check_budget()

    def check_budget(self) -> None:
        reason = self.budget.check()
        if reason is not None:
            self._halt(
                f"budget reached ({reason})",
                f"gym-run: budget reached ({reason}): no new rollouts",
            )

    def endpoint_down(self, server: str, reason: str) -> None:
        self.down = f"{server}: {reason}"
        self._halt(f"the endpoint of {server} is unusable", f"gym-run: stopped: {self.down}")

    def _halt(self, why: str, line: str) -> None:
        if self.stopped is not None:
            return
        self.stopped = why
        self._stop()
        in_flight = self._in_flight()
        self._notice(
            line
            + (
                f"; {in_flight} in flight stop at their next model call (a resume runs them)"
                if in_flight
                else ""
            )
        )


def attach_watch(servers: Servers, watch: Watch) -> None:
    """Every model server's HTTP client (behind the response cache, if any) reports to `watch`:
    a run's RunWatch here, or a Ray worker's, which passes it on to the driver's."""
    for server in servers.built.values():
        if isinstance(server, ModelServer):
            client = getattr(server.client, "inner", server.client)
            if isinstance(client, OpenAIClient):
                client.watch = watch
