"""Property-based fuzzing over real loopback HTTP, plus YAML tags and scalars under both loaders.

- The runtime client against an endpoint answering fuzzed raw HTTP (status, headers, bodies,
  lying Content-Length, bogus gzip): only a parsed dict or a ModelCallError comes out.
- The stand-in against fuzzed request bodies: a Response, or a 4xx in the official error shape;
  never a 500, never a crash.
- Tagged and odd YAML scalars: data or our own located diagnostics (this found `!!int abc`).

Default 200 examples per property; GYM_FUZZ_EXAMPLES=10000 on demand (docs/security.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import yaml
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.retry import RetryPolicy
from gym_run.endpoint.timeouts import Timeouts
from gym_run.errors import ModelCallError
from gym_run.standin.server import start_standin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_compile import loader
from gym_compile.diagnostics import CompileError

EXAMPLES = int(os.environ.get("GYM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


class Loop:
    """One event loop in a thread for the servers, one in the test thread for the client."""

    def __init__(self) -> None:
        self.server_loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.server_loop.run_forever, daemon=True)
        self.thread.start()
        self.client_loop = asyncio.new_event_loop()

    def on_server(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.server_loop).result(timeout=30)

    def close(self) -> None:
        self.server_loop.call_soon_threadsafe(self.server_loop.stop)
        self.thread.join(timeout=10)
        self.client_loop.close()


class RawEndpoint:
    """Answers each connection with the bytes in `self.answer`, then closes it."""

    def __init__(self) -> None:
        self.answer = b""

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(self.answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def loops() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def raw(loops: Loop) -> Iterator[tuple[RawEndpoint, OpenAIClient]]:
    endpoint = RawEndpoint()
    port = loops.on_server(endpoint.start())
    session = loops.client_loop.run_until_complete(_session())
    retry = RetryPolicy(
        max_attempts=2,
        initial_delay_s=0.0,
        max_delay_s=0.001,
        max_total_s=5,
        max_rate_limited_s=0.05,  # 429s are retried by time, not attempts: a short time here
        max_retry_after_s=0.01,
    )
    client = OpenAIClient(
        session,
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-fuzz-key-000000",
        model="m",
        retry=retry,
        timeouts=Timeouts(connect=2, read=2, total=5),
        max_response_bytes=64 * 1024,
    )
    yield endpoint, client
    loops.client_loop.run_until_complete(session.close())
    loops.on_server(_close_server(endpoint.server))


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "error": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"message": json_values}, optional={"type": json_values, "code": json_values}
                ),
            )
        }
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"output": json_values}, optional={"usage": json_values}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.just(b"\x1f\x8b\x08\x00garbage"),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Retry-After",
            "retry-after-ms",
            "x-should-retry",
            "x-request-id",
            "Content-Encoding",
            "Transfer-Encoding",
            "X-Junk",
        ]
    ),
    st.one_of(
        header_values,
        st.sampled_from(
            [
                "application/json",
                "text/plain; charset=latin-1",
                "gzip",
                "chunked",
                "true",
                "false",
                "0",
                "1e9",
                "-5",
                "nan",
                "Wed, 21 Oct 2099 07:28:00 GMT",
                "text/html; charset=bogus",
            ]
        ),
    ),
    max_size=5,
)


def _raw_response(
    status: int, reason: str, head: dict[str, str], body: bytes, length: str
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    if length == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif length == "short":
        lines.append(f"Content-Length: {max(len(body) - 3, 0)}")
    elif length == "long":
        lines.append(f"Content-Length: {len(body) + 50}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@FUZZ
@given(
    status=st.one_of(
        st.sampled_from([200, 201, 204, 301, 400, 401, 404, 408, 409, 413, 429, 500, 502, 503]),
        st.integers(100, 599),
    ),
    reason=st.sampled_from(["OK", "", "Weird Reason", "x" * 200]),
    head=headers,
    body=bodies,
    length=st.sampled_from(["exact", "short", "long", "none"]),
)
def test_client_gives_a_dict_or_a_model_call_error_for_any_answer(
    loops, raw, status, reason, head, body, length
):
    endpoint, client = raw
    endpoint.answer = _raw_response(status, reason, head, body, length)
    try:
        answer = loops.client_loop.run_until_complete(client.create({"input": "hi"}))
    except ModelCallError as exc:
        assert exc.message and isinstance(exc.message, str) and len(exc.message) < 2000
        assert exc.attempts in (1, 2) or status == 429
        assert "sk-fuzz-key-000000" not in str(exc)
        return
    assert isinstance(answer, dict)
    json.dumps(answer)


@FUZZ
@given(st.binary(max_size=400))
def test_client_survives_any_bytes_as_an_answer(loops, raw, garbage):
    endpoint, client = raw
    endpoint.answer = garbage
    try:
        answer = loops.client_loop.run_until_complete(client.create({"input": "hi"}))
    except ModelCallError as exc:
        assert exc.message
        return
    assert isinstance(answer, dict)


@pytest.fixture(scope="module")
def standin(loops: Loop) -> Iterator[tuple[str, aiohttp.ClientSession]]:
    running = loops.on_server(start_standin(api_key="k"))
    session = loops.client_loop.run_until_complete(_session())
    yield running.url + "/responses", session
    loops.client_loop.run_until_complete(session.close())
    loops.on_server(running.close())


tool = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "web_search", 3])},
    optional={
        "name": st.one_of(st.text(max_size=10), json_values),
        "strict": json_values,
        "parameters": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.dictionaries(
                        st.text(max_size=8),
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "type": st.sampled_from(
                                    [
                                        "string",
                                        "integer",
                                        "number",
                                        "boolean",
                                        "array",
                                        "object",
                                        "null",
                                        "bogus",
                                    ]
                                ),
                                "enum": json_values,
                                "minimum": json_values,
                                "maximum": json_values,
                                "multipleOf": json_values,
                                "minLength": json_values,
                                "maxLength": json_values,
                                "items": json_values,
                                "$ref": json_values,
                                "format": json_values,
                                "anyOf": json_values,
                                "allOf": json_values,
                            },
                        ),
                        max_size=3,
                    ),
                },
                optional={
                    "required": json_values,
                    "minProperties": json_values,
                    "additionalProperties": json_values,
                },
            ),
        ),
    },
)
request_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "input": st.one_of(
                st.text(max_size=40),
                st.lists(
                    st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {"role": st.sampled_from(["user", "assistant", "developer", 1])},
                            optional={
                                "type": st.sampled_from(
                                    ["message", "function_call", "function_call_output"]
                                ),
                                "content": json_values,
                                "output": json_values,
                                "name": json_values,
                                "arguments": json_values,
                            },
                        ),
                    ),
                    max_size=4,
                ),
                json_values,
            )
        },
        optional={
            "tools": st.one_of(st.lists(tool, max_size=3), json_values),
            "tool_choice": json_values,
            "model": json_values,
            "instructions": json_values,
            "stream": json_values,
            "temperature": json_values,
            "metadata": json_values,
        },
    ).map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(request_bodies)
def test_the_stand_in_answers_any_body_with_a_response_or_a_4xx(loops, standin, body):
    url, session = standin

    async def post() -> tuple[int, Any]:
        async with session.post(
            url,
            data=body,
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        ) as resp:
            if resp.content_type == "text/event-stream":  # a body asking to stream
                text = await resp.text()
                events = [
                    json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")
                ]
                return resp.status, events[-1]["response"]  # response.completed carries it whole
            return resp.status, await resp.json(content_type=None)

    status, answer = loops.client_loop.run_until_complete(post())
    assert status == 200 or 400 <= status < 500, (status, answer)
    if status == 200:
        assert (
            answer["object"] == "response"
            and isinstance(answer["output"], list)
            and answer["usage"]
        )
    else:
        assert (
            set(answer["error"]) == {"message", "type", "param", "code"}
            and answer["error"]["message"]
        )


TAGS = [
    "",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!str ",
    "!!null ",
    "!!binary ",
    "!!timestamp ",
    "!!merge ",
    "!!map ",
    "!!seq ",
    "!!python/object:os.system ",
    "!custom ",
    "!!set ",
    "!!omap ",
]
SCALARS = [
    "abc",
    "1",
    "0x",
    "0o9",
    "1_000",
    ".inf",
    ".nan",
    "-.inf",
    "1e999",
    "2020-13-45",
    "yes",
    "~",
    "''",
    "[1, 2]",
    "{a: 1}",
    "aGk=",
    "9" * 5000,
    "&a 1",
    "*a",
    "? x",
]


@pytest.mark.parametrize("loader_class", ["CSafeLoader", "SafeLoader"])
@FUZZ
@given(
    tag=st.sampled_from(TAGS),
    value=st.sampled_from(SCALARS),
    key_tag=st.sampled_from(TAGS[:4] + TAGS[-4:]),
)
def test_tagged_scalars_load_or_give_located_diagnostics(loader_class, tag, value, key_tag):
    if not hasattr(yaml, loader_class):
        pytest.skip(f"PyYAML has no {loader_class}")
    saved = loader._Loader
    loader._Loader = getattr(yaml, loader_class)
    try:
        doc = loader.parse_yaml(f"{key_tag}k: {tag}{value}\nother: {tag}{value}\n", file="t.yaml")
    except CompileError as exc:
        assert all(
            d.code.startswith("GYM0") and d.location and d.location.file == "t.yaml"
            for d in exc.diagnostics
        )
        return
    finally:
        loader._Loader = saved
    assert isinstance(doc.data, dict)
