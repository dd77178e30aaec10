"""The stand-in model server: real HTTP on 127.0.0.1, checked against OpenAI's official schemas."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gym_run.standin.model import _hint_from_text
from gym_run.standin.server import (
    Faults,
    _judge_answer,
    build_app,
    respond,
    run_standalone,
    start_standin,
)
from jsonschema import Draft202012Validator

from tests.conftest import REPO, assert_valid

WEATHER_ROWS = [
    json.loads(line)["responses_create_params"]
    for line in Path(REPO / "examples/simple_weather/data/example.jsonl").read_text().splitlines()
    if line.strip()
]


def weather_body(row: int = 0, **extra: Any) -> dict[str, Any]:
    return {"model": "stand-in-1", **WEATHER_ROWS[row], **extra}


def tool(parameters: dict[str, Any] | None, name: str = "f", strict: bool | None = None) -> dict:
    return {"type": "function", "name": name, "strict": strict, "parameters": parameters}


def args_for(parameters: dict[str, Any], text: str = "hello", strict: bool | None = None) -> Any:
    answer = respond({"input": text, "tools": [tool(parameters, strict=strict)]})
    (item,) = answer["output"]
    assert item["type"] == "function_call"
    return json.loads(item["arguments"])


async def post(client: Any, body: Any, path: str = "/v1/responses", headers: Any = None) -> Any:
    data = body if isinstance(body, (bytes, str, io.BytesIO)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **(headers or {})}
    return await client.post(path, data=data, headers=headers)


async def assert_error(resp: Any, status: int, openai_schema: Any) -> dict[str, Any]:
    assert resp.status == status
    assert resp.headers["x-request-id"].startswith("req_")
    body = await resp.json()
    assert_valid(openai_schema("error_response"), body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# ------------------------------------------------------------------------------- respond()


async def test_simple_weather_tool_call_then_final_message(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app())
    first_body = weather_body()
    assert_valid(openai_schema("create_response"), first_body)
    resp = await post(client, first_body)
    assert resp.status == 200 and resp.headers["x-request-id"].startswith("req_")
    first = await resp.json()
    assert_valid(openai_schema("response"), first)
    (call,) = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"city": "sf"}
    assert first["id"].startswith("resp_") and first["model"] == "stand-in-1"
    assert first["tools"][0]["strict"] is True and first["usage"]["total_tokens"] > 1

    tool_out = {"city": "sf", "weather_description": "The weather in sf is cold."}
    follow = [
        *first_body["input"],
        call,
        {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": json.dumps(tool_out),
        },
    ]
    second_body = weather_body(input=follow)
    assert_valid(openai_schema("create_response"), second_body)
    second = await (await post(client, second_body)).json()
    assert_valid(openai_schema("response"), second)
    (message,) = second["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["text"] == "The weather in sf is cold."
    assert message["id"].startswith("msg_") and second["id"] != first["id"]
    assert client.app["stats"]["ok"] == 2


@pytest.mark.parametrize("row", range(len(WEATHER_ROWS)))
def test_every_weather_row_answers_validly(row, openai_schema):
    answer = respond(weather_body(row))
    assert_valid(openai_schema("response"), answer)
    assert json.loads(answer["output"][0]["arguments"])["city"]


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "city": {"type": "string"},
        },
        "required": ["unit", "city"],
    },
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 7},
            "m": {"type": "integer", "exclusiveMinimum": 10, "multipleOf": 4},
            "neg": {"type": "integer", "maximum": -3},
            "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
            "k": {"type": "integer", "enum": [3, 9]},
        },
        "required": ["n", "m", "neg", "x", "k"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 12},
                    "age": {"type": "integer", "minimum": 18},
                    "address": {
                        "type": "object",
                        "properties": {"zip": {"type": "string", "maxLength": 3}},
                        "required": ["zip"],
                        "additionalProperties": False,
                    },
                },
                "required": ["name", "age", "address"],
                "additionalProperties": False,
            }
        },
        "required": ["user"],
    },
    {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 3,
                "uniqueItems": True,
            },
            "days": {
                "type": "array",
                "items": {"enum": ["mon", "tue", "wed"]},
                "minItems": 2,
                "maxItems": 2,
                "uniqueItems": True,
            },
            "grid": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            },
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "boolean"}],
                "items": False,
            },
        },
        "required": ["tags", "days", "grid", "pair"],
    },
    {
        "type": "object",
        "properties": {
            "when": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
            "mode": {"oneOf": [{"const": "fast"}, {"type": "integer"}]},
            "opt": {"type": ["string", "null"]},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "level": {"type": "string", "default": "info"},
        },
        "required": ["when", "mode", "opt", "flag", "nothing", "level"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 2},
            "origin": {"allOf": [{"$ref": "#/$defs/point"}]},
        },
        "required": ["points", "origin"],
    },
    {
        "type": "object",
        "properties": {
            "meta": {
                "type": "object",
                "minProperties": 2,
                "additionalProperties": {"type": "integer"},
            }
        },
        "required": ["meta"],
    },
]


@pytest.mark.parametrize(
    "schema",
    SCHEMAS,
    ids=["enum", "numbers", "nested", "arrays", "unions", "refs", "min-properties"],
)
def test_arguments_validate_against_the_tool_parameters(schema):
    Draft202012Validator.check_schema(schema)
    args = args_for(schema)
    errors = list(
        Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).iter_errors(args)
    )
    assert not errors, [e.message for e in errors]


def test_arguments_only_required_unless_strict():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert set(args_for(schema)) == {"a"}
    assert set(args_for(schema, strict=True)) == {"a", "b"}


def test_string_patterns_are_honoured():
    props = {
        "code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{2}$"},
        "hex": {"type": "string", "pattern": r"^#[0-9a-f]{6}$"},
        "either": {"type": "string", "pattern": r"^(yes|no)$"},
        "odd": {"type": "string", "pattern": r"(?=x)y"},  # a lookahead: kept as it was
    }
    schema = {"type": "object", "properties": props, "required": list(props)}
    args = args_for(schema, text="what about code in town?")
    assert re.fullmatch(r"[A-Z]{3}-\d{2}", args["code"]) and args["hex"] == "#000000"
    assert args["either"] == "yes" and args["odd"] == "odd"


def test_huge_sizes_in_a_schema_stay_bounded():
    """A request's schema cannot make the stand-in build a billion values (16 MiB bodies can
    still say minItems: 1e9, nested)."""
    nested: dict = {"type": "string", "minLength": 10**9}
    for _ in range(5):
        nested = {"type": "array", "minItems": 10**9, "items": nested}
    schema = {
        "type": "object",
        "properties": {"x": nested},
        "required": ["x"],
        "minProperties": 10**9,
    }
    args = args_for(schema)
    assert len(json.dumps(args)) < 50_000_000 and len(args["x"]) == 1000


def test_first_free_string_gets_the_user_hint_and_enums_stay_valid():
    schema = SCHEMAS[0]
    assert args_for(schema, "what's it like in sf?") == {"unit": "celsius", "city": "sf"}
    assert args_for(
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}, ""
    ) == {"q": "q"}


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("what's it like in sf?", "sf"),
        ("going out in sf tn", "sf"),
        ("I'm in SF, what should I wear?", "SF"),
        ("how's the weather in new york?", "new york"),
        ("tell me a joke!", "joke"),
        ("", ""),
    ],
)
def test_hint_heuristic(text, hint):
    assert _hint_from_text(text) == hint


def test_respond_is_deterministic_and_ids_follow_the_request():
    body = weather_body()
    one, two = respond(json.loads(json.dumps(body))), respond(body)
    assert (
        one["id"] == two["id"] and one["output"] == two["output"] and one["usage"] == two["usage"]
    )
    other = respond(weather_body(1))
    assert other["id"] != one["id"] and other["output"][0]["call_id"] != one["output"][0]["call_id"]
    assert re.fullmatch(r"resp_[0-9a-f]{24}", one["id"])


def test_tool_choice_selects_or_suppresses_tools(openai_schema):
    tools = [
        tool({"type": "object", "properties": {}}, "first"),
        {"type": "function", "name": "second"},
    ]  # parameters/strict missing: filled with null
    named = respond(
        {"input": "hi", "tools": tools, "tool_choice": {"type": "function", "name": "second"}}
    )
    assert named["output"][0]["name"] == "second" and named["output"][0]["arguments"] == "{}"
    assert named["tools"][1] == {
        "type": "function",
        "name": "second",
        "strict": None,
        "parameters": None,
    }
    assert_valid(openai_schema("response"), named)
    silent = respond({"input": "hi", "tools": tools, "tool_choice": "none"})
    assert silent["output"][0]["type"] == "message"
    assert_valid(openai_schema("response"), silent)


def test_plain_message_echoes_the_last_user_message_and_request_settings(openai_schema):
    body = {
        "model": "m",
        "instructions": "be brief",
        "temperature": 0.2,
        "top_p": 0.5,
        "metadata": {"k": "v"},
        "parallel_tool_calls": False,
        "input": [
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "input_text", "text": "second one"}]},
        ],
    }
    answer = respond(body)
    assert_valid(openai_schema("response"), answer)
    assert answer["output"][0]["content"][0]["text"] == "You said: second one"
    assert (answer["instructions"], answer["temperature"], answer["top_p"]) == (
        "be brief",
        0.2,
        0.5,
    )
    assert answer["metadata"] == {"k": "v"} and answer["parallel_tool_calls"] is False
    assert answer["usage"]["output_tokens"] == 5  # ceil(len("You said: second one") / 4)


def test_plain_tool_output_is_used_verbatim_and_judge_seam_is_inert():
    body = {
        "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call_output", "call_id": "c", "output": "42 degrees"},
        ],
        "tools": [tool({"type": "object", "properties": {}})],
    }
    assert respond(body)["output"][0]["content"][0]["text"] == "42 degrees"
    assert _judge_answer("Is the answer equivalent? [[A=B]]") is None


# ------------------------------------------------------------------------------- HTTP errors


async def test_bad_requests_are_400_with_param(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app())
    err = await assert_error(await post(client, b"{not json"), 400, openai_schema)
    assert err["type"] == "invalid_request_error"
    await assert_error(await post(client, [1, 2]), 400, openai_schema)
    err = await assert_error(await post(client, {"model": "m"}), 400, openai_schema)
    assert err["param"] == "input" and "input" in err["message"]
    err = await assert_error(
        await post(client, {"input": "x", "tools": [{"type": "function"}]}), 400, openai_schema
    )
    assert err["param"] == "tools[0].name"
    err = await assert_error(
        await post(client, {"input": "x", "stream": "yes"}), 400, openai_schema
    )
    assert err["param"] == "stream"
    await assert_error(
        await post(client, b'{"input": "x", "temperature": NaN}'), 400, openai_schema
    )
    assert client.app["stats"]["bad_request"] == 6


async def test_wrong_or_missing_key_is_401_without_echoing_it(aiohttp_client, openai_schema):
    secret = "sk-stand-in-secret-key-1234567890"
    client = await aiohttp_client(build_app(api_key=secret))
    wrong = "sk-abcdefghijklmnopqrstuvwxyz"
    resp = await post(client, weather_body(), headers={"Authorization": f"Bearer {wrong}"})
    err = await assert_error(resp, 401, openai_schema)
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert "sk-****yz" in err["message"] and wrong not in err["message"]
    assert "abcdefghij" not in err["message"] and secret not in err["message"]
    short = await post(client, weather_body(), headers={"Authorization": "Bearer sk-123"})
    assert "sk-123" not in (await assert_error(short, 401, openai_schema))["message"]
    missing = await assert_error(await post(client, weather_body()), 401, openai_schema)
    assert "didn't provide an API key" in missing["message"]
    ok = await post(client, weather_body(), headers={"Authorization": f"Bearer {secret}"})
    assert ok.status == 200
    assert (client.app["stats"]["unauthorized"], client.app["stats"]["ok"]) == (3, 1)
    assert (await client.get("/v1/models")).status == 401


async def test_unknown_model_and_unknown_path_are_404(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app(known_models=["stand-in-1", "judge-1"]))
    err = await assert_error(await post(client, weather_body(model="gpt-9")), 404, openai_schema)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert err["message"] == "The model `gpt-9` does not exist or you do not have access to it."
    assert (await post(client, weather_body(model="judge-1"))).status == 200
    await assert_error(await client.get("/v1/nowhere"), 404, openai_schema)
    await assert_error(await client.get("/v1/responses"), 405, openai_schema)
    assert client.app["stats"]["model_not_found"] == 1


async def test_body_over_16_mib_is_413(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app())
    big = io.BytesIO(json.dumps({"input": "x" * (16 * 1024 * 1024)}).encode())
    await assert_error(await post(client, big), 413, openai_schema)


async def test_models_list_and_unversioned_routes(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app(model="local-1"))
    for path in ("/v1/models", "/models"):
        resp = await client.get(path)
        assert resp.headers["x-request-id"].startswith("req_")
        listing = await resp.json()
        assert listing["object"] == "list"
        assert [(m["id"], m["object"], m["owned_by"]) for m in listing["data"]] == [
            ("local-1", "model", "gym-compile")
        ]
        assert isinstance(listing["data"][0]["created"], int)
    body = weather_body()
    del body["model"]
    answer = await (await post(client, body, "/responses")).json()
    assert_valid(openai_schema("response"), answer)
    assert answer["model"] == "local-1"


# ------------------------------------------------------------------------------- faults, latency


async def test_rate_limit_fault_has_retry_headers(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app(faults=Faults(rate_limit=1.0, retry_after_ms=1500)))
    resp = await post(client, weather_body())
    err = await assert_error(resp, 429, openai_schema)
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    assert resp.headers["retry-after-ms"] == "1500" and resp.headers["retry-after"] == "2"
    bare = await aiohttp_client(build_app(faults=Faults(rate_limit=1.0, retry_after_ms=None)))
    resp = await post(bare, weather_body())
    assert (
        resp.status == 429
        and "retry-after" not in resp.headers
        and "retry-after-ms" not in resp.headers
    )


async def test_server_errors_alternate_500_and_503(aiohttp_client, openai_schema):
    client = await aiohttp_client(build_app(faults=Faults(server_error=1.0)))
    statuses = []
    for _ in range(4):
        resp = await post(client, weather_body())
        statuses.append(resp.status)
        assert (await assert_error(resp, resp.status, openai_schema))["type"] == "server_error"
    assert statuses == [500, 503, 500, 503] and client.app["stats"]["server_error"] == 4


async def test_drop_closes_the_connection(aiohttp_client):
    client = await aiohttp_client(build_app(faults=Faults(drop=1.0)))
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(client, weather_body())
    assert client.app["stats"]["drop"] == 1


async def test_malformed_is_a_200_that_is_not_json(aiohttp_client):
    client = await aiohttp_client(build_app(faults=Faults(malformed=1.0)))
    resp = await post(client, weather_body())
    assert resp.status == 200 and resp.headers["x-request-id"]
    with pytest.raises(ValueError):
        json.loads(await resp.text())


async def test_fault_fractions_are_honoured_and_reproducible(aiohttp_client):
    async def statuses(seed: int) -> list[int]:
        client = await aiohttp_client(build_app(faults=Faults(rate_limit=0.5, seed=seed)))
        return [(await post(client, {"input": "hi"})).status for _ in range(200)]

    first = await statuses(7)
    assert 70 <= first.count(429) <= 130 and set(first) == {200, 429}
    assert await statuses(7) == first and await statuses(8) != first


async def test_mixed_faults_stay_exclusive_at_their_fractions(aiohttp_client):
    faults = Faults(rate_limit=0.25, server_error=0.25, malformed=0.25, seed=3)
    client = await aiohttp_client(build_app(faults=faults))
    for _ in range(200):
        await (await post(client, {"input": "hi"})).read()
    stats = client.app["stats"]
    assert sum(stats[k] for k in ("rate_limit", "server_error", "malformed", "ok")) == 200
    assert all(25 <= stats[k] <= 75 for k in ("rate_limit", "server_error", "malformed", "ok"))


def test_faults_reject_impossible_settings():
    with pytest.raises(ValueError):
        Faults(rate_limit=1.5)
    with pytest.raises(ValueError):
        Faults(rate_limit=0.6, drop=0.6)


async def test_slow_fault_and_latency_delay_successful_answers(aiohttp_client):
    slow = await aiohttp_client(build_app(faults=Faults(slow=1.0, slow_ms=80)))
    started = time.perf_counter()
    assert (await post(slow, weather_body())).status == 200
    assert time.perf_counter() - started >= 0.08
    assert (slow.app["stats"]["slow"], slow.app["stats"]["ok"]) == (1, 1)

    lagging = await aiohttp_client(build_app(latency_ms=120))
    started = time.perf_counter()
    assert (await post(lagging, weather_body())).status == 200
    assert time.perf_counter() - started >= 0.12


# ------------------------------------------------------------------------------- real clients


async def test_official_openai_client_gets_a_function_call():
    openai = pytest.importorskip("openai")
    standin = await start_standin()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", standin.url) and standin.port > 0
        row = WEATHER_ROWS[0]

        def call() -> Any:
            client = openai.OpenAI(base_url=standin.url, api_key="x", max_retries=0)
            return client.responses.create(model="m", input=row["input"], tools=row["tools"])

        response = await asyncio.to_thread(call)
        assert response.model == "m" and response.status == "completed"
        (item,) = response.output
        assert item.type == "function_call" and item.name == "get_weather"
        assert json.loads(item.arguments) == {"city": "sf"}
    finally:
        await standin.close()


async def test_official_openai_client_retries_injected_rate_limits():
    openai = pytest.importorskip("openai")
    standin = await start_standin(faults=Faults(rate_limit=0.5, seed=1), api_key="sk-good-key-123")
    try:

        def call(key: str) -> Any:
            client = openai.OpenAI(base_url=standin.url, api_key=key, max_retries=8)
            return client.responses.create(model="m", input="hello")

        for _ in range(3):
            response = await asyncio.to_thread(call, "sk-good-key-123")
            assert response.output_text == "You said: hello"
        stats = standin.app["stats"]
        assert stats["ok"] == 3 and stats["rate_limit"] >= 1
        with pytest.raises(openai.AuthenticationError) as caught:  # 429s first are retried
            await asyncio.to_thread(call, "sk-wrong-key-456")
        assert "sk-wrong-key-456" not in str(caught.value)
    finally:
        await standin.close()


def test_run_standalone_serves_until_terminated():
    code = "from gym_run.standin.server import run_standalone; run_standalone('127.0.0.1', 0)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"stand-in listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(f"{match.group(1)}/models", timeout=5) as resp:
            assert resp.status == 200 and resp.headers["x-request-id"].startswith("req_")
            assert json.load(resp)["data"][0]["id"] == "stand-in-1"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_run_standalone_raises_oserror_on_a_taken_port():
    with socket.socket() as taken:  # the CLI turns the OSError into a one-line message
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            run_standalone("127.0.0.1", taken.getsockname()[1])
