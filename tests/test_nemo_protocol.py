"""NeMo Gym's HTTP protocol as gym-run speaks it to servers it does not run in-process: what a row
sent to an agent or a verifier carries, and reading a large answer that arrives in pieces.

The peers are small aiohttp servers on 127.0.0.1 speaking NeMo Gym's routes (`/run`,
`/seed_session`, `/<tool>`, `/verify`) and recording what they were sent; the plan names them with
`url:` (tests/test_nemo07_run.py runs NeMo Gym's own servers).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from gym_run.collect.runner import run_job

from tests.runtime_helpers import read_jsonl, seal, weather_plan, weather_row

PIECE = 16 * 1024


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _in_pieces(request: web.Request, answer: dict[str, Any]) -> web.StreamResponse:
    """The answer as a slow server sends it: chunked, a piece at a time, with pauses."""
    data = json.dumps(answer).encode()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for start in range(0, len(data), PIECE):
        await resp.write(data[start : start + PIECE])
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


def _agent_app(seen: list[dict[str, Any]], padding: int) -> web.Application:
    async def run(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        response = {"id": "resp_1", "object": "response", "output": [], "usage": None}
        answer = {**body, "response": response, "reward": 1.0, "history": "h" * padding}
        return await _in_pieces(request, answer)

    app = web.Application(client_max_size=1024**2)
    app.router.add_post("/run", run)
    return app


def _resources_app(seen: list[tuple[str, dict[str, Any]]]) -> web.Application:
    async def route(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.path, body))
        if request.path == "/verify":
            return web.json_response({**body, "reward": 1.0})
        if request.path == "/get_weather":
            return web.json_response({"city": body.get("city"), "weather_description": "cold"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{route}", route)
    return app


@pytest.fixture
async def agent_peer():
    """start(padding) -> the URL of an agent whose answers carry `padding` more bytes; `seen`."""
    peer: dict[str, Any] = {"seen": [], "runners": []}

    async def start(padding: int) -> str:
        runner, url = await _serve(_agent_app(peer["seen"], padding))
        peer["runners"].append(runner)
        return url

    peer["start"] = start
    yield peer
    for runner in peer["runners"]:
        await runner.cleanup()


async def test_a_large_run_answer_sent_in_pieces_is_read_whole(tmp_path, agent_peer):
    """NeMo Gym's longmemeval answers /run with ~100 KB that arrives in several reads: gym-run
    read only what had arrived and called the answer not JSON."""
    url = await agent_peer["start"](300_000)
    plan = weather_plan(tmp_path, [weather_row()])
    plan["servers"]["simple_weather_simple_agent"].update(run="url", url=url)
    result = await run_job(seal(plan), show_progress=False)
    assert result.counts["ok"] == 1, result.first_error
    (record,) = read_jsonl(result.rollouts_path)
    assert record["history"] == "h" * 300_000


async def test_the_row_sent_to_an_agent_carries_its_indices(tmp_path, agent_peer):
    """NeMo Gym's collector sends each row with `_ng_task_index` and `_ng_rollout_index` (its
    genrm_compare verifier refuses a rollout without them); the record keeps its key order."""
    url = await agent_peer["start"](0)
    plan = weather_plan(tmp_path, [weather_row(), weather_row("and in paris?")], num_repeats=2)
    plan["servers"]["simple_weather_simple_agent"].update(run="url", url=url)
    result = await run_job(seal(plan), show_progress=False)
    assert result.counts["ok"] == 4, result.first_error
    sent = sorted((b["_ng_task_index"], b["_ng_rollout_index"]) for b in agent_peer["seen"])
    assert sent == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for record in read_jsonl(result.rollouts_path):
        keys = list(record)
        assert keys[-4:] == ["_ng_task_index", "_ng_rollout_index", "agent_ref", "_gym"]


async def test_the_builtin_agent_passes_the_indices_to_seed_session_and_verify(tmp_path):
    """gym-run's own simple_agent with a NeMo Gym resources server: as NeMo Gym's simple_agent,
    the row it was sent (indices included) goes to /seed_session and /verify."""
    seen: list[tuple[str, dict[str, Any]]] = []
    runner, url = await _serve(_resources_app(seen))
    try:
        plan = weather_plan(tmp_path, [weather_row()], num_repeats=3)
        plan["servers"]["example_simple_weather"].update(run="url", url=url)
        result = await run_job(seal(plan), show_progress=False)
    finally:
        await runner.cleanup()
    assert result.counts["ok"] == 3, result.first_error
    for path in ("/seed_session", "/verify"):
        bodies = [b for p, b in seen if p == path]
        assert sorted(b["_ng_rollout_index"] for b in bodies) == [0, 1, 2]
        assert all(b["_ng_task_index"] == 0 for b in bodies)
