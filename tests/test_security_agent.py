"""The agent calls only tools the request offered; anything else goes back to the model as an error."""

from __future__ import annotations

import json

import aiohttp
import pytest
from gym_run.endpoint.client import OpenAIClient
from gym_run.servers.builtin.agent import RunStats, SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer, SimpleWeather, ToolHandler

from tests.runtime_helpers import (
    WEATHER_TOOL,
    assistant_message,
    function_call,
    response_body,
    start_endpoint,
)


class Armoury(SimpleWeather):
    """A resources server with a tool no request offers; calling it is what must not happen."""

    def __init__(self) -> None:
        super().__init__("armoury", {})
        self.fired = 0

    def tools(self) -> dict[str, ToolHandler]:
        return {**super().tools(), "delete_everything": self.delete_everything}

    async def delete_everything(self, args: dict) -> dict:
        self.fired += 1
        return {"deleted": True}


def _agent(resources: ResourcesServer) -> SimpleAgent:
    return SimpleAgent("agent", ModelServer("m", client=None), resources, max_steps=4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offered", "listed"),
    [
        ([WEATHER_TOOL], "'get_weather'"),
        ([], "none"),
        ("not a list", "none"),
        ([{"type": "web_search"}, {"type": "function"}], "none"),
    ],
)
async def test_a_tool_the_request_did_not_offer_is_refused_naming_the_offered_ones(
    offered, listed
) -> None:
    armoury = Armoury()
    stats = RunStats()
    item = await _agent(armoury)._call_tool(
        function_call("delete_everything", "{}"), stats, offered
    )
    error = json.loads(item["output"])["error"]
    assert (
        error
        == f"tool 'delete_everything' was not offered in this request (offered: {listed}); it was not called"
    )
    assert armoury.fired == 0 and stats.tool_calls == 0 and item["call_id"] == "call_1"


async def test_an_offered_tool_is_called() -> None:
    stats = RunStats()
    item = await _agent(Armoury())._call_tool(
        function_call("get_weather", '{"city": "sf"}'), stats, [WEATHER_TOOL]
    )
    assert json.loads(item["output"])["city"] == "sf" and stats.tool_calls == 1


async def test_the_loop_never_calls_an_unoffered_tool_over_http(aiohttp_server) -> None:
    answers = [
        response_body([function_call("delete_everything", "{}")]),
        response_body([assistant_message("ok")]),
    ]
    endpoint, url = await start_endpoint(aiohttp_server, lambda body, i: answers[min(i, 1)])
    armoury = Armoury()
    async with aiohttp.ClientSession() as session:
        model = ModelServer("m", OpenAIClient(session, base_url=url, api_key="sk-x", model="m"))
        agent = SimpleAgent("agent", model, armoury, max_steps=4)
        response, stats = await agent.responses({"input": "hi", "tools": [WEATHER_TOOL]})
    assert armoury.fired == 0 and stats.tool_calls == 0
    second = endpoint.bodies[1]["input"][-1]
    assert second["type"] == "function_call_output" and "was not offered" in second["output"]
