"""Token usage + a price table in, USD out: cost per rollout, per model server and in total.

The price table itself lives in gym_compile/prices.py (the compiler's estimate reads it too). A
model without a price costs `None`, never 0: a silent zero would make an unpriced run look free,
and budgets built on it would never trip. A server that used no tokens costs 0 whatever its price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gym_compile.plan_types import RolloutRecord, ServerEntry
from gym_compile.prices import Price, PriceTable, price_problems, unpriced_message
from gym_run.endpoint.usage import (
    USAGE_KEYS,
    add_usage,
    billed_usage,
    merge_usage_by_server,
    normalise_usage,
    record_billed,
)

__all__ = [
    "USAGE_KEYS",
    "CostMeter",
    "Price",
    "PriceTable",
    "RolloutCost",
    "add_usage",
    "billed_usage",
    "cost_usd",
    "merge_usage_by_server",
    "normalise_usage",
    "price_problems",
    "price_record",
    "server_models",
]

_PER_TOKEN = 1e-6


def cost_usd(usage: Mapping[str, Any], price: Price) -> float:
    """input_tokens include the cached ones (Responses API); reasoning tokens are part of output."""
    u = normalise_usage(usage)
    cached = min(u["cached_input_tokens"], u["input_tokens"])
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return _PER_TOKEN * (
        (u["input_tokens"] - cached) * price.input
        + cached * cached_rate
        + u["output_tokens"] * price.output
    )


def server_models(servers: Mapping[str, ServerEntry]) -> dict[str, str]:
    """The plan's `servers` -> {model server name: configured model}."""
    return {
        name: spec["config"]["model"]
        for name, spec in servers.items()
        if spec.get("type") == "responses_api_models"
        and isinstance((spec.get("config") or {}).get("model"), str)
    }


@dataclass
class RolloutCost:
    by_server: dict[str, float | None]
    total_usd: float | None


@dataclass
class CostMeter:
    """Prices every rollout of a run; one warning per unpriced model, collected, never printed.

    total_usd sums what could be priced; unpriced_rollouts says how many rollouts it leaves out.
    """

    table: PriceTable
    models: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    total_usd: float = 0.0
    unpriced_rollouts: int = 0
    _warned: set[str] = field(default_factory=set)

    def rollout(self, usage_by_server: Mapping[str, Mapping[str, Any]] | None) -> RolloutCost:
        by_server: dict[str, float | None] = {}
        for server, usage in (usage_by_server or {}).items():
            model = self.models.get(server, server)
            price = self.table.price_for(model)
            if not any(normalise_usage(usage).values()):
                by_server[server] = 0.0  # nothing used (e.g. every call replayed from the cache)
            elif price is None:
                self.note_unpriced(server)
                by_server[server] = None
            else:
                by_server[server] = cost_usd(usage, price)
        known = [c for c in by_server.values() if c is not None]
        total = sum(known) if len(known) == len(by_server) else None
        if total is None:
            self.unpriced_rollouts += 1
        self.total_usd += sum(known)
        return RolloutCost(by_server, total)

    def note_unpriced(self, server: str) -> None:
        """One warning per model, however many rollouts or servers use it."""
        model = self.models.get(server, server)
        if model not in self._warned:
            self._warned.add(model)
            self.warnings.append(unpriced_message(model, self.table, server))


def price_record(meter: CostMeter, record: RolloutRecord) -> None:
    """Adds `cost_usd`, `cost_by_server` and `model_by_server` to an ok record's `_gym`, priced on
    what was paid for (a response replayed from the cache costs nothing)."""
    gym = record["_gym"]
    if gym.get("status") != "ok":
        return
    billed = record_billed(gym)
    cost = meter.rollout(billed)
    gym["cost_usd"] = cost.total_usd
    gym["cost_by_server"] = cost.by_server
    gym["model_by_server"] = {server: meter.models.get(server, server) for server in billed}
