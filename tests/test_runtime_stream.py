"""gym-run's client with `stream: true`: it asks for server-sent events and reads the final Response
from them (the real stand-in on 127.0.0.1, and scripted endpoints for a stream that fails or is
cut off); a plan compiled with `stream: true` runs end to end with the same rollouts."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from gym_run.collect.runner import run_job
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.retry import RetryPolicy
from gym_run.errors import ModelCallError
from gym_run.standin.server import respond, start_standin
from gym_run.standin.stream import encode, events

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.conftest import EXAMPLES, assert_valid
from tests.runtime_helpers import read_jsonl, start_endpoint, weather_row

KEY = "sk-stream-secret-123456"


def _client(session: aiohttp.ClientSession, url: str, **kw) -> OpenAIClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=2, initial_delay_s=0.001, max_delay_s=0.002))
    return OpenAIClient(session, base_url=url, api_key=KEY, model="m", **kw)


def _sse(chosen: list[dict]) -> web.Response:
    body = b"".join(encode(e) for e in chosen)
    return web.Response(body=body, content_type="text/event-stream")


async def test_stream_true_reads_the_final_response_from_the_events(openai_schema):
    standin = await start_standin()
    try:
        async with aiohttp.ClientSession() as session:
            params = weather_row()["responses_create_params"]
            streamed = await _client(session, standin.url, stream=True).create(params)
            plain = await _client(session, standin.url).create(params)
    finally:
        await standin.close()
    assert standin.app["stats"]["streamed"] == 1 and standin.app["stats"]["ok"] == 2
    assert_valid(openai_schema("response"), streamed)
    assert streamed["output"][0]["arguments"] == plain["output"][0]["arguments"]
    assert streamed["usage"] == plain["usage"] and streamed["id"] != plain["id"]


async def test_the_request_says_stream_true(aiohttp_server, openai_schema):
    def answer(body, _i):
        return _sse(list(events(respond(body))))

    endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        got = await _client(session, url, stream=True).create({"input": "hello"})
    (body,) = endpoint.bodies
    assert body["stream"] is True and body["model"] == "m"
    assert_valid(openai_schema("create_response"), body)
    assert got["output"][0]["content"][0]["text"] == "You said: hello"


@pytest.mark.parametrize(
    ("last", "says"),
    [
        (None, "ended early: the event stream ended before response.completed"),
        ("failed", "failed: overloaded, try later"),
        ("error", "failed: stream broke"),
    ],
)
async def test_a_stream_without_a_final_response_is_retried_then_fails(aiohttp_server, last, says):
    def answer(body, _i):
        sent = list(events(respond(body)))[:-1]  # everything but response.completed
        if last == "failed":
            failed = {**sent[0]["response"], "status": "failed"}
            failed["error"] = {"code": "server_error", "message": f"overloaded, try later {KEY}"}
            sent.append({"type": "response.failed", "response": failed, "sequence_number": 99})
        if last == "error":
            sent.append({"type": "error", "code": None, "message": "stream broke", "param": None})
        return _sse(sent)

    endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelCallError) as info:
            await _client(session, url, stream=True).create({"input": "hello"})
    assert says in info.value.message and info.value.attempts == 2 and len(endpoint.bodies) == 2
    assert KEY not in str(info.value)


async def test_an_incomplete_stream_is_an_incomplete_response(aiohttp_server):
    def answer(body, _i):
        sent = list(events(respond(body)))
        final = {**sent[-1]["response"], "status": "incomplete"}
        final["incomplete_details"] = {"reason": "max_output_tokens"}
        sent[-1] = {"type": "response.incomplete", "response": final, "sequence_number": 50}
        return _sse(sent)

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    async with aiohttp.ClientSession() as session:
        got = await _client(session, url, stream=True).create({"input": "hello"})
    assert got["status"] == "incomplete"


async def test_a_plan_with_stream_true_runs_with_the_same_rollouts(tmp_path):
    example = EXAMPLES / "simple_weather"
    runs = {}
    for stream in (False, True):
        out = tmp_path / f"stream-{stream}.jsonl"
        result = compile_config(
            [example / "simple_weather.yaml", example / "stand_in_model.yaml"],
            [
                f"+output_jsonl_fpath={out}",
                f"+policy_model.responses_api_models.stand_in_model.stream={str(stream).lower()}",
            ],
            Options(env=tmp_path / "none.yaml"),
        )
        assert result.ok, [str(d) for d in result.diagnostics]
        assert result.plan["servers"]["policy_model"]["config"]["stream"] is stream
        job = await run_job(result.plan, show_progress=False)
        runs[stream] = read_jsonl(job.rollouts_path)

    def content(records):
        return [
            (
                r["reward"],
                json.dumps(
                    [o.get("arguments") or o.get("content") for o in r["response"]["output"]]
                ),
            )
            for r in sorted(records, key=lambda r: r["_ng_task_index"])
        ]

    assert len(runs[True]) == 5 and content(runs[True]) == content(runs[False])
    assert all(r["_gym"]["status"] == "ok" for r in runs[True])
