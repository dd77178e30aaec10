"""gym_run.endpoint.retry + OpenAIClient retries over real HTTP: scripted endpoints and the stand-in's faults."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time

import aiohttp
import pytest
from aiohttp import web
from gym_run.endpoint.callstats import CURRENT_ROLLOUT, RolloutTrace
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.retry import Failure, RetryPolicy, Tally, retry_after_s
from gym_run.endpoint.timeouts import Timeouts
from gym_run.errors import ModelCallError
from gym_run.standin.server import Faults, start_standin

from tests.conftest import REPO
from tests.runtime_helpers import assistant_message, response_body, start_endpoint

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.001, max_delay_s=0.005)
OK_BODY = response_body([assistant_message("hi")])


def _error(status, message="nope", headers=None, rid="req_1"):
    """A factory: an aiohttp response object can be sent only once."""
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    return lambda: web.json_response(
        body, status=status, headers={"x-request-id": rid, **(headers or {})}
    )


def _script(*answers):
    """Answers in order (bodies, or factories of responses); the last one repeats."""

    def answer(body, i):
        chosen = answers[min(i, len(answers) - 1)]
        return chosen() if callable(chosen) else chosen

    return answer


async def _call(aiohttp_server, answer, policy=FAST, **kw):
    endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(session, base_url=url, api_key="sk-k", model="m", retry=policy, **kw)
        try:
            return await client.create({"input": "hi"}), client, endpoint
        except ModelCallError as exc:
            return exc, client, endpoint


# ---------------------------------------------------------------- the policy on its own


def test_backoff_is_the_sdk_formula_with_jitter_and_cap():
    policy, rng = RetryPolicy(), random.Random(1)
    for retry, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0.75 * base <= w <= base for w in waits)
        assert max(waits) - min(waits) > 0.1 * base  # jittered, not fixed


def test_statuses_and_defaults_match_the_sdk():
    policy = RetryPolicy.from_config(None)
    retried = [
        s
        for s in (400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 599)
        if policy.retryable_status(s)
    ]
    assert retried == [408, 409, 429, 500, 502, 503, 599]
    assert RetryPolicy.from_config({"statuses": [429]}).retryable_status(500) is False


def test_retry_after_headers():
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25  # ms first
    assert retry_after_s({"Retry-After": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "junk", "retry-after": "2"}) == 2.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_s({"retry-after": date}) <= 30
    assert retry_after_s({"retry-after": "0"}) is None and retry_after_s({}) is None


def _tally(failures=0, rate_limited=0, rate_limited_s=0.0, elapsed=0.0):
    return Tally(
        attempts=failures + rate_limited,
        failures=failures,
        rate_limited=rate_limited,
        rate_limited_s=rate_limited_s,
        started=time.monotonic() - elapsed,
    )


def test_decide_bounds_and_overrides():
    policy = RetryPolicy(max_attempts=3, max_total_s=10, max_retry_after_s=60)
    down = Failure("status", "overloaded", 503, {"retry-after": "2"})
    assert policy.decide(down, _tally(failures=1)) == (2.0, "")
    assert (
        policy.decide(down, _tally(failures=3))[1]
        == "gave up after 3 attempts (retry.max_attempts)"
    )
    assert "retry.max_total_s" in policy.decide(down, _tally(failures=1, elapsed=9.0))[1]
    huge = Failure("status", "quota", 429, {"retry-after": "3600"})
    assert "asked to wait 3600 s" in policy.decide(huge, _tally(rate_limited=1))[1]
    assert policy.decide(Failure("status", "bad", 400), _tally(failures=1)) == (None, "")
    assert (
        policy.decide(Failure("status", "bad", 400, {"x-should-retry": "true"}), _tally(1))[0]
        is not None
    )
    assert (
        "x-should-retry: false"
        in policy.decide(Failure("status", "x", 503, {"x-should-retry": "false"}), _tally(1))[1]
    )
    for kind in ("timeout", "connection", "malformed"):
        assert policy.decide(Failure(kind, "x"), _tally(failures=1))[0] is not None


def test_a_429_is_bounded_by_time_not_by_attempts():
    """Rate limits are back-pressure: 50 of them in a row do not exhaust max_attempts=3, and time
    spent on them is not held against max_total_s; max_rate_limited_s bounds them."""
    policy = RetryPolicy(max_attempts=3, max_total_s=10, max_rate_limited_s=100)
    rate = Failure("status", "slow down", 429, {"retry-after": "2"})
    assert policy.decide(rate, _tally(failures=2, rate_limited=50, elapsed=97)) == (2.0, "")
    down = Failure("status", "overloaded", 503, {"retry-after": "2"})
    assert policy.decide(down, _tally(failures=1, rate_limited_s=90, elapsed=95)) == (2.0, "")
    why = policy.decide(rate, _tally(rate_limited=50, rate_limited_s=90, elapsed=99))[1]
    assert "still rate limited after 50 answers 429" in why and "max_rate_limited_s" in why
    # without Retry-After: the SDK's backoff, growing with the 429s of this call
    bare = Failure("status", "slow down", 429)
    waits = [policy.decide(bare, _tally(rate_limited=n), random.Random(0))[0] for n in (1, 2, 3)]
    assert waits[0] < waits[1] < waits[2] <= policy.max_delay_s


@pytest.mark.parametrize("field", ["type", "code"])
def test_a_used_up_quota_is_not_a_rate_limit(field):
    """OpenAI answers 429 insufficient_quota when the account is out of credit: no wait fixes it."""
    quota = Failure(
        "status",
        "You exceeded your current quota",
        429,
        **{"error_type" if field == "type" else "code": "insufficient_quota"},
    )
    assert not quota.rate_limited
    assert RetryPolicy().decide(quota, _tally(rate_limited=1)) == (None, "")


def test_retry_defaults_are_the_schemas():
    schema = json.loads(
        (REPO / "schemas/servers/responses_api_models/openai_model.schema.json").read_text()
    )["properties"]["retry"]["properties"]
    policy = RetryPolicy()
    for name, spec in schema.items():
        value = getattr(policy, name)
        assert (list(value) if name == "statuses" else value) == spec["default"], name


# ---------------------------------------------------------------- the client over HTTP


async def test_429_honours_retry_after_ms_then_succeeds(aiohttp_server):
    answer = _script(
        _error(429, headers={"retry-after-ms": "30"}),
        _error(429, headers={"retry-after-ms": "30"}),
        OK_BODY,
    )
    started = time.monotonic()
    result, client, endpoint = await _call(
        aiohttp_server, answer, RetryPolicy(initial_delay_s=5, max_delay_s=5)
    )
    assert result["output"][0]["type"] == "message"
    assert time.monotonic() - started >= 0.06  # waited what the endpoint asked, not the 5 s backoff
    assert len(endpoint.bodies) == 3
    assert client.stats.as_dict() == {
        "calls": 1,
        "requests": 3,
        "retries": 2,
        "rate_limited": 2,
        "failed": 0,
        "max_attempts": 3,
    }


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_fast_with_message_and_request_id(aiohttp_server, status):
    err, client, endpoint = await _call(
        aiohttp_server, _script(_error(status, "Invalid 'input'", rid="req_42"))
    )
    assert isinstance(err, ModelCallError)
    assert (err.status, err.message, err.request_id, err.attempts) == (
        status,
        "Invalid 'input'",
        "req_42",
        1,
    )
    assert len(endpoint.bodies) == 1


async def test_5xx_is_retried_until_max_attempts(aiohttp_server):
    err, client, endpoint = await _call(aiohttp_server, _script(_error(503, "overloaded")))
    assert (err.status, err.attempts, len(endpoint.bodies)) == (503, 4, 4)
    assert err.message == "overloaded; gave up after 4 attempts (retry.max_attempts)"
    assert client.stats.failed == 1 and client.stats.retries == 3


async def test_x_should_retry_overrides_the_status(aiohttp_server):
    err, _client, endpoint = await _call(
        aiohttp_server, _script(_error(500, headers={"x-should-retry": "false"}))
    )
    assert err.attempts == 1 and "x-should-retry: false" in err.message
    result, _client, endpoint = await _call(
        aiohttp_server, _script(_error(400, headers={"x-should-retry": "true"}), OK_BODY)
    )
    assert result["id"] == "resp_1" and len(endpoint.bodies) == 2


async def test_too_long_retry_after_fails_at_once(aiohttp_server):
    policy = RetryPolicy(max_retry_after_s=1)
    err, _client, endpoint = await _call(
        aiohttp_server, _script(_error(429, headers={"retry-after": "30"})), policy
    )
    assert err.attempts == 1 and "asked to wait 30 s" in err.message


async def test_total_time_bounds_the_retries(aiohttp_server):
    policy = RetryPolicy(max_attempts=100, initial_delay_s=0.05, max_delay_s=0.05, max_total_s=0.2)
    err, _client, endpoint = await _call(aiohttp_server, _script(_error(500)), policy)
    assert 2 <= err.attempts < 10 and "retry.max_total_s" in err.message


async def test_malformed_200_is_retried(aiohttp_server):
    def truncated():
        return web.Response(
            status=200, body=b'{"id": "resp_x", "outp', content_type="application/json"
        )

    result, client, _endpoint = await _call(aiohttp_server, _script(truncated, OK_BODY))
    assert result["id"] == "resp_1" and client.stats.retries == 1
    err, _client, _endpoint = await _call(
        aiohttp_server, _script(lambda: web.json_response([1, 2]))
    )
    assert err.status == 200 and err.attempts == 4 and "not a JSON object" in err.message


async def test_read_timeouts_are_retried_and_bounded(aiohttp_server):
    async def answer(body, index):
        await asyncio.sleep(1)
        return OK_BODY

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(
            session,
            base_url=url,
            api_key="k",
            model="m",
            retry=RetryPolicy(max_attempts=2, initial_delay_s=0.001),
            timeouts=Timeouts(connect=1, read=0.1),
        )
        with pytest.raises(ModelCallError, match="timed out") as info:
            await client.create({"input": "hi"})
    assert info.value.attempts == 2 and info.value.status is None


async def test_retries_are_counted_into_the_current_rollout(aiohttp_server):
    trace = RolloutTrace()
    CURRENT_ROLLOUT.set(trace)
    await _call(aiohttp_server, _script(_error(502), _error(502), OK_BODY))
    assert trace.retries == 2


async def test_every_injected_fault_of_the_stand_in_is_survived():
    faults = Faults(
        rate_limit=0.3, server_error=0.1, drop=0.05, malformed=0.05, retry_after_ms=1, seed=7
    )
    standin = await start_standin(faults=faults)
    try:
        async with aiohttp.ClientSession() as session:
            client = OpenAIClient(
                session,
                base_url=standin.url,
                api_key="k",
                model="stand-in-1",
                retry=RetryPolicy(max_attempts=20, initial_delay_s=0.001, max_delay_s=0.01),
            )
            answers = await asyncio.gather(
                *(client.create({"input": f"hi {i}"}) for i in range(60))
            )
    finally:
        await standin.close()
    stats = standin.app["stats"]
    assert all(a["object"] == "response" for a in answers)
    assert stats["ok"] == 60 and client.stats.calls == 60
    injected = sum(stats[k] for k in ("rate_limit", "server_error", "drop", "malformed"))
    assert injected > 0 and client.stats.retries == injected
    assert client.stats.rate_limited == stats["rate_limit"]
