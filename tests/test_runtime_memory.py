"""Memory in flight is bounded: answers over 1 MiB reserve their size from the endpoint's
max_buffered_response_bytes and keep it until their rollout's record is written; the budget never
deadlocks, even when one rollout gets several large answers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web
from gym_run.collect.rollouts import Collector
from gym_run.endpoint.client import MAX_RESPONSE_BYTES
from gym_run.endpoint.memory import ByteBudget
from gym_run.secrets import server_specs
from gym_run.servers.registry import build_servers

from tests.runtime_helpers import (
    assistant_message,
    function_call,
    openai_spec,
    response_body,
    weather_plan,
    weather_row,
)

MIB = 1024 * 1024


async def test_the_budget_is_first_come_first_served_and_never_starves_the_first():
    budget = ByteBudget(10)
    assert await budget.reserve(25) == 10  # more than all of it: capped, granted when empty
    waiting = asyncio.ensure_future(budget.reserve(3))
    await asyncio.sleep(0)
    assert not waiting.done()
    budget.release(10)
    assert await waiting == 3 and budget.used == 3
    budget.release(3)
    assert budget.used == 0 and budget.peak == 10


async def _endpoint(aiohttp_server, answer) -> str:
    """A Responses endpoint that reads big requests too (the big answers come back as input)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer(await request.json(), 0))

    app = web.Application(client_max_size=64 * MIB)
    app.router.add_post("/v1/responses", handler)
    return str((await aiohttp_server(app)).make_url("/v1"))


async def _collect(url: str, rows: int, buffered: int, tmp_path) -> tuple[list, object]:
    plan = weather_plan(
        tmp_path,
        [weather_row(f"in town {i}?") for i in range(rows)],
        model=openai_spec(url, max_buffered_response_bytes=buffered),
        max_steps=10,
    )
    records: list[dict] = []

    async def sink(record: dict) -> None:
        records.append(record)

    async with aiohttp.ClientSession() as session:
        servers = await build_servers(server_specs(plan), session)
        try:
            collector = Collector(
                servers.agent("simple_weather_simple_agent"),
                plan_hash=plan["content_hash"],
                params_override={},
                concurrency=rows,
                sink=sink,
            )
            items = ((i, 0, weather_row(f"in town {i}?")) for i in range(rows))
            await asyncio.wait_for(collector.run(items), 60)
        finally:
            await servers.close()
    client = servers["policy_model"].client
    return records, client


async def test_large_answers_wait_for_room_and_everything_completes(aiohttp_server, tmp_path):
    """Eight rollouts whose final answers are 1.5 MiB, 3 MiB of room: two at a time hold one."""
    big = "x" * (3 * MIB // 2)

    def answer(body: dict, _index: int) -> dict:
        if any(item.get("type") == "function_call_output" for item in body["input"]):
            return response_body([assistant_message(big)])
        return response_body([function_call("get_weather", '{"city": "sf"}')])

    url = await _endpoint(aiohttp_server, answer)
    records, client = await _collect(url, 8, 3 * MIB, tmp_path)
    assert [r["_gym"]["status"] for r in records] == ["ok"] * 8
    memory = client.memory
    assert memory is not None and memory.used == 0  # every rollout gave its room back
    assert 3 * MIB // 2 < memory.peak <= 3 * MIB  # never more than the budget at once


async def test_a_rollout_with_several_large_answers_cannot_deadlock(aiohttp_server, tmp_path):
    """Both answers of every rollout are large and the budget holds less than one of them: the
    rollout holding a reservation reads its next large answer without waiting."""
    big = "x" * (3 * MIB // 2)

    def answer(body: dict, _index: int) -> dict:
        if any(item.get("type") == "function_call_output" for item in body["input"]):
            return response_body([assistant_message(big)])
        return response_body(
            [function_call("get_weather", '{"city": "sf"}'), assistant_message(big)]
        )

    url = await _endpoint(aiohttp_server, answer)
    records, client = await _collect(url, 4, MIB, tmp_path)
    assert [r["_gym"]["status"] for r in records] == ["ok"] * 4, records[0]["_gym"].get("error")
    assert client.memory.used == 0


@pytest.mark.parametrize("announced", [True, False])
async def test_an_answer_of_unknown_length_reserves_the_worst_case(
    aiohttp_server, tmp_path, announced
):
    """Chunked answers (no Content-Length) past 1 MiB reserve max_response_bytes; announced ones
    reserve what they announce."""
    big = json.dumps(response_body([assistant_message("x" * (2 * MIB))])).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not any(item.get("type") == "function_call_output" for item in body["input"]):
            return web.json_response(
                response_body([function_call("get_weather", '{"city": "sf"}')])
            )
        if announced:
            return web.Response(body=big, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(big)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/responses", handler)
    server = await aiohttp_server(app)
    records, client = await _collect(str(server.make_url("/v1")), 1, 64 * MIB, tmp_path)
    assert records[0]["_gym"]["status"] == "ok"
    assert client.memory.peak == (len(big) if announced else MAX_RESPONSE_BYTES)
