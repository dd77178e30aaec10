"""gym_run.servers.serve: every server of a plan over HTTP with NeMo Gym's routes."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from gym_run.servers.serve import format_table, start_serving
from jsonschema import Draft202012Validator

from gym_compile.assets import load_schema
from tests.conftest import assert_valid
from tests.runtime_helpers import seal, weather_plan, weather_row


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    plan = weather_plan(tmp_path, with_job=False)
    port = _free_port()
    plan["servers"]["example_simple_weather"]["config"]["port"] = port
    served = await start_serving(seal(plan))
    served.fixed_port = port
    try:
        yield served
    finally:
        await served.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(http, url, body):
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_table(served):
    names = [(s.name, s.type, s.implementation) for s in served.table]
    assert names == [
        ("policy_model", "responses_api_models", "stand_in_model"),
        ("example_simple_weather", "resources_servers", "example_simple_weather"),
        ("simple_weather_simple_agent", "responses_api_agents", "simple_agent"),
    ]
    assert served.url("example_simple_weather") == f"http://127.0.0.1:{served.fixed_port}"
    text = format_table(served.table)
    assert text.splitlines()[0].split() == ["NAME", "TYPE", "IMPLEMENTATION", "URL"]
    rows = {line.split()[0]: line.split()[-1] for line in text.splitlines()[1:]}
    assert rows["policy_model"] == served.url("policy_model") + "/v1"  # an OpenAI base_url
    assert rows["example_simple_weather"] == served.url("example_simple_weather")


async def test_printed_model_url_works_as_the_sdk_base_url(served):
    """The URL serve prints for a model server is what the official SDK takes as base_url."""
    import openai

    base_url = next(s.base_url for s in served.table if s.name == "policy_model")
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    try:
        answer = await client.responses.create(model="m", input="hello")
    finally:
        await client.close()
    assert answer.output_text == "You said: hello"


async def test_agent_run(served, http):
    status, record = await _post(
        http,
        served.url("simple_weather_simple_agent") + "/run",
        {**weather_row(expected_answer="cold"), "_ng_task_index": 4},
    )
    assert status == 200
    assert not list(Draft202012Validator(load_schema("rollout.schema.json")).iter_errors(record))
    assert record["reward"] == 1.0 and record["expected_answer"] == "cold"
    assert record["_ng_task_index"] == 4 and record["_gym"]["id"].endswith(":4:0")


async def test_agent_responses(served, http):
    status, response = await _post(
        http,
        served.url("simple_weather_simple_agent") + "/v1/responses",
        weather_row()["responses_create_params"],
    )
    assert status == 200 and response["output"][-1]["type"] == "message"


async def test_resources_routes(served, http):
    base = served.url("example_simple_weather")
    assert await _post(http, base + "/seed_session", weather_row()) == (200, {})
    assert await _post(http, base + "/get_weather", {"city": "sf"}) == (
        200,
        {"city": "sf", "weather_description": "The weather in sf is cold."},
    )
    status, body = await _post(http, base + "/get_weather", {})
    assert status == 422 and "city" in body["error"]
    status, body = await _post(http, base + "/get_time", {})
    assert status == 404 and "unknown tool" in body["error"]
    status, body = await _post(
        http, base + "/verify", {**weather_row(), "response": {"output": []}}
    )
    assert status == 200 and body["reward"] == 1.0


async def test_model_route(served, http, openai_schema):
    status, response = await _post(
        http, served.url("policy_model") + "/v1/responses", weather_row()["responses_create_params"]
    )
    assert status == 200
    assert_valid(openai_schema("response"), response)
    assert response["output"][0]["type"] == "function_call"


async def test_bad_bodies_get_official_error_shape(served, http, openai_schema):
    async with http.post(served.url("policy_model") + "/v1/responses", data=b"{nope") as resp:
        assert resp.status == 400
        assert_valid(openai_schema("error_response"), await resp.json())
    status, body = await _post(
        http, served.url("simple_weather_simple_agent") + "/run", {"no": "params"}
    )
    assert status == 400 and "responses_create_params" in body["error"]["message"]
