"""gym_run.endpoint.ratelimit: request/token pacing and AIMD concurrency, alone and behind a real endpoint."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.ratelimit import AdaptiveLimit, Gate, TokenBucket
from gym_run.endpoint.retry import RetryPolicy

from tests.runtime_helpers import assistant_message, response_body


async def test_requests_per_minute_spreads_requests_out():
    bucket = TokenBucket(per_minute=1200)  # 20/s, bursts of at most 20
    started = time.monotonic()
    for _ in range(30):
        await bucket.take(1)
    assert time.monotonic() - started >= 0.45  # 20 from the full bucket, 10 more at 20/s


async def test_a_request_bigger_than_the_bucket_waits_then_leaves_a_debt():
    bucket = TokenBucket(per_minute=6000)  # 100/s, capacity 100
    await bucket.take(115)
    assert bucket.level < 0
    started = time.monotonic()
    await bucket.take(1)
    assert time.monotonic() - started >= 0.15  # the debt of 15 and one more at 100/s
    bucket.adjust(-100)  # usage said it was cheaper: refunded, never above capacity
    assert bucket.level == bucket.capacity


async def test_aimd_halves_once_per_round_and_recovers():
    limit = AdaptiveLimit(ceiling=16)
    epochs = [await limit.acquire() for _ in range(16)]
    assert limit.in_flight == 16
    for epoch in epochs[:8]:  # eight 429s of the same round: one decrease, from what was in flight
        limit.release(epoch, rate_limited=True, ok=False)
    assert limit.limit == 8.0
    for epoch in epochs[8:]:
        limit.release(epoch, rate_limited=False, ok=True)
    assert 8.0 < limit.limit < 10.0  # additive: about +1 per round of successes
    blocked = [asyncio.create_task(limit.acquire()) for _ in range(12)]
    await asyncio.sleep(0.01)
    assert sum(t.done() for t in blocked) == int(limit.limit)
    for task in blocked:
        task.cancel()
    await asyncio.gather(*blocked, return_exceptions=True)


async def test_adaptive_concurrency_finds_what_the_endpoint_accepts(aiohttp_server):
    """An endpoint that answers 429 whenever more than 3 requests are in flight."""
    state = {"in_flight": 0, "peak": 0, "limited": 0}

    async def handler(request):
        state["in_flight"] += 1
        try:
            if state["in_flight"] > 3:
                state["limited"] += 1
                return web.json_response(
                    {
                        "error": {
                            "message": "slow down",
                            "type": "requests",
                            "param": None,
                            "code": None,
                        }
                    },
                    status=429,
                    headers={"retry-after-ms": "5"},
                )
            state["peak"] = max(state["peak"], state["in_flight"])
            await asyncio.sleep(0.01)
            return web.json_response(response_body([assistant_message("ok")]))
        finally:
            state["in_flight"] -= 1

    app = web.Application()
    app.router.add_post("/v1/responses", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(
            session,
            base_url=str(server.make_url("/v1")),
            api_key="k",
            model="m",
            max_concurrent_requests=32,
            throttle={"adaptive_concurrency": True},
            retry=RetryPolicy(max_attempts=50),
        )
        await asyncio.gather(*(client.create({"input": "hi"}) for _ in range(120)))
    adaptive = client.gate.adaptive
    assert adaptive is not None and adaptive.limit < 8  # backed off from 32 towards 3
    assert client.stats.calls == 120 and client.stats.failed == 0
    assert state["limited"] < 120  # without pacing every round would mostly be 429s


async def test_gate_without_settings_costs_nothing():
    gate = Gate()
    async with gate.slot(10) as outcome:
        outcome.ok = True
    assert gate.adaptive is None
