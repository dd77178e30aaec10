"""Large answers in flight in, a bound on the memory they take out.

A Response is kilobytes; an endpoint answering megabytes (a runaway generation, a hostile server)
would otherwise multiply by the rollouts in flight: 16 answers of 30 MB took 1.3 GB. An answer
past LARGE_ANSWER_BYTES must first reserve its size from the endpoint's `max_buffered_response_bytes`;
the reservation is held by the rollout that asked until its record is handed to the writer (the
answer lives in the rollout until then), or, outside a collection, until the answer is parsed.

No deadlock: a rollout waits for a reservation only while it holds none (one that holds some, on
any endpoint's budget, takes the next at once, over the limit if need be), and a reservation is
always granted when nothing is held, however large.
"""

from __future__ import annotations

import asyncio
import collections
import time

from gym_run.endpoint.callstats import CURRENT_ROLLOUT

LARGE_ANSWER_BYTES = 1024 * 1024


class ByteBudget:
    """Bytes of large answers held at once, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def reserve(self, size: int) -> int:
        """Waits until `size` bytes fit (all of the budget at most); returns what was reserved."""
        size = min(size, self.limit)
        if not self._waiters and self._fits(size):
            self._take(size)
            return size
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted and cancelled in the same breath: give it back
            else:
                self._waiters = collections.deque(w for w in self._waiters if w[1] is not waiter)
                self._wake()
            raise
        return size

    def take_now(self, size: int) -> int:
        """For a rollout that holds a reservation already: never waits, so never deadlocks."""
        self._take(size)
        return size

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def _take(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if not waiter.done():
                self._take(size)
                waiter.set_result(None)


class Hold:
    """One answer's claim on an ByteBudget: taken at most once, given back by `done()` unless
    the rollout in progress keeps it until its record is written."""

    def __init__(self, memory: ByteBudget | None) -> None:
        self.memory = memory
        self.size = 0  # what `done()` gives back (0 when the rollout keeps it)
        self.taken = False

    async def need(self, size: int) -> None:
        """Called as the answer turns out large (announced, or read past LARGE_ANSWER_BYTES)."""
        memory = self.memory
        if memory is None or self.taken or size <= LARGE_ANSWER_BYTES:
            return
        self.taken = True
        trace = CURRENT_ROLLOUT.get()
        if trace is not None and trace.holds:
            granted = memory.take_now(size)  # holds some already: waiting could deadlock
        else:
            started = time.monotonic()
            granted = await memory.reserve(size)
            if trace is not None:
                trace.paused_s += time.monotonic() - started  # not the rollout's own time
        if trace is None:
            self.size = granted
        else:  # the rollout gives it back when its record is written
            trace.holds.append((memory, granted))

    def done(self) -> None:
        if self.memory is not None and self.size:
            self.memory.release(self.size)
            self.size = 0
