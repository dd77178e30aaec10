"""gym_run.endpoint.client.OpenAIClient against real loopback endpoints: a recording one and the stand-in."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.retry import RetryPolicy
from gym_run.endpoint.timeouts import Timeouts
from gym_run.errors import ModelCallError
from gym_run.standin.server import start_standin

from tests.conftest import assert_valid
from tests.runtime_helpers import assistant_message, response_body, start_endpoint, weather_row

KEY = "sk-test-very-secret"


def _client(session, base_url, **kw):
    kw.setdefault("api_key", KEY)
    kw.setdefault("model", "gpt-configured")
    kw.setdefault("retry", RetryPolicy(max_attempts=2, initial_delay_s=0.001, max_delay_s=0.002))
    return OpenAIClient(session, base_url=base_url, **kw)


async def test_request_shape(aiohttp_server, openai_schema):
    endpoint, url = await start_endpoint(
        aiohttp_server, lambda b, i: response_body([assistant_message("hi")])
    )
    async with aiohttp.ClientSession() as session:
        client = _client(
            session,
            url,
            default_headers={"X-Team": "gym"},
            extra_body={"temperature": 0.5, "store": False},
        )
        params = {
            **weather_row()["responses_create_params"],
            "model": "ignored",
            "temperature": 0.1,
        }
        answer = await client.create(params)
    assert answer["output"][0]["content"][0]["text"] == "hi"
    (body,), (headers,) = endpoint.bodies, endpoint.headers
    assert_valid(openai_schema("create_response"), body)
    assert body["model"] == "gpt-configured"
    assert body["temperature"] == 0.1 and body["store"] is False  # the request wins over extra_body
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["X-Team"] == "gym"


async def test_error_body_and_request_id(aiohttp_server):
    def fail(body, i):
        error = {
            "error": {
                "message": f"Incorrect API key provided: {KEY}.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        return web.json_response(error, status=401, headers={"x-request-id": "req_123"})

    _endpoint, url = await start_endpoint(aiohttp_server, fail)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelCallError) as info:
            await _client(session, url).create({"input": "hi"})
    err = info.value
    assert (err.status, err.request_id, err.error_type) == (401, "req_123", "invalid_request_error")
    assert "Incorrect API key provided" in err.message
    assert KEY not in str(err) and KEY not in err.message


async def test_non_json_error(aiohttp_server):
    _endpoint, url = await start_endpoint(
        aiohttp_server, lambda b, i: web.Response(status=502, text="<html>Bad gateway</html>")
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelCallError) as info:
            await _client(session, url).create({"input": "hi"})
    assert (
        info.value.status == 502
        and "Bad gateway" in info.value.message
        and info.value.attempts == 2
    )


async def test_connection_refused_names_base_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelCallError) as info:
            await _client(session, url).create({"input": "hi"})
    assert info.value.status is None
    assert url in info.value.message and KEY not in str(info.value)


async def test_read_timeout(aiohttp_server):
    async def slow(body, index):
        await asyncio.sleep(2)
        return {}

    _endpoint, url = await start_endpoint(aiohttp_server, slow)
    async with aiohttp.ClientSession() as session:
        client = _client(session, url, timeouts=Timeouts(connect=1, read=0.2, total=None))
        with pytest.raises(ModelCallError, match="timed out") as info:
            await client.create({"input": "hi"})
    assert info.value.status is None


async def test_max_concurrent_requests(aiohttp_server):
    in_flight = peak = 0

    async def answer(body, index):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return response_body([assistant_message("ok")])

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        client = _client(session, url, max_concurrent_requests=2)
        await asyncio.gather(*(client.create({"input": "hi"}) for _ in range(6)))
    assert peak == 2


async def test_against_the_stand_in(openai_schema):
    standin = await start_standin(api_key=KEY, model="stand-in-1")
    try:
        async with aiohttp.ClientSession() as session:
            answer = await _client(session, standin.url, model="stand-in-1").create(
                weather_row()["responses_create_params"]
            )
            assert_valid(openai_schema("response"), answer)
            assert answer["output"][0]["type"] == "function_call"
            with pytest.raises(ModelCallError) as info:
                await _client(session, standin.url, api_key="sk-wrong-key").create({"input": "hi"})
    finally:
        await standin.close()
    assert info.value.status == 401 and info.value.request_id
    assert "sk-wrong-key" not in str(info.value)
