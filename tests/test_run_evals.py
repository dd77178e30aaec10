"""A real run (an endpoint on 127.0.0.1 that fails, rate-limits and is slow) gives the aggregate
block in the metrics file, the per-task file, and plain progress lines in a CI log."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from aiohttp import web
from gym_run.collect.runner import run_job

from tests.runtime_helpers import (
    FAST_RETRY,
    openai_spec,
    read_jsonl,
    recording_stand_in,
    start_endpoint,
    weather_plan,
    weather_row,
)


async def test_aggregate_tasks_file_and_ci_progress(tmp_path, aiohttp_server):
    count = {"n": 0}

    async def handle(request: web.Request) -> web.StreamResponse:
        """500 for paris (after its retries the rollout fails), a 429 now and then, slow."""
        body = await request.json()
        count["n"] += 1
        if "paris" in json.dumps(body["input"]):
            return web.json_response(
                {"error": {"message": "boom", "type": "server_error"}}, status=500
            )
        if count["n"] % 4 == 1:
            return web.json_response(
                {"error": {"message": "slow down", "type": "rate_limit"}},
                status=429,
                headers={"retry-after-ms": "1"},
            )
        await asyncio.sleep(0.02)
        return web.json_response(recording_stand_in(body, count["n"]))

    app = web.Application()
    app.router.add_post("/v1/responses", handle)
    server = await aiohttp_server(app)
    url = str(server.make_url("/v1"))
    rows = [weather_row(), weather_row("is it sunny in paris?"), weather_row("in rome?")]
    retry = {**FAST_RETRY, "max_attempts": 6, "max_retry_after_s": 1}
    plan = weather_plan(
        tmp_path, rows, model=openai_spec(url, retry=retry), num_repeats=3, concurrency=2
    )
    log = io.StringIO()  # not a terminal
    result = await run_job(plan, progress_stream=log, progress_interval_s=0.05)
    lines = log.getvalue().splitlines()
    assert lines and all(line.startswith("gym-run: rollouts ") for line in lines)
    assert any("%)" in line and "ETA " in line for line in lines), lines
    assert "\r" not in log.getvalue()

    agg = result.metrics["_gym"]["aggregate"]
    assert agg["rollouts"] == {"final": 9, "ok": 6, "failed": 3, "missing": 0}
    assert agg["outcome"]["reward_mean"] == pytest.approx(6 / 9)  # failures count 0
    assert agg["fields"]["reward"]["mean"] == 1.0  # the ok ones
    assert agg["failures"] == {"ModelCallError": 3}
    assert agg["tasks"] == {
        "count": 3,
        "incomplete": 0,
        "all_passed": 2,
        "none_passed": 1,
        "some_passed": 0,
        "reward_mean": agg["tasks"]["reward_mean"],
        "file": str(tmp_path / "results" / "rollouts.tasks.jsonl"),
    }
    assert agg["repeats"]["pass@k"] == {
        "1": pytest.approx(2 / 3),
        "2": pytest.approx(2 / 3),
        "3": pytest.approx(2 / 3),
    }
    tasks = read_jsonl(agg["tasks"]["file"])
    assert [(t["task"], t["passed"], t["failed"]) for t in tasks] == [
        (0, 3, 0),
        (1, 0, 3),
        (2, 3, 0),
    ]
    assert tasks[0]["fields"]["tool_calls"]["mean"] == 1.0
    assert result.metrics["_gym"]["calls"]["rate_limited"] > 0


async def test_progress_line_counts_retries_and_429s_while_nothing_finishes(
    tmp_path, aiohttp_server
):
    calls = {"n": 0}

    def answer(body: dict[str, Any], index: int) -> Any:
        calls["n"] += 1
        if calls["n"] <= 6:
            return web.json_response(
                {"error": {"message": "slow down", "type": "rate_limit"}},
                status=429,
                headers={"retry-after-ms": "40"},
            )
        return recording_stand_in(body, index)

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    retry = {"max_attempts": 10, "initial_delay_s": 0.04, "max_delay_s": 0.05}
    plan = weather_plan(tmp_path, [weather_row()], model=openai_spec(url, retry=retry))
    log = io.StringIO()
    await run_job(plan, progress_stream=log, progress_interval_s=0.05)
    assert any("retries (" in line and "x 429)" in line for line in log.getvalue().splitlines())
