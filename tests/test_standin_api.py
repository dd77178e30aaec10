"""The stand-in's newer Responses API features, each driven by the official `openai` SDK against a
real stand-in on 127.0.0.1, every JSON body and every stream event checked against OpenAI's
official schemas: structured outputs, previous_response_id with a bounded store, retrieve and
delete, stream=True, and a fresh id for every answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from enum import Enum
from functools import cache
from typing import Any

import aiohttp
import openai
import pytest
from gym_run.standin.server import StandIn, start_standin
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from tests.conftest import OPENAI_SCHEMAS, assert_valid
from tests.runtime_helpers import WEATHER_TOOL


class Unit(str, Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Reading(BaseModel):
    hour: int = Field(ge=0, le=23)
    value: float


class Forecast(BaseModel):
    city: str
    code: str = Field(pattern=r"^[A-Z]{3}-\d{2}$")
    unit: Unit
    readings: list[Reading] = Field(min_length=2)
    note: str | None
    windy: bool


class Checked:
    """The SDK's calls through its raw-response API, so every JSON body the stand-in sends back
    is checked against the official schemas before the SDK parses it."""

    def __init__(self, client: openai.AsyncOpenAI, validator: Any) -> None:
        self.client = client
        self.validator = validator
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.client.responses.with_raw_response, name)
        try:
            raw = await method(*args, **kwargs)
        except openai.APIStatusError as exc:
            self.statuses.append(exc.status_code)
            assert_valid(self.validator("error_response"), exc.response.json())
            raise
        self.statuses.append(raw.status_code)
        body = json.loads(raw.text)
        self.bodies.append(body)
        if name != "delete":
            assert_valid(self.validator("response"), body)
        return raw.parse()


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    running = await start_standin(store_size=3)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def client(standin) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=standin.url, api_key="sk-test", max_retries=0)
    try:
        yield sdk
    finally:
        await sdk.close()


@pytest.fixture
def call(client, openai_schema) -> Checked:
    return Checked(client, openai_schema)


# --------------------------------------------------------------------- structured outputs


async def test_responses_parse_gets_json_that_conforms_to_the_model(call):
    parsed = await call(
        "parse", model="stand-in-1", input="What's the forecast in Lima?", text_format=Forecast
    )
    forecast = parsed.output_parsed
    assert isinstance(forecast, Forecast) and len(forecast.readings) >= 2
    assert forecast.code == "AAA-00"  # the pattern is honoured
    body = call.bodies[-1]
    assert call.statuses == [200] and body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["name"] == "Forecast"
    Forecast.model_validate_json(body["output"][0]["content"][0]["text"])  # the wire text itself


async def test_json_object_and_plain_text_formats(call):
    answer = await call(
        "create", model="stand-in-1", input="hello", text={"format": {"type": "json_object"}}
    )
    assert json.loads(answer.output_text) == {"answer": "You said: hello"}
    plain = await call("create", model="stand-in-1", input="hello")
    assert plain.output_text == "You said: hello" and plain.text.format.type == "text"
    with pytest.raises(openai.BadRequestError) as caught:
        await call(
            "create",
            model="stand-in-1",
            input="x",
            text={"format": {"type": "json_schema", "name": "bad name!", "schema": {}}},
        )
    assert caught.value.body["param"] == "text.format.name"  # type: ignore[index]
    assert call.statuses == [200, 200, 400]


# --------------------------------------------------------------------- previous_response_id


async def test_previous_response_id_continues_the_conversation(call):
    """The previous input and output come first: a tool call, then its output alone, is answered
    with the tool's result, as from one request holding all of it."""
    first = await call(
        "create", model="stand-in-1", input="what's it like in sf?", tools=[WEATHER_TOOL]
    )
    (asked,) = first.output
    assert asked.type == "function_call" and json.loads(asked.arguments) == {"city": "sf"}
    tool_output = json.dumps({"city": "sf", "weather_description": "The weather in sf is cold."})
    second = await call(
        "create",
        model="stand-in-1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": asked.call_id, "output": tool_output}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "The weather in sf is cold."
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens  # the first turn was counted
    again = await call("retrieve", first.id)
    assert again.model_dump() == first.model_dump()


async def test_unknown_previous_response_and_retrieve_are_404(call):
    with pytest.raises(openai.NotFoundError) as caught:
        await call("create", model="stand-in-1", input="x", previous_response_id="resp_nope")
    assert caught.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        await call("retrieve", "resp_nope")
    assert call.statuses == [404, 404]


async def test_store_is_bounded_honours_store_false_and_delete(call, standin):
    unstored = await call("create", model="stand-in-1", input="x", store=False)
    kept = [await call("create", model="stand-in-1", input=f"turn {i}") for i in range(4)]
    store = standin.app["store"]
    assert len(store) == 3 and store.evicted == 1  # store_size=3: the oldest went first
    for gone in (unstored, kept[0]):
        with pytest.raises(openai.NotFoundError):
            await call("retrieve", gone.id)
    assert (await call("retrieve", kept[1].id)).output_text == "You said: turn 1"
    await call("delete", kept[1].id)
    assert call.bodies[-1] == {"id": kept[1].id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        await call("retrieve", kept[1].id)
    with pytest.raises(openai.NotFoundError):
        await call("delete", kept[1].id)


async def test_every_answer_gets_its_own_ids(call):
    one = await call("create", model="stand-in-1", input="same", tools=[WEATHER_TOOL])
    two = await call("create", model="stand-in-1", input="same", tools=[WEATHER_TOOL])
    assert one.id != two.id and one.output[0].id != two.output[0].id
    assert one.output[0].arguments == two.output[0].arguments  # deterministic content
    ids = {one.id, two.id}
    assert all(i.startswith("resp_") and len(i) > 40 for i in ids)


# --------------------------------------------------------------------- stream=True


@cache
def _event_validators() -> dict[str, Any]:
    """event type -> a validator of that event's own definition (stricter than the union)."""
    with open(OPENAI_SCHEMAS / "response_stream_event.schema.json", encoding="utf-8") as fh:
        bundle = json.load(fh)
    out = {}
    for ref in bundle["$defs"]["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].split("/")[-1]
        kind = bundle["$defs"][name].get("properties", {}).get("type", {}).get("enum", [None])[0]
        out[kind] = Draft202012Validator({**bundle, "$ref": f"#/$defs/{name}"})
    out["*"] = Draft202012Validator(bundle)
    return out


async def _raw_events(url: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """POSTs a stream request and splits the body into SSE events: (content type, events)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/responses", json=body) as resp:
            assert resp.status == 200 and resp.headers["x-request-id"].startswith("req_")
            text = await resp.text()
            kind = resp.headers["Content-Type"]
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        event = json.loads(lines["data"])
        assert lines["event"] == event["type"]
        events.append(event)
    assert text.endswith("\n\n") and "[DONE]" not in text
    return kind, events


@pytest.mark.parametrize(
    "body",
    [
        {"input": "what's it like in sf?", "tools": [WEATHER_TOOL]},
        {"input": "tell me a long story about four small dogs in a big city please"},
        {
            "input": "forecast?",
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "Forecast",
                    "schema": Forecast.model_json_schema(),
                }
            },
        },
    ],
    ids=["function_call", "message", "structured"],
)
async def test_every_stream_event_validates_against_the_official_schema(standin, body):
    kind, events = await _raw_events(standin.url, {"model": "m", "stream": True, **body})
    assert kind.startswith("text/event-stream")
    validators = _event_validators()
    for event in events:
        assert_valid(validators[event["type"]], event)
        assert_valid(validators["*"], event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    deltas = [e["type"] for e in events if e["type"].endswith(".delta")]
    assert deltas, "the answer comes in pieces"
    assert standin.app["stats"]["streamed"] == 1


async def test_sdk_stream_helper_assembles_the_same_response(client):
    async with client.responses.stream(
        model="stand-in-1", input="what's it like in sf?", tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    plain = await client.responses.create(
        model="stand-in-1", input="what's it like in sf?", tools=[WEATHER_TOOL]
    )
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds
    assert final.output[0].arguments == plain.output[0].arguments and final.id != plain.id
    async with client.responses.stream(
        model="stand-in-1", input="Forecast for Lima", text_format=Forecast
    ) as structured:
        parsed = (await structured.get_final_response()).output_parsed
    assert isinstance(parsed, Forecast)
    events = await client.responses.create(model="stand-in-1", input="hi there", stream=True)
    text = "".join([e.delta async for e in events if e.type == "response.output_text.delta"])
    assert text == "You said: hi there"
