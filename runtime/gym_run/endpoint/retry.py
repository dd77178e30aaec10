"""A failed attempt in, "wait this long and retry" or "give up" out: the model-call retry policy.

Follows the official OpenAI SDK (retried: 408, 409, 429, >=500, timeouts, connection errors;
`x-should-retry` overrides; `retry-after-ms` then `retry-after` honoured; otherwise
min(initial * 2**n, max) * U(0.75, 1] backoff), with two kinds of bound:

- a 429 is back-pressure, not a failure: it is retried until `max_rate_limited_s` after the
  call's first attempt, however many it takes, so a rate-limited run slows down instead of losing
  rollouts (the adaptive cap in ratelimit.py keeps the 429s few);
- every other retried failure (5xx, timeouts, dropped connections, a 200 that is not JSON) counts
  against `max_attempts` and `max_total_s`, so a broken endpoint costs minutes, not millions of
  requests. A 429 saying the quota is used up (`insufficient_quota`) is not a rate limit: no wait
  fixes it, so it fails at once.

Defaults come from the schema (gym_run/defaults.py), never from here.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from gym_run.defaults import with_defaults

_D = with_defaults(None, "retry")
#: error types / codes of a 429 that no waiting fixes (OpenAI: the account's quota is used up)
NOT_RATE_LIMITS = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


@dataclass(frozen=True)
class Failure:
    """One failed attempt. `kind`: "status" (an HTTP error answer), "timeout", "connection",
    "malformed" (a 2xx that is not a JSON object), "too_large" (an answer over the size limit) or
    "unsendable" (a request that cannot be sent, e.g. a key with a line break); the last two are
    never retried. `code` is the error body's `code` (e.g. insufficient_quota)."""

    kind: str
    message: str
    status: int | None = None
    headers: Mapping[str, str] | None = None
    request_id: str | None = None
    error_type: str | None = None
    code: str | None = None

    @property
    def rate_limited(self) -> bool:
        """A 429 that waiting can fix (not a used-up quota)."""
        return (
            self.kind == "status"
            and self.status == 429
            and not {self.error_type, self.code} & NOT_RATE_LIMITS
        )


@dataclass
class Tally:
    """What one model call went through so far: the retry policy's input."""

    attempts: int = 0  # every request sent
    failures: int = 0  # failed attempts other than 429s (what max_attempts counts)
    rate_limited: int = 0  # 429s answered
    rate_limited_s: float = 0.0  # time waited because of 429s
    started: float = 0.0  # time.monotonic() of the first attempt

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for one model call; see the module docstring. Defaults: the schema's."""

    max_attempts: int = _D["max_attempts"]
    initial_delay_s: float = _D["initial_delay_s"]
    max_delay_s: float = _D["max_delay_s"]
    max_total_s: float | None = _D["max_total_s"]
    max_rate_limited_s: float = _D["max_rate_limited_s"]
    max_retry_after_s: float = _D["max_retry_after_s"]
    statuses: tuple[int | str, ...] = tuple(_D["statuses"])

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RetryPolicy:
        """The plan's `retry` block; keys left out keep the schema's defaults."""
        config = dict(config or {})
        if "statuses" in config:
            config["statuses"] = tuple(config["statuses"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retry (preflight probes)."""
        return cls(max_attempts=1, max_rate_limited_s=1e-9)

    def retryable_status(self, status: int) -> bool:
        return any(
            status == s if isinstance(s, int) else f"{status // 100}xx" == s for s in self.statuses
        )

    def decide(
        self, failure: Failure, tally: Tally, rng: random.Random | None = None
    ) -> tuple[float | None, str]:
        """(seconds to wait before the next attempt, "") or (None, why we give up)."""
        should = _header(failure.headers, "x-should-retry")
        if should == "false":
            return None, "the endpoint said not to retry (x-should-retry: false)"
        if failure.kind == "status" and failure.status == 429 and not failure.rate_limited:
            return None, ""  # the quota is used up: no wait fixes it
        if (
            should != "true"
            and failure.kind == "status"
            and not self.retryable_status(failure.status or 0)
        ):
            return None, ""  # a client error (400, 401, 403, 404, 422, ...): fail fast, no note
        asked = retry_after_s(failure.headers)
        if asked is not None and asked > self.max_retry_after_s:
            return None, (
                f"the endpoint asked to wait {asked:g} s, more than retry.max_retry_after_s="
                f"{self.max_retry_after_s:g}"
            )
        if failure.rate_limited:
            wait = asked if asked is not None else self.backoff(tally.rate_limited - 1, rng)
            if tally.elapsed() + wait > self.max_rate_limited_s:
                return None, (
                    f"still rate limited after {tally.rate_limited} answers 429 in "
                    f"{tally.elapsed():.1f} s (retry.max_rate_limited_s)"
                )
            return wait, ""
        if tally.failures >= self.max_attempts:
            return None, f"gave up after {tally.failures} attempts (retry.max_attempts)"
        wait = asked if asked is not None else self.backoff(tally.failures - 1, rng)
        spent = tally.elapsed() - tally.rate_limited_s  # 429 waits are not held against it
        if self.max_total_s is not None and spent + wait > self.max_total_s:
            return (
                None,
                f"gave up after {tally.failures} attempts in {spent:.1f} s (retry.max_total_s)",
            )
        return wait, ""

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The SDK's formula: min(initial * 2**retry, max) * U(0.75, 1]."""
        base = min(self.initial_delay_s * 2.0 ** min(max(retry, 0), 60), self.max_delay_s)
        return base * (1.0 - 0.25 * (rng or random).random())


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """`retry-after-ms` (float ms) first, then `retry-after` (seconds or an HTTP date); None if absent,
    unparsable or not positive (then the backoff formula applies, as in the SDK)."""
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = None
        if value is not None and value > 0:
            return value
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        value = when.timestamp() - time.time()
    return value if value > 0 else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """aiohttp's headers are case-insensitive already; plain dicts (tests) may not be."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip().lower() if isinstance(value, str) else None
