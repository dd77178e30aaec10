"""gym_run.servers.serve: every server of a plan over HTTP with NeMo Gym's routes."""

from __future__ import annotations

import json
import socket

import aiohttp
import pytest
import yaml
from gym_run.servers.serve import format_table, start_serving
from jsonschema import Draft202012Validator

from gym_compile.assets import load_schema
from tests.conftest import assert_valid
from tests.runtime_helpers import seal, stand_in_spec, weather_plan, weather_row


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


async def test_head_server_names_every_server(served, http):
    async with http.get(served.head_url + "/global_config_dict_yaml") as resp:
        assert resp.status == 200
        config = yaml.safe_load(json.loads(await resp.text()))
    agent = config["simple_weather_simple_agent"]["responses_api_agents"]["simple_agent"]
    assert served.url("simple_weather_simple_agent") == f"http://{agent['host']}:{agent['port']}"
    weather = config["example_simple_weather"]["resources_servers"]["example_simple_weather"]
    assert weather["port"] == served.fixed_port
    assert config["head_server"]["port"] == int(served.head_url.rsplit(":", 1)[1])
    async with http.get(served.head_url + "/server_instances") as resp:
        names = {i["process_name"] for i in await resp.json()}
    assert names == {s.name for s in served.table}


async def test_failed_rollout_answers_200_with_nemo_gyms_failure_keys(tmp_path, http):
    model = stand_in_spec(faults={"server_error": 1.0}, retry={"max_attempts": 1})
    served = await start_serving(seal(weather_plan(tmp_path, model=model, with_job=False)))
    try:
        row = {**weather_row(), "_ng_task_index": 3, "_ng_rollout_index": 1}
        status, answer = await _post(http, served.url("simple_weather_simple_agent") + "/run", row)
    finally:
        await served.close()
    assert status == 200
    assert answer["_ng_failure_class"] == "agent_run_error" and answer["reward"] == 0.0
    assert answer["error"].startswith("ModelCallError: HTTP 5")
    assert answer["response"]["object"] == "response" and answer["response"]["output"]
    assert list(answer)[-1] == "_gym" and answer["_gym"]["status"] == "failed"
    assert answer["_gym"]["id"].endswith(":3:1") and answer["_gym"]["error"]["attempts"] == 1
    assert not list(Draft202012Validator(load_schema("rollout.schema.json")).iter_errors(answer))


async def test_served_record_has_summed_usage_and_the_collected_gym_keys(served, http):
    status, record = await _post(
        http, served.url("simple_weather_simple_agent") + "/run", weather_row()
    )
    gym = record["_gym"]
    assert status == 200 and gym["model_calls"] == 2
    assert record["response"]["usage"]["total_tokens"] == gym["usage"]["total_tokens"] > 0
    assert {"retries", "cost_usd", "cost_by_server", "model_by_server"} <= set(gym)
    assert record["agent_ref"] == {"name": "simple_weather_simple_agent"}


async def test_aggregate_metrics_route(served, http):
    url = served.url("simple_weather_simple_agent")
    _status, record = await _post(http, url + "/run", weather_row())
    status, body = await _post(http, url + "/aggregate_metrics", {"verify_responses": [record]})
    assert status == 200 and body["key_metrics"]["mean/reward"] == 1.0
    assert body["agent_metrics"]["_gym"]["counts"]["ok"] == 1
    status, body = await _post(
        http, served.url("example_simple_weather") + "/aggregate_metrics", {"verify_responses": []}
    )
    assert (status, body["group_level_metrics"]) == (200, [])
    status, body = await _post(http, url + "/aggregate_metrics", {"verify_responses": [1]})
    assert status == 400 and "verify_responses" in body["error"]["message"]
