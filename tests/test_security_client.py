"""What an endpoint sends back is bounded in size and scrubbed of every secret we sent it."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse

import aiohttp
import pytest
from aiohttp import web
from gym_run.collect.runner import run_job
from gym_run.endpoint.client import MAX_RESPONSE_BYTES, OpenAIClient
from gym_run.endpoint.retry import RetryPolicy
from gym_run.errors import ModelCallError
from gym_run.secrets import MASK, Redactor, spellings

from tests.runtime_helpers import openai_spec, read_jsonl, weather_plan

KEY = "sk-security-test-" + "0123456789abcdef" * 2
HEADER_SECRET = "hdr-secret-" + "fedcba9876543210" * 2
RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.001, max_delay_s=0.002)


class Hostile:
    """A real endpoint whose single route answers whatever `mode` says; it counts requests."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.app = web.Application()
        self.app.router.add_post("/v1/responses", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        echoed = f"got {request.headers.get('Authorization')} and {request.headers.get('X-Extra')}"
        if self.mode == "announced":
            return web.Response(body=b" " * 5000, content_type="application/json")
        if self.mode == "streamed":  # no Content-Length: only counting the bytes can stop it
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(50):
                await resp.write(b" " * 200)
            return resp
        if self.mode == "gzip":  # 200 bytes on the wire, 5000 once decompressed
            return web.Response(
                body=gzip.compress(b" " * 4990 + b'{"a":1}'),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        if self.mode == "at_limit":
            body = json.dumps({"output": [], "pad": "x" * 900}).encode()
            return web.Response(
                body=body + b" " * (1000 - len(body)), content_type="application/json"
            )
        if self.mode == "huge":
            return web.Response(
                body=b" " * (MAX_RESPONSE_BYTES + 1), content_type="application/json"
            )
        if (
            self.mode == "echo_cut"
        ):  # the key straddles the 200-character cut of a malformed snippet
            return web.Response(text="x" * (200 - 20) + echoed, content_type="text/plain")
        if self.mode == "echo_json_escaped":
            return web.json_response({"error": {"message": json.dumps(echoed)}}, status=400)
        return web.json_response(
            {"error": {"message": echoed, "type": "invalid_request_error"}}, status=401
        )


async def _call(aiohttp_server, mode: str, **client_kw) -> tuple[ModelCallError, Hostile]:
    hostile = Hostile(mode)
    server = await aiohttp_server(hostile.app)
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(
            session,
            base_url=str(server.make_url("/v1")),
            api_key=KEY,
            model="m",
            retry=RETRY,
            default_headers={"X-Extra": HEADER_SECRET},
            **client_kw,
        )
        with pytest.raises(ModelCallError) as caught:
            await client.create({"input": "hi"})
    return caught.value, hostile


@pytest.mark.parametrize("mode", ["announced", "streamed", "gzip"])
async def test_an_answer_over_the_limit_fails_at_once_and_says_why(
    aiohttp_server, mode: str
) -> None:
    err, hostile = await _call(aiohttp_server, mode, max_response_bytes=1000)
    assert hostile.requests == 1 and err.attempts == 1  # not retried: it would come back the same
    assert "over the 1000-byte limit of gym-run (not retried)" in err.message
    assert err.error_type == "response_too_large" and err.status == 200


async def test_an_answer_at_the_limit_is_read(aiohttp_server) -> None:
    hostile = Hostile("at_limit")
    server = await aiohttp_server(hostile.app)
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(
            session,
            base_url=str(server.make_url("/v1")),
            api_key=KEY,
            model="m",
            max_response_bytes=1000,
        )
        assert (await client.create({"input": "hi"}))["output"] == []


async def test_the_default_limit_is_32_mib_and_recorded_as_a_failure(
    aiohttp_server, tmp_path
) -> None:
    assert MAX_RESPONSE_BYTES == 32 * 1024 * 1024
    hostile = Hostile("huge")
    server = await aiohttp_server(hostile.app)
    model = openai_spec(str(server.make_url("/v1")), api_key=KEY, retry={"max_attempts": 3})
    plan = weather_plan(tmp_path, model=model, concurrency=1)
    result = await run_job(plan, show_progress=False, notice=lambda _m: None)
    records = read_jsonl(plan["job"]["output"]["path"])
    assert result.counts["failed"] == 2 and hostile.requests == 2  # one request per rollout
    error = records[0]["_gym"]["error"]
    assert error["class"] == "ModelCallError" and error["attempts"] == 1
    assert f"over the {MAX_RESPONSE_BYTES}-byte limit" in error["message"]


@pytest.mark.parametrize("mode", ["echo", "echo_cut", "echo_json_escaped"])
async def test_echoed_keys_and_headers_are_masked_even_when_cut(aiohttp_server, mode: str) -> None:
    err, _ = await _call(aiohttp_server, mode)
    text = str(err)
    assert MASK in text
    for secret in (KEY, HEADER_SECRET):
        for i in range(len(secret) - 8):  # not even a fragment of 8 characters
            assert secret[i : i + 8] not in text, (secret, text)


def test_the_redactor_masks_every_spelling_and_ignores_short_values() -> None:
    redact = Redactor([KEY, "abc"])
    for form in (
        KEY,
        urllib.parse.quote(KEY),
        base64.b64encode(KEY.encode()).decode(),
        base64.b64encode(f"Bearer {KEY}".encode()).decode(),
    ):
        assert KEY not in redact(f"x {form} y") and form not in redact(f"x {form} y")
    assert redact("abc abc") == "abc abc"  # too short to be told apart from text
    assert all(len(s) >= 6 for s in spellings("sk-123456"))


@pytest.mark.parametrize(
    ("base", "key", "hidden"),
    [
        ("{url}", "sk-line-break-key-0123456789\n", "sk-line-break-key-0123456789"),
        ("{url}", "sk-injected-0123456789\r\nX-Evil: 1", "sk-injected-0123456789"),
        ("http://user:hunter2pass@{host}/v1", KEY, "hunter2pass"),
    ],
)
async def test_a_request_that_cannot_be_sent_fails_at_once_without_quoting_the_secret(
    aiohttp_server, base, key, hidden
) -> None:
    """aiohttp raises ValueError for these; it escaped as a traceback from `gym-run check`."""
    hostile = Hostile("echo")
    server = await aiohttp_server(hostile.app)
    url = base.format(url=str(server.make_url("/v1")), host=f"127.0.0.1:{server.port}")
    async with aiohttp.ClientSession() as session:
        client = OpenAIClient(session, base_url=url, api_key=key, model="m", retry=RETRY)
        with pytest.raises(ModelCallError) as caught:
            await client.create({"input": "hi"})
    assert caught.value.attempts == 1 and hostile.requests == 0
    assert "cannot send a request to" in caught.value.message and hidden not in str(caught.value)
