"""`gym-run serve`'s hardening layer over real sockets on 127.0.0.1: browser pages from elsewhere
are refused, the token is checked before anything else, half-open connections cannot crowd out a
client, slow bodies and large bodies are bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from gym_run.endpoint.memory import ByteBudget
from gym_run.servers import netguard
from gym_run.servers.listen import Connections, listen
from gym_run.servers.serve import start_serving

from tests.runtime_helpers import weather_plan

TOKEN = "serve-token-for-tests-0123456789"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """The plan's model route as `gym-run serve` starts it (stand-in behind it)."""
    served = await start_serving(weather_plan(tmp_path, with_job=False))
    yield served.url("policy_model") + "/v1/responses"
    await served.close()


async def _post(url: str, body: bytes, **headers: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/json"}, 200),
        ({"Content-Type": "text/plain;charset=UTF-8"}, 415),  # a page's fetch, no preflight
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Origin": "null"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403),
        ({"Content-Type": "application/json", "Host": "evil.example"}, 421),  # DNS rebinding
        ({"Content-Type": "application/json", "Host": "localhost"}, 200),
    ],
)
async def test_browser_requests_from_elsewhere_are_refused(served, headers, status):
    assert await _post(served, b'{"input": "hi"}', **headers) == status


async def test_a_body_without_content_type_is_refused(served):
    """A page can send a Blob with no type without asking first: no Content-Type at all."""
    host, port = served.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/responses HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 15\r\n\r\n".encode()
        + b'{"input": "hi"}'
    )
    status = (await reader.readline()).split()[1]
    writer.close()
    assert status == b"415"


async def test_the_token_is_checked_before_anything_else(tmp_path):
    """With a token, a request without it gets 401 at once: no browser check answers first, and
    its body is never read (the connection closes instead)."""
    served = await start_serving(weather_plan(tmp_path, with_job=False), token=TOKEN)
    try:
        url = served.url("policy_model")
        host, port = url.split("//")[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        writer.write(
            b"POST /v1/responses HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 100000000\r\n\r\n"
        )  # announces 100 MB and sends none of it
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 5
        assert b"Connection: close" in head  # what follows is discarded, never buffered
        writer.close()
    finally:
        await served.close()


async def _app(handler, memory: ByteBudget | None = None) -> web.Application:
    app = web.Application(
        client_max_size=netguard.MAX_REQUEST_BYTES, middlewares=[netguard.guard(None, memory)]
    )
    app.router.add_post("/x", handler)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.json_response(await request.json())


async def test_half_open_connections_cannot_crowd_out_a_client():
    """300 connections that never finish a request, against a cap of 50: each new one pushes out
    the oldest idle one, and a real request is still answered at once."""
    connections = Connections(cap=50, header_timeout_s=60)
    runner = await listen(await _app(_ok), "127.0.0.1", 0, connections)
    port = runner.addresses[0][1]
    held = []
    try:
        for _ in range(300):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the rest
            held.append(writer)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        status = await _post(
            f"http://127.0.0.1:{port}/x", b"{}", **{"Content-Type": "application/json"}
        )
        assert status == 200 and time.monotonic() - started < 2
        assert connections.evicted >= 250
    finally:
        for writer in held:
            writer.close()
        await runner.cleanup()


async def test_a_connection_that_sends_no_request_is_closed():
    connections = Connections(cap=50, header_timeout_s=0.3)
    runner = await listen(await _app(_ok), "127.0.0.1", 0, connections)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(b"POST /x HTTP/1.1\r\n")
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert time.monotonic() - started < 3
        writer.close()
    finally:
        await runner.cleanup()


async def test_a_dripping_request_body_is_cut(monkeypatch):
    monkeypatch.setattr(netguard, "BODY_TIMEOUT_S", 0.3)
    runner = await listen(await _app(_ok), "127.0.0.1", 0, Connections(cap=50))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(
            b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        status = (await asyncio.wait_for(reader.readline(), 5)).split()[1]
        writer.close()
        assert status == b"408"
    finally:
        await runner.cleanup()


async def test_large_bodies_wait_for_memory_instead_of_piling_up():
    """Eight bodies of 3 MB against 7 MB of room: at most two are read and handled at once."""
    state = {"now": 0, "peak": 0}

    async def handler(request: web.Request) -> web.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        body = await request.json()
        await asyncio.sleep(0.05)
        state["now"] -= 1
        return web.json_response({"n": len(body["x"])})

    memory = ByteBudget(7 * 1024 * 1024)
    runner = await listen(await _app(handler, memory), "127.0.0.1", 0, Connections(cap=50))
    body = b'{"x": "' + b"y" * (3 * 1024 * 1024) + b'"}'
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/x"
        statuses = await asyncio.gather(
            *(_post(url, body, **{"Content-Type": "application/json"}) for _ in range(8))
        )
        assert statuses == [200] * 8
        assert state["peak"] == 2 and memory.peak <= 7 * 1024 * 1024 and memory.used == 0
    finally:
        await runner.cleanup()
