"""Input rows + job settings + a price in, a token and USD estimate (and budget problems) out.

Pure and streaming: rows are read once and never held, so a compile of a million-row dataset can
say what the run will cost before a token is paid for. The numbers are an estimate, and every
assumption behind them is written into the result so a user can judge it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gym_compile import plan_types

DEFAULT_MAX_OUTPUT_TOKENS = 1024
CHARS_PER_TOKEN = 4


class PriceLike(Protocol):
    """gym_run.endpoint.pricing.Price, or anything with its USD-per-1M-token fields."""

    @property
    def input(self) -> float: ...

    @property
    def output(self) -> float: ...


@dataclass(frozen=True)
class Estimate:
    method: str
    rows: int
    rollouts: int
    model_calls: int
    input_tokens: int
    input_tokens_upper: int
    output_tokens_upper: int
    usd_low: float | None
    usd_high: float | None
    assumptions: list[str] = field(default_factory=list)
    model: str | None = None  # the priced model (None: no model known)

    @property
    def tokens_upper(self) -> int:
        return self.input_tokens_upper + self.output_tokens_upper

    def as_dict(self) -> plan_types.Estimate:
        """The plan's job.estimate."""
        return {
            "method": self.method,
            "rows": self.rows,
            "rollouts": self.rollouts,
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "input_tokens_upper": self.input_tokens_upper,
            "output_tokens_upper": self.output_tokens_upper,
            "usd_low": self.usd_low,
            "usd_high": self.usd_high,
            "assumptions": list(self.assumptions),
            "model": self.model,
        }


@dataclass(frozen=True)
class BudgetProblem:
    """`key` names the budget field (max_usd / max_tokens) a located diagnostic points at."""

    # "error": the estimate's high end is over; "warning": the budget cannot be checked
    severity: Literal["error", "warning"]
    key: str
    message: str


def chars_per_token(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _calls(params: Mapping[str, Any], max_steps: int | None) -> int:
    """Tools on offer: one tool round then an answer (2 calls); no tools: one call."""
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict)]
    calls = 2 if tools and params.get("tool_choice") != "none" else 1
    return min(calls, max_steps) if max_steps else calls


class EstimateBuilder:
    """The streaming half: `add` one row at a time (link's read_input calls it while it hashes
    and validates the input), then `result`. Holds sums only, never rows."""

    def __init__(
        self,
        *,
        limit: int | None = None,
        params_override: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        calls_per_rollout: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        method: str = "chars/4",
    ) -> None:
        self.limit, self.params_override, self.max_steps = limit, params_override, max_steps
        self.calls_per_rollout, self.method = calls_per_rollout, method
        self.count = count_tokens or chars_per_token
        self.rows = self.calls = self.tokens_in = self.regrowth = self.tokens_out = 0
        self.unbounded = False

    @property
    def full(self) -> bool:
        """True once `limit` rows are in: later rows are not part of the run."""
        return bool(self.limit) and self.rows >= self.limit  # type: ignore[operator]

    def add(self, row: Mapping[str, Any]) -> None:
        if self.full:
            return
        self.rows += 1
        params = {**(row.get("responses_create_params") or {}), **(self.params_override or {})}
        request = {k: params.get(k) for k in ("instructions", "input", "tools") if params.get(k)}
        per_call = self.count(
            json.dumps(request, separators=(",", ":"), ensure_ascii=False)
        )  # length only: no key sorting
        calls = self.calls_per_rollout or _calls(params, self.max_steps)
        max_out = params.get("max_output_tokens")
        if not isinstance(max_out, int) or isinstance(max_out, bool) or max_out <= 0:
            max_out, self.unbounded = DEFAULT_MAX_OUTPUT_TOKENS, True
        self.calls += calls
        self.tokens_in += per_call * calls
        self.regrowth += max_out * calls * (calls - 1) // 2
        self.tokens_out += max_out * calls

    def result(
        self, *, num_repeats: int = 1, price: PriceLike | None = None, model: str | None = None
    ) -> Estimate:
        repeats = max(1, num_repeats)
        calls_rule = (
            f"{self.calls_per_rollout} (given)"
            if self.calls_per_rollout
            else "2 when the row offers tools (one tool round, then the answer), else 1"
            + (f", at most max_steps={self.max_steps}" if self.max_steps else "")
        )
        assumptions = [
            f"input tokens = {self.method} of each row's serialized instructions + input + tools, per model call",
            f"model calls per rollout: {calls_rule}",
            "low: no output and no cached-input discount; high: every call writes its max output and "
            "later calls re-read earlier outputs",
            "only the agent's model is estimated: a judge's calls are not included",
        ]
        if self.unbounded:
            assumptions.append(
                f"rows without max_output_tokens are assumed to write at most "
                f"{DEFAULT_MAX_OUTPUT_TOKENS} tokens per call (nothing enforces it)"
            )
        input_tokens = self.tokens_in * repeats
        input_upper, output_upper = (
            (self.tokens_in + self.regrowth) * repeats,
            self.tokens_out * repeats,
        )
        usd_low = usd_high = None
        if price is not None:
            usd_low = input_tokens * price.input / 1e6
            usd_high = (input_upper * price.input + output_upper * price.output) / 1e6
        return Estimate(
            self.method,
            self.rows,
            self.rows * repeats,
            self.calls * repeats,
            input_tokens,
            input_upper,
            output_upper,
            usd_low,
            usd_high,
            assumptions,
            model,
        )


def estimate(
    rows: Iterable[Mapping[str, Any]],
    *,
    num_repeats: int = 1,
    limit: int | None = None,
    price: PriceLike | None = None,
    params_override: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    calls_per_rollout: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    method: str = "chars/4",
) -> Estimate:
    """Tokens per call from the serialized request (instructions + input + tools) of each row.

    count_tokens defaults to chars/4 (tiktoken is optional and may need a download: pass
    `count_tokens=` and `method=` to use it). Low end: every call reads its row's request once.
    High end: also re-reads earlier outputs in later calls, and writes max_output_tokens per call
    (DEFAULT_MAX_OUTPUT_TOKENS where a row sets none).
    """
    builder = EstimateBuilder(
        limit=limit,
        params_override=params_override,
        max_steps=max_steps,
        calls_per_rollout=calls_per_rollout,
        count_tokens=count_tokens,
        method=method,
    )
    for row in rows:
        if builder.full:
            break
        builder.add(row)
    return builder.result(num_repeats=num_repeats, price=price)


def check_budget(
    budget: Mapping[str, Any] | None, est: Estimate, *, model: str = "the policy model"
) -> list[BudgetProblem]:
    """Error when the estimate's upper bound is over a limit: a budget is a promise that the run
    cannot cost more, so "it might" is already too much. Warning when max_usd cannot be checked."""
    problems: list[BudgetProblem] = []
    budget = budget or {}
    max_tokens, max_usd = budget.get("max_tokens"), budget.get("max_usd")
    if max_tokens is not None:
        problems += _over(
            "max_tokens",
            max_tokens,
            est.input_tokens,
            est.tokens_upper,
            f"{est.input_tokens:,} tokens",
            f"{est.tokens_upper:,} tokens",
        )
    if max_usd is not None:
        if est.usd_low is None or est.usd_high is None:
            problems.append(
                BudgetProblem(
                    "warning",
                    "max_usd",
                    f"cannot check max_usd={max_usd} before the run: {model} has no price "
                    "(add it under prices.models)",
                )
            )
        else:
            problems += _over(
                "max_usd",
                max_usd,
                est.usd_low,
                est.usd_high,
                f"${est.usd_low:,.4f}",
                f"${est.usd_high:,.4f}",
            )
    return problems


def _over(
    key: str, limit: float, low: float, high: float, low_s: str, high_s: str
) -> list[BudgetProblem]:
    if high <= limit:
        return []
    need = f"needs at least {low_s}" if low > limit else f"may need up to {high_s}"
    return [
        BudgetProblem(
            "error", key, f"the run {need} (estimate: {low_s} to {high_s}), over {key}={limit}"
        )
    ]
