"""The plan's budget (or gym-run's --max-usd / --max-tokens, which win) + spend so far in, whether
to admit more rows out.

Spend is the priced cost and the billed tokens (not replayed from the response cache): of the ok
records already in the rollouts file (a resume), then of every model call as it is answered
(collect/stops.py), so a rollout that never ends still stops at the budget. Once it is reached no
model call starts; only calls already sent can take a run a little over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gym_compile.plan_types import Job


@dataclass
class Budget:
    max_usd: float | None = None
    max_tokens: int | None = None
    stopped: bool = False
    reason: str | None = None
    stopped_by: str | None = None  # "max_usd" or "max_tokens"
    spent_usd: float = 0.0
    spent_tokens: int = 0

    @classmethod
    def from_plan(
        cls, job: Job, *, max_usd: float | None = None, max_tokens: int | None = None
    ) -> Budget:
        planned: Mapping[str, Any] = job.get("budget") or {}
        return cls(
            max_usd if max_usd is not None else planned.get("max_usd"),
            max_tokens if max_tokens is not None else planned.get("max_tokens"),
        )

    @property
    def limited(self) -> bool:
        return self.max_usd is not None or self.max_tokens is not None

    def charge_call(self, usd: float | None, tokens: int) -> None:
        """One model call that was paid for (not replayed from the cache): counted as it happens,
        so a rollout that never ends still stops at the budget. `usd` is None when unpriced."""
        self.spent_usd += usd or 0.0
        self.spent_tokens += tokens

    def check(self) -> str | None:
        """The reason, the first time spend reaches a limit; None otherwise (and after that)."""
        spent_usd, spent_tokens = self.spent_usd, self.spent_tokens
        if self.stopped:
            return None
        if self.max_usd is not None and spent_usd >= self.max_usd:
            self.stopped_by, self.reason = (
                "max_usd",
                f"spent ${spent_usd:,.4f} of max_usd {self.max_usd:g}",
            )
        elif self.max_tokens is not None and spent_tokens >= self.max_tokens:
            self.stopped_by = "max_tokens"
            self.reason = f"spent {spent_tokens:,} tokens of max_tokens {self.max_tokens:,}"
        else:
            return None
        self.stopped = True
        return self.reason

    def raise_hint(self) -> str:
        """The flag to resume with: twice the limit that stopped the run."""
        if self.stopped_by == "max_tokens" and self.max_tokens:
            return f"--max-tokens {self.max_tokens * 2}"
        return f"--max-usd {(self.max_usd or 0) * 2:g}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_usd": self.max_usd,
            "max_tokens": self.max_tokens,
            "spent_usd": self.spent_usd,
            "spent_tokens": self.spent_tokens,
            "stopped": self.stopped,
        }
