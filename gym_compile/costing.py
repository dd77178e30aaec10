"""A linked job's settings + its input rows (fed one by one by link's read_input) in, the plan's
estimate, budget and price overrides out, plus a located diagnostic for a budget the estimate breaks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gym_compile import settings
from gym_compile.diagnostics import Diagnostic, json_path
from gym_compile.estimate import Estimate, EstimateBuilder, check_budget
from gym_compile.plan_types import BudgetLimits
from gym_compile.prices import PriceTable, unpriced_message
from gym_compile.validate import Server, Validated

BUDGET_KEYS = ("max_usd", "max_tokens")


@dataclass
class JobSpend:
    """What the plan's job says about money: job.estimate, job.budget, job.prices."""

    estimate: Estimate
    budget: BudgetLimits | None
    prices: dict[str, Any] | None


@dataclass
class Costing:
    """Started before the input is read (link passes `builder.add` to read_input), finished after."""

    builder: EstimateBuilder
    model: str | None
    table: PriceTable
    prices: dict[str, Any] | None
    budget: BudgetLimits | None

    def finish(self, v: Validated, num_repeats: int) -> JobSpend:
        price = self.table.price_for(self.model) if self.model else None
        est = self.builder.result(num_repeats=num_repeats, price=price, model=self.model)
        for problem in check_budget(self.budget, est, model=self.model or "the policy model"):
            at = ("budget", problem.key)
            hints = (
                f"raise budget.{problem.key}, lower +limit or +num_repeats, or set max_output_tokens "
                "in +responses_create_params (the high end assumes every call writes its maximum)",
            )
            if problem.severity == "warning":
                hints = (
                    f"add prices: {{models: {{{self.model}: {{input: ..., output: ...}}}}}} "
                    "(USD per 1M tokens) to check max_usd",
                )
            v.diagnostics.append(
                Diagnostic(
                    "GYM070" if problem.severity == "error" else "GYM071",
                    problem.message,
                    v.location(at),
                    json_path(at),
                    severity=problem.severity,
                    hints=hints,
                )
            )
        return JobSpend(est, self.budget, self.prices)


def start_costing(v: Validated, agent: Server) -> Costing:
    """The policy model the estimate prices, the price table with the config's overrides, the budget."""
    g = v.globals
    prices = g.get("prices") if isinstance(g.get("prices"), dict) else None
    try:
        table = PriceTable.load(prices)
    except (ValueError, TypeError, AttributeError, KeyError):
        table = PriceTable.load()  # validate reported where the overrides are wrong; no plan
    ref = agent.config.get("model_server")
    ref_name = settings.text(ref.get("name")) if isinstance(ref, dict) else None
    model_server = v.servers.get(ref_name) if ref_name else None
    model = model_server.config.get("model") if model_server is not None else None
    given = settings.budget(g, BUDGET_KEYS)
    budget: BudgetLimits | None = (
        None if given is None else {"max_usd": given["max_usd"], "max_tokens": given["max_tokens"]}
    )
    max_steps = agent.config.get("max_steps")
    builder = EstimateBuilder(
        limit=settings.limit(g),
        params_override=settings.params(g),
        max_steps=max_steps if isinstance(max_steps, int) else None,
    )
    return Costing(builder, model if isinstance(model, str) else None, table, prices, budget)


def estimate_line(est: Mapping[str, Any], prices: Mapping[str, Any] | None = None) -> str:
    """One line for the terminal after "wrote plan.json", from the plan's job.estimate."""
    usd = "cost n/a"
    if est.get("usd_low") is not None and est.get("usd_high") is not None:
        usd = f"${est['usd_low']:,.4f} to ${est['usd_high']:,.4f}"
    elif est.get("model"):
        usd = unpriced_message(est["model"], PriceTable.load(prices)).replace(
            "cost: n/a", "cost n/a", 1
        )
    upper = est["input_tokens_upper"] + est["output_tokens_upper"]
    return (
        f"estimate ({est['method']}): {est['rollouts']:,} rollouts, {est['model_calls']:,} model calls, "
        f"~{est['input_tokens']:,} input tokens, at most ~{upper:,} tokens in all; {usd}"
    )
