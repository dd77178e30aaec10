"""Client-side pacing of one endpoint: requests/min and tokens/min buckets and an adaptive (AIMD) cap
on requests in flight that halves on 429 and creeps back up on success.

Retries alone answer a rate limit after it has been hit; pacing avoids hitting it, which is what
keeps a long collection from spending most of its requests on 429s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gym_run.defaults import with_defaults

# With no max_concurrent_requests, the adaptive cap starts here: in practice the job's concurrency binds first.
ADAPTIVE_CEILING = 1024


class TokenBucket:
    """`per_minute` units refill evenly; holds at most one second's worth, so there are no minute-long bursts.

    A cost larger than the bucket waits for a full bucket and then leaves a debt that later
    callers pay off, so a big request is slowed, never refused.
    """

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, cost: float) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            need = min(cost, self.capacity)
            while self.level < need:
                await asyncio.sleep((need - self.level) / self.rate)
                self._refill()
            self.level -= cost

    def adjust(self, delta: float) -> None:
        """Charges (or refunds) the difference once the real cost is known (tokens in `usage`)."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)


class AdaptiveLimit:
    """AIMD: +1/limit per success, halved on a 429 (at most once per round of requests).

    Release is synchronous so a cancelled attempt always gives its place back.
    """

    def __init__(self, ceiling: int, floor: int = 1) -> None:
        self.ceiling = ceiling
        self.floor = floor
        self.limit = float(ceiling)
        self.in_flight = 0
        self._epoch = (
            0  # bumped on each decrease; a 429 from an older round does not decrease again
        )
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def _cap(self) -> int:
        return max(self.floor, int(self.limit))

    async def acquire(self) -> int:
        while self.in_flight >= self._cap():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1
        return self._epoch

    def release(self, epoch: int, rate_limited: bool, ok: bool) -> None:
        if rate_limited and epoch == self._epoch:
            self.limit = max(float(self.floor), min(self.limit, float(self.in_flight)) / 2)
            self._epoch += 1
        elif ok:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / max(self.limit, 1.0))
        self.in_flight -= 1
        for _ in range(max(0, self._cap() - self.in_flight)):
            if not self._waiters:
                break
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class Outcome:
    """What one attempt reports back to the gate."""

    def __init__(self) -> None:
        self.rate_limited = False
        self.ok = False
        self.tokens: int | None = None


class Gate:
    """Everything an attempt waits for before it is sent; one per endpoint client."""

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        adaptive: bool = False,
    ) -> None:
        self.adaptive = AdaptiveLimit(max_concurrent or ADAPTIVE_CEILING) if adaptive else None
        self._fixed = asyncio.Semaphore(max_concurrent) if max_concurrent and not adaptive else None
        self._requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    @classmethod
    def from_config(cls, max_concurrent: int | None, throttle: Mapping[str, Any] | None) -> Gate:
        """The plan's `throttle` block; keys left out keep the schema's defaults (adaptive on)."""
        throttle = with_defaults(throttle, "throttle")
        return cls(
            max_concurrent=max_concurrent,
            requests_per_minute=throttle.get("requests_per_minute"),
            tokens_per_minute=throttle.get("tokens_per_minute"),
            adaptive=bool(throttle.get("adaptive_concurrency")),
        )

    @contextlib.asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[Outcome]:
        if self._requests is not None:
            await self._requests.take(1)
        if self._tokens is not None:
            await self._tokens.take(estimated_tokens)
        outcome = Outcome()
        epoch = await self.adaptive.acquire() if self.adaptive is not None else 0
        if self._fixed is not None:
            await self._fixed.acquire()
        try:
            yield outcome
        finally:
            if self._fixed is not None:
                self._fixed.release()
            if self.adaptive is not None:
                self.adaptive.release(epoch, outcome.rate_limited, outcome.ok)
            if self._tokens is not None and outcome.tokens is not None:
                self._tokens.adjust(outcome.tokens - estimated_tokens)
