"""A failed attempt in, "wait this long and retry" or "give up" out: the model-call retry policy.

Follows the official OpenAI SDK (retried: 408, 409, 429, >=500, timeouts, connection errors;
`x-should-retry` overrides; `retry-after-ms` then `retry-after` honoured; otherwise
min(initial * 2**n, max) * U(0.75, 1] backoff) but is always bounded by a number of attempts and a
total time, so an endpoint answering 429 forever costs minutes, not millions of requests.
A 200 whose body is not a JSON object (a truncating proxy) is retried like a 5xx.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_STATUSES: tuple[int | str, ...] = (408, 409, 429, "5xx")


@dataclass(frozen=True)
class Failure:
    """One failed attempt. `kind`: "status" (an HTTP error answer), "timeout", "connection",
    "malformed" (a 2xx that is not a JSON object), "too_large" (an answer over the size limit) or
    "unsendable" (a request that cannot be sent, e.g. a key with a line break); the last two are
    never retried."""

    kind: str
    message: str
    status: int | None = None
    headers: Mapping[str, str] | None = None
    request_id: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for one model call. max_total_s counts from the first attempt; no retry starts after it."""

    max_attempts: int = 5
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_total_s: float | None = 300.0
    max_retry_after_s: float = 120.0
    statuses: tuple[int | str, ...] = DEFAULT_STATUSES

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RetryPolicy:
        """The plan's `retry` block; keys left out keep the defaults above (those of the schema)."""
        config = dict(config or {})
        if "statuses" in config:
            config["statuses"] = tuple(config["statuses"])
        known = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retry (preflight probes)."""
        return cls(max_attempts=1)

    def retryable_status(self, status: int) -> bool:
        return any(
            status == s if isinstance(s, int) else f"{status // 100}xx" == s for s in self.statuses
        )

    def decide(
        self, failure: Failure, attempts: int, elapsed_s: float, rng: random.Random | None = None
    ) -> tuple[float | None, str]:
        """(seconds to wait before the next attempt, "") or (None, why we give up)."""
        should = _header(failure.headers, "x-should-retry")
        if should == "false":
            return None, "the endpoint said not to retry (x-should-retry: false)"
        if (
            should != "true"
            and failure.kind == "status"
            and not self.retryable_status(failure.status or 0)
        ):
            return None, ""  # a client error (400, 401, 403, 404, 422, ...): fail fast, no note
        if attempts >= self.max_attempts:
            return None, f"gave up after {attempts} attempts (retry.max_attempts)"
        asked = retry_after_s(failure.headers)
        if asked is not None and asked > self.max_retry_after_s:
            return None, (
                f"the endpoint asked to wait {asked:g} s, more than retry.max_retry_after_s="
                f"{self.max_retry_after_s:g}"
            )
        wait = asked if asked is not None else self.backoff(attempts - 1, rng)
        if self.max_total_s is not None and elapsed_s + wait > self.max_total_s:
            return (
                None,
                f"gave up after {attempts} attempts in {elapsed_s:.1f} s (retry.max_total_s)",
            )
        return wait, ""

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The SDK's formula: min(initial * 2**retry, max) * U(0.75, 1]."""
        base = min(self.initial_delay_s * 2.0 ** min(retry, 60), self.max_delay_s)
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
