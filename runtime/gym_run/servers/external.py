"""Servers gym-run does not run in-process (NeMo Gym processes, `url:` servers) in, objects the
registry and the collector use like built-in ones out: same methods, NeMo Gym's HTTP underneath.

- `RemoteResources`: `/seed_session`, `/<tool>`, `/verify`, with the session cookies of each
  rollout carried from answer to request as NeMo Gym's agents carry them (a stateful resources
  server keys its per-rollout state on them).
- `HttpAgent`: a rollout is one `POST /run`; its model calls through gym-run's loopback model
  servers are counted into the rollout (`attribution`).
- `remote_model`: a model server reached at `<url>/v1/responses` through gym-run's own client.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from gym_compile import jsonsafe
from gym_compile.jsonsafe import BadJSON
from gym_run.endpoint.usage import add_usage, empty_usage, total_usage
from gym_run.servers.attribution import Attribution, tagged, untagged
from gym_run.servers.builtin.agent import merge_params
from gym_run.servers.builtin.models import ModelServer, cached, call_options
from gym_run.servers.builtin.resources import ResourcesServer

MAX_BODY_BYTES = 32 * 1024 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)
_SNIPPET = 300
# where NeMo Gym's agents (0.5+) say why a rollout failed, first found wins
_FAILURE_TEXT = ("_ng_failure_message", "failure_reason", "_ng_failure_judge_error", "error")

# One rollout's cookies for one resources server: set by seed_session, carried to tools and verify.
_COOKIES: contextvars.ContextVar[dict[str, dict[str, str]] | None] = contextvars.ContextVar(
    "gym_remote_cookies", default=None
)


class RemoteCallError(Exception):
    """A NeMo Gym server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RolloutFailed(Exception):
    """A NeMo Gym agent reported a failed rollout (`_ng_failure_class`, NeMo Gym >= 0.5)."""

    def __init__(self, failure_class: str, message: str) -> None:
        super().__init__(message)
        self.failure_class = failure_class
        self.message = message


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    cookies: Mapping[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """(status, body text, cookies set by the answer); unreachable is a RemoteCallError."""
    try:
        async with session.post(url, json=body, cookies=cookies, timeout=_TIMEOUT) as resp:
            if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
                raise RemoteCallError(f"{url} answered with {resp.content_length} bytes", 502)
            raw = await _read_body(resp)
            if len(raw) > MAX_BODY_BYTES:
                raise RemoteCallError(f"{url} answered with more than {MAX_BODY_BYTES} bytes", 502)
            set_cookies = {k: m.value for k, m in resp.cookies.items()}
            return resp.status, raw.decode("utf-8", "replace"), set_cookies
    except aiohttp.ClientError as exc:
        raise RemoteCallError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


async def _read_body(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, up to one byte past the limit. `content.read(n)` alone returns whatever has
    arrived (a large answer sent in pieces came back cut, and so was not JSON)."""
    raw = bytearray()
    while len(raw) <= MAX_BODY_BYTES:
        chunk = await resp.content.read(MAX_BODY_BYTES + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    return bytes(raw)


def _object(url: str, status: int, text: str) -> dict[str, Any]:
    if not 200 <= status < 300:
        raise RemoteCallError(f"{url} answered {status}: {_snippet(text)}", status)
    try:
        value = jsonsafe.loads(text)
    except BadJSON:  # also 100,000 nested brackets or a 5,000-digit number
        value = None
    if not isinstance(value, dict):
        raise RemoteCallError(f"{url} answered {status} without a JSON object: {_snippet(text)}")
    return value


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


class RemoteResources(ResourcesServer):
    """A resources server at `url` (NeMo Gym's own, or any speaking its protocol)."""

    def __init__(
        self, name: str, config: dict[str, Any], url: str, session: aiohttp.ClientSession
    ) -> None:
        super().__init__(name, config)
        self.url = url.rstrip("/")
        self.session = session

    def _jar(self, fresh: bool = False) -> dict[str, str]:
        jars = _COOKIES.get()
        if jars is None or fresh:
            jars = {} if jars is None else dict(jars)
            _COOKIES.set(jars)
        if fresh or self.name not in jars:
            jars[self.name] = {}
        return jars[self.name]

    async def _post(self, path: str, body: Any, jar: dict[str, str]) -> tuple[int, str]:
        status, text, set_cookies = await post_json(
            self.session, self.url + path, body, cookies=jar
        )
        jar.update(set_cookies)
        return status, text

    async def seed_session(self, body: dict[str, Any]) -> dict[str, Any]:
        """Starts the rollout's session: its cookies live in this task's context from here on."""
        jar = self._jar(fresh=True)
        status, text = await self._post("/seed_session", body, jar)
        return _object(self.url + "/seed_session", status, text)

    async def call_tool(self, name: str, args: dict[str, Any]) -> tuple[int, str]:
        """The tool's answer as it came, error statuses included (the model reads those)."""
        return await self._post("/" + name, args, self._jar())

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        status, text = await self._post("/verify", body, self._jar())
        return _object(self.url + "/verify", status, text)


class HttpAgent:
    """An agent at `url`: `run(row)` is NeMo Gym's `POST /run`, answered by the verify result."""

    def __init__(
        self,
        name: str,
        url: str,
        session: aiohttp.ClientSession,
        *,
        model_server: str | None = None,
        attribution: Attribution | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.session = session
        self.model_server = model_server
        self.attribution = attribution or Attribution()

    async def run(
        self, row: dict[str, Any], params_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        row = merge_params(row, params_override)
        params = row.get("responses_create_params")
        if not isinstance(params, dict):
            raise ValueError("the row has no 'responses_create_params' object")
        with self.attribution.scope() as (key, scope):
            body = {**row, "responses_create_params": tagged(params, key)}
            try:
                status, text, _cookies = await post_json(self.session, self.url + "/run", body)
                result = untagged(_object(self.url + "/run", status, text), params.get("metadata"))
            except RemoteCallError:
                if scope.error is not None:  # the model call that failed says more than the agent
                    raise scope.error from None
                raise
        if "_ng_failure_class" in result:
            raise RolloutFailed(
                str(result["_ng_failure_class"]),
                str(
                    next(
                        (result[k] for k in _FAILURE_TEXT if result.get(k)),
                        "the agent reported a failed rollout",
                    )
                ),
            )
        reward = result.get("reward")
        if not isinstance(reward, (int, float)) or isinstance(reward, bool):
            raise TypeError(f"agent {self.name!r} answered /run without a numeric 'reward'")
        by_server = scope.usage_by_server
        model_calls = scope.model_calls
        if not model_calls:  # its model is not ours, or the agent does not pass metadata on
            by_server = _usage_from_response(result, self.model_server or "?")
            model_calls = _model_turns(result)
        result["_gym"] = {
            "usage": total_usage(by_server),
            "usage_by_server": by_server,
            "model_calls": model_calls,
            "tool_calls": _tool_calls(result),
            "latency_s": round(time.perf_counter() - started, 6),
        }
        return result


def _output(result: dict[str, Any]) -> list[Any]:
    response = result.get("response")
    output = response.get("output") if isinstance(response, dict) else None
    return output if isinstance(output, list) else []


def _tool_calls(result: dict[str, Any]) -> int:
    return sum(
        1 for o in _output(result) if isinstance(o, dict) and o.get("type") == "function_call"
    )


def _model_turns(result: dict[str, Any]) -> int:
    """Model calls as the output shows them: one, plus one after every batch of tool outputs."""
    turns, after_tools = 1 if _output(result) else 0, False
    for item in _output(result):
        is_tool_output = isinstance(item, dict) and item.get("type") == "function_call_output"
        if after_tools and not is_tool_output:
            turns += 1
        after_tools = is_tool_output
    return turns


def _usage_from_response(result: dict[str, Any], server: str) -> dict[str, dict[str, int]]:
    response = result.get("response")
    usage = response.get("usage") if isinstance(response, dict) else None
    return {server: add_usage(empty_usage(), usage)} if usage else {}


def remote_model(
    name: str, config: dict[str, Any], url: str, session: aiohttp.ClientSession, cache: Any = None
) -> ModelServer:
    """A NeMo Gym model server at `url`, called like an endpoint (it sets the model itself)."""
    from gym_run.endpoint.client import OpenAIClient

    model = str(
        config.get("model") or config.get("openai_model") or config.get("model_name") or name
    )
    client = OpenAIClient(
        session,
        base_url=url.rstrip("/") + "/v1",
        api_key="gym-run",
        model=model,
        **call_options(name, config),
    )
    return ModelServer(name, cached(name, client, cache))
