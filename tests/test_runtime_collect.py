"""gym_run.collect.rollouts / runner: lazy rows, aabbcc order, bounded concurrency, failure records, metrics."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from gym_run.collect.rollouts import Collector, iter_items, iter_rows
from gym_run.collect.runner import run_job
from gym_run.errors import PlanError
from jsonschema import Draft202012Validator

from gym_compile.assets import load_schema
from tests.runtime_helpers import (
    openai_spec,
    read_jsonl,
    recording_stand_in,
    stand_in_spec,
    start_endpoint,
    weather_plan,
    weather_row,
    write_jsonl,
)

HASH = "sha256:" + "ab" * 32


def test_rows_are_read_lazily(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"n": 0}, {"n": 1}])
    with open(path, "a") as fh:
        fh.write("\nthis line is never read\n")
    assert [i for i, _ in iter_rows(str(path), limit=2)] == [0, 1]
    rows = iter_rows(str(path))
    assert next(rows) == (0, {"n": 0}) and next(rows) == (1, {"n": 1})
    with pytest.raises(PlanError, match=r"in.jsonl:4: not JSON"):
        next(rows)


def test_repeats_follow_aabbcc():
    rows = iter([(0, {"r": "a"}), (1, {"r": "b"})])
    assert [(t, r, row["r"]) for t, r, row in iter_items(rows, 2)] == [
        (0, 0, "a"),
        (0, 1, "a"),
        (1, 0, "b"),
        (1, 1, "b"),
    ]


async def _collect(agent, items, *, concurrency, sink, params_override=None, **kw):
    async def async_sink(record):
        sink(record)

    collector = Collector(
        agent,
        plan_hash=HASH,
        params_override=params_override or {},
        concurrency=concurrency,
        sink=async_sink,
        **kw,
    )
    await collector.run(items)
    return collector


class _CountingAgent:
    """Records concurrency; fails rows that ask for it."""

    name = "counting_agent"

    def __init__(self):
        self.in_flight = self.peak = 0
        self.calls = []

    async def run(self, row, params_override=None):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.calls.append(row["n"])
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        if row.get("fail"):
            raise RuntimeError("boom")
        return {
            **row,
            "response": {},
            "reward": 0.5,
            "_gym": {"usage": {}, "model_calls": 1, "tool_calls": 0, "latency_s": 0},
        }


async def test_bounded_pool_and_bounded_read_ahead():
    produced = 0

    def items():
        nonlocal produced
        for n in range(50):
            produced += 1
            yield n, 0, {"n": n, "responses_create_params": {"input": "x"}}

    agent, records, seen_at_first = _CountingAgent(), [], []

    def sink(record):
        if not seen_at_first:
            seen_at_first.append(produced)
        records.append(record)

    tasks_before = len(asyncio.all_tasks())
    await _collect(agent, items(), concurrency=3, sink=sink)
    assert agent.peak == 3
    assert seen_at_first[0] <= 3 + 1  # rows are pulled only when a slot is free, never the dataset
    assert sorted(r["_ng_task_index"] for r in records) == list(range(50))
    assert len(asyncio.all_tasks()) == tasks_before


async def test_failures_are_recorded_and_collection_goes_on():
    items = iter(
        [
            (0, 0, {"n": 0, "responses_create_params": {"input": "x"}}),
            (1, 0, {"n": 1, "fail": True, "responses_create_params": {"input": "y"}}),
            (2, 0, {"n": 2, "responses_create_params": {"input": "z"}}),
        ]
    )
    records = []
    await _collect(
        _CountingAgent(),
        items,
        params_override={"temperature": 0.3},
        concurrency=1,
        sink=records.append,
    )
    assert [r["_gym"]["status"] for r in records] == ["ok", "failed", "ok"]
    failed = records[1]
    assert failed["_gym"] == {
        "id": f"{HASH[7:19]}:1:0",
        "status": "failed",
        "error": {
            "class": "RuntimeError",
            "status": None,
            "message": "boom",
            "attempts": None,
            "request_id": None,
        },
        "retries": 0,
    }
    assert "reward" not in failed and failed["responses_create_params"]["temperature"] == 0.3


async def test_run_job_with_the_stand_in(tmp_path):
    rows = [
        weather_row("what's it like in sf?", expected_answer="x"),
        weather_row("is it sunny in paris?"),
        weather_row("unused"),
    ]
    plan = weather_plan(
        tmp_path, rows, limit=2, num_repeats=3, concurrency=1, params={"temperature": 0.2}
    )
    result = await run_job(plan, show_progress=False)

    records = read_jsonl(plan["job"]["output"]["path"])
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in records] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    validator = Draft202012Validator(load_schema("rollout.schema.json"))
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["responses_create_params"]["temperature"] == 0.2
        assert (
            record["_gym"]["id"]
            == f"{plan['content_hash'][7:19]}:{record['_ng_task_index']}:{record['_ng_rollout_index']}"
        )
    assert records[0]["expected_answer"] == "x"
    assert (
        records[3]["response"]["output"][-1]["content"][0]["text"]
        == "The weather in paris is cold."
    )

    with open(plan["job"]["output"]["metrics_path"]) as fh:
        metrics = json.load(fh)
    assert metrics == result.metrics
    assert metrics["reward"] == 1.0 and "_ng_task_index" not in metrics
    gym = metrics["_gym"]
    assert gym["counts"] == {"planned": 6, "rollouts": 6, "ok": 6, "failed": 0, "missing": 0}
    assert gym["usage"]["total_tokens"] == sum(r["_gym"]["usage"]["total_tokens"] for r in records)
    assert gym["plan"] == plan["content_hash"]


async def test_run_job_records_endpoint_failures(tmp_path, aiohttp_server):
    def answer(body, index):
        if "paris" in json.dumps(body["input"]):
            error = {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return web.json_response(error, status=500, headers={"x-request-id": "req_9"})
        return recording_stand_in(body, index)

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    rows = [weather_row(), weather_row("is it sunny in paris?"), weather_row("in rome?")]
    retry = {"max_attempts": 3, "initial_delay_s": 0.001, "max_delay_s": 0.01}
    plan = weather_plan(tmp_path, rows, model=openai_spec(url, retry=retry), concurrency=2)
    result = await run_job(plan, show_progress=False)
    assert result.counts == {"planned": 3, "rollouts": 3, "ok": 2, "failed": 1, "missing": 0}
    failed = [
        r for r in read_jsonl(plan["job"]["output"]["path"]) if r["_gym"]["status"] == "failed"
    ]
    assert failed[0]["_ng_task_index"] == 1
    assert failed[0]["_gym"]["error"] == {
        "class": "ModelCallError",
        "status": 500,
        "attempts": 3,
        "request_id": "req_9",
        "message": "The server had an error; gave up after 3 attempts (retry.max_attempts)",
    }
    assert failed[0]["_gym"]["retries"] == 2
    validator = Draft202012Validator(load_schema("rollout.schema.json"))
    assert all(
        not list(validator.iter_errors(r)) for r in read_jsonl(plan["job"]["output"]["path"])
    )
    assert result.metrics["_gym"]["calls"]["retries"] == 2


async def test_run_job_through_injected_faults_loses_nothing(tmp_path):
    faults = {
        "rate_limit": 0.3,
        "server_error": 0.05,
        "drop": 0.02,
        "malformed": 0.02,
        "retry_after_ms": 1,
        "seed": 3,
    }
    retry = {"max_attempts": 15, "initial_delay_s": 0.001, "max_delay_s": 0.01}
    rows = [weather_row(f"in city{i}?") for i in range(20)]
    plan = weather_plan(
        tmp_path,
        rows,
        model=stand_in_spec(faults=faults, retry=retry),
        num_repeats=2,
        concurrency=8,
    )
    result = await run_job(plan, show_progress=False)
    records = read_jsonl(plan["job"]["output"]["path"])
    assert result.counts == {"planned": 40, "rollouts": 40, "ok": 40, "failed": 0, "missing": 0}
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in records) == [
        (t, r) for t in range(20) for r in range(2)
    ]
    calls = result.metrics["_gym"]["calls"]
    assert calls["retries"] > 0 and calls["rate_limited"] > 0 and calls["failed"] == 0
    assert calls["requests"] == calls["calls"] + calls["retries"] and calls["max_attempts"] <= 15
    assert sum(r["_gym"]["retries"] for r in records) == calls["retries"]
