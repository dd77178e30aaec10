"""gym_run.servers.builtin.agent.SimpleAgent: NeMo Gym's loop, over real HTTP to scripted endpoints and the stand-in."""

from __future__ import annotations

import json

import aiohttp
import pytest
from gym_run.endpoint.client import OpenAIClient
from gym_run.errors import PlanError
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import SimpleWeather
from gym_run.servers.registry import build_servers

from tests.conftest import assert_valid
from tests.runtime_helpers import (
    assistant_message,
    function_call,
    recording_stand_in,
    response_body,
    stand_in_spec,
    start_endpoint,
    weather_plan,
    weather_row,
)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def _agent(aiohttp_server, session, answer, max_steps=None):
    endpoint, url = await start_endpoint(aiohttp_server, answer)
    model = ModelServer(
        "policy_model", OpenAIClient(session, base_url=url, api_key="sk-x", model="gpt-test")
    )
    return endpoint, SimpleAgent("agent", model, SimpleWeather("weather", {}), max_steps)


async def test_weather_loop_with_stand_in_logic(aiohttp_server, session, openai_schema):
    endpoint, agent = await _agent(aiohttp_server, session, recording_stand_in)
    row = weather_row(expected_answer="cold")
    result = await agent.run(row, {"temperature": 0.2})

    assert len(endpoint.bodies) == 2
    for body in endpoint.bodies:
        assert_valid(openai_schema("create_response"), body)
        assert body["temperature"] == 0.2 and body["model"] == "gpt-test"
    first, second = endpoint.bodies
    assert first["input"] == row["responses_create_params"]["input"]
    call, output = second["input"][-2:]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert output == {
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": '{"city":"sf","weather_description":"The weather in sf is cold."}',
    }

    assert [o["type"] for o in result["response"]["output"]] == [
        "function_call",
        "function_call_output",
        "message",
    ]
    assert result["response"]["output"][2]["content"][0]["text"] == "The weather in sf is cold."
    assert result["reward"] == 1.0 and result["expected_answer"] == "cold"
    assert result["responses_create_params"]["temperature"] == 0.2
    gym = result["_gym"]
    assert (gym["model_calls"], gym["tool_calls"]) == (2, 1)
    assert gym["latency_s"] >= 0


async def test_usage_is_summed(aiohttp_server, session):
    script = [
        response_body(
            [function_call("get_weather", '{"city": "Oslo"}')], input_tokens=10, output_tokens=3
        ),
        response_body([assistant_message("cold")], input_tokens=20, output_tokens=4),
    ]
    _endpoint, agent = await _agent(aiohttp_server, session, lambda b, i: script[i])
    result = await agent.run(weather_row())
    assert result["_gym"]["usage"] == {
        "input_tokens": 30,
        "cached_input_tokens": 4,
        "output_tokens": 7,
        "reasoning_tokens": 2,
        "total_tokens": 37,
    }
    # NeMo Gym's record: the final response's usage is the sum over the loop's calls, not the last
    assert result["response"]["usage"] == {
        "input_tokens": 30,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 37,
    }


async def test_no_usage_reported_stays_absent(aiohttp_server, session):
    bodies = [response_body([assistant_message("cold")])]
    bodies[0].pop("usage", None)
    _endpoint, agent = await _agent(aiohttp_server, session, lambda b, i: bodies[i])
    result = await agent.run(weather_row())
    assert result["response"].get("usage") is None
    assert result["_gym"]["usage"]["total_tokens"] == 0


async def test_string_input_becomes_a_user_message(aiohttp_server, session, openai_schema):
    endpoint, agent = await _agent(aiohttp_server, session, recording_stand_in)
    result = await agent.run({"responses_create_params": {"input": "hello"}})
    assert endpoint.bodies[0]["input"] == [{"type": "message", "role": "user", "content": "hello"}]
    assert_valid(openai_schema("create_response"), endpoint.bodies[0])
    assert result["responses_create_params"]["input"] == "hello"
    assert result["_gym"]["model_calls"] == 1 and result["_gym"]["tool_calls"] == 0


@pytest.mark.parametrize(
    ("call", "expected", "tool_calls"),
    [
        (
            function_call("get_time", "{}"),
            "tool 'get_time' was not offered in this request (offered: 'get_weather')",
            0,
        ),
        (
            function_call("get_weather", '{"city": '),
            "arguments for get_weather are not valid JSON",
            0,
        ),
        (function_call("get_weather", "[1]"), "arguments for get_weather must be a JSON object", 0),
        (function_call("get_weather", "{}"), "get_weather needs a string argument 'city'", 1),
    ],
    ids=["unknown-tool", "invalid-json", "not-an-object", "tool-http-error"],
)
async def test_tool_problems_go_back_to_the_model(
    aiohttp_server, session, openai_schema, call, expected, tool_calls
):
    script = [response_body([call]), response_body([assistant_message("sorry")])]
    endpoint, agent = await _agent(aiohttp_server, session, lambda b, i: script[i])
    result = await agent.run(weather_row())
    sent = endpoint.bodies[1]["input"][-1]
    assert_valid(openai_schema("create_response"), endpoint.bodies[1])
    assert sent["type"] == "function_call_output" and sent["call_id"] == "call_1"
    assert expected in json.loads(sent["output"])["error"]
    assert result["reward"] == 1.0 and result["_gym"]["tool_calls"] == tool_calls


async def test_calls_in_one_output_run_in_order(aiohttp_server, session):
    calls = [
        function_call("get_weather", '{"city": "A"}', "call_a"),
        function_call("get_weather", '{"city": "B"}', "call_b"),
    ]
    script = [response_body(calls), response_body([assistant_message("done")])]
    endpoint, agent = await _agent(aiohttp_server, session, lambda b, i: script[i])
    await agent.run(weather_row())
    tail = endpoint.bodies[1]["input"][-4:]
    assert [(i["type"], i["call_id"]) for i in tail] == [
        ("function_call", "call_a"),
        ("function_call", "call_b"),
        ("function_call_output", "call_a"),
        ("function_call_output", "call_b"),
    ]
    assert '"city":"A"' in tail[2]["output"] and '"city":"B"' in tail[3]["output"]


async def test_max_steps(aiohttp_server, session):
    endpoint, agent = await _agent(
        aiohttp_server,
        session,
        lambda b, i: response_body([function_call("get_weather", '{"city": "x"}', f"c{i}")]),
        max_steps=3,
    )
    result = await agent.run(weather_row())
    assert len(endpoint.bodies) == 3
    assert len(result["response"]["output"]) == 6
    assert result["_gym"]["model_calls"] == 3 and result["_gym"]["tool_calls"] == 3


async def test_incomplete_max_output_tokens_stops(aiohttp_server, session):
    def answer(body, i):
        resp = response_body([function_call("get_weather", '{"city": "x"}')])
        return {
            **resp,
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
        }

    endpoint, agent = await _agent(aiohttp_server, session, answer)
    result = await agent.run(weather_row())
    assert len(endpoint.bodies) == 1 and result["_gym"]["tool_calls"] == 0


async def test_registry_builds_the_stand_in_plan(tmp_path, session):
    plan = weather_plan(tmp_path, max_steps=4)
    servers = await build_servers(plan["servers"], session)
    try:
        result = await servers.agent("simple_weather_simple_agent").run(
            weather_row("how's the weather in new york?")
        )
    finally:
        await servers.close()
    assert result["reward"] == 1.0
    assert (
        result["response"]["output"][-1]["content"][0]["text"] == "The weather in new york is cold."
    )
    assert result["_gym"]["usage"]["total_tokens"] > 0


async def test_registry_refuses_unknown_implementation(tmp_path, session):
    plan = weather_plan(tmp_path)
    plan["servers"]["policy_model"]["implementation"] = "vllm_model"
    with pytest.raises(PlanError, match="'vllm_model' is not built into this gym-run"):
        await build_servers(plan["servers"], session)


async def test_registry_cleans_up_when_a_later_server_fails(tmp_path, session):
    plan = weather_plan(tmp_path, model=stand_in_spec())
    plan["servers"]["example_simple_weather"]["implementation"] = "nope"
    with pytest.raises(PlanError):
        await build_servers(plan["servers"], session)


class _BrokenTools(SimpleWeather):
    """A tool that crashes and one whose answer is not JSON-serialisable."""

    def tools(self):
        async def crash(args):
            raise RuntimeError("disk on fire")

        async def not_json(args):
            return {"when": object()}

        return {"crash": crash, "not_json": not_json}


async def test_a_crashing_or_non_json_tool_is_output_for_the_model(aiohttp_server, session):
    calls = [function_call("crash", "{}", "c1"), function_call("not_json", "{}", "c2")]
    script = [response_body(calls), response_body([assistant_message("sorry")])]
    endpoint, url = await start_endpoint(aiohttp_server, lambda b, i: script[i])
    model = ModelServer(
        "policy_model", OpenAIClient(session, base_url=url, api_key="sk-x", model="gpt-test")
    )
    row = weather_row()
    row["responses_create_params"]["tools"] += [
        {"type": "function", "name": n, "parameters": {}} for n in ("crash", "not_json")
    ]
    result = await SimpleAgent("agent", model, _BrokenTools("tools", {}), None).run(row)
    crash, not_json = endpoint.bodies[1]["input"][-2:]
    assert json.loads(crash["output"]) == {"error": "crash failed: RuntimeError: disk on fire"}
    assert json.loads(not_json["output"])["error"].startswith("not_json failed: TypeError")
    assert result["reward"] == 1.0
