"""The built-in stand-in model server: a real aiohttp server speaking the OpenAI Responses API.

Offline runs, tests and benchmarks need an endpoint that behaves like OpenAI's on the wire (same
routes, bodies, error shapes and headers) but answers instantly, for free and deterministically.
`respond` is the pure "model"; `build_app` wraps it in HTTP with auth, validation and injectable
faults (runtime/gym_run/standin/faults.py) so client retry/timeout code is exercised for real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import signal
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gym_compile.canonical import canonical_json
from gym_run.defaults import default_of
from gym_run.http import error_response
from gym_run.servers.netguard import refuse_remote
from gym_run.standin import stream, structured
from gym_run.standin.args import ArgGen
from gym_run.standin.faults import (
    MAX_BODY_BYTES,
    FaultInjector,
    Faults,
    bad_request,
    errors_and_ids,
    unauthorized,
)
from gym_run.standin.judging import _judge_answer
from gym_run.standin.store import DEFAULT_CAPACITY, ResponseStore, not_found, shown
from gym_run.standin.wire import check_features, fresh_ids

# the stand_in_model schema's defaults: what an app built without a config answers as
DEFAULT_MODEL: str = default_of("responses_api_models", "stand_in_model", "model")
DEFAULT_LATENCY_MS: float = default_of("responses_api_models", "stand_in_model", "latency_ms")

__all__ = [
    "Faults",
    "StandIn",
    "_judge_answer",
    "build_app",
    "respond",
    "run_standalone",
    "start_standin",
]

_FILLER = {"tn", "tonight", "today", "tomorrow", "now", "right", "please", "rn"}
_PREFERRED_KEYS = ("description", "answer", "result", "summary", "text", "message", "output")


# ---------------------------------------------------------------- the "model"


def _text_of(content: Any) -> str:
    """Text of a message content: a plain string or a list of input_text/output_text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`input` as a list of items: a bare string is one user message, as in the real API."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [item for item in raw or [] if isinstance(item, dict)]


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user" and item.get("type", "message") == "message":
            return _text_of(item.get("content"))
    return ""


def _hint_from_text(text: str) -> str:
    """A plausible string argument: the place after " in " or else the last word.

    "what's it like in sf?" -> "sf"; "how's the weather in new york?" -> "new york". Crude, but it
    makes demo transcripts read like a model answered.
    """
    lowered = f" {text.lower()}"
    at = lowered.find(" in ")
    if at >= 0:
        clause = re.split(r"[,.;:!?\n]", text[at + 3 :], maxsplit=1)[0].split()[:3]
        while clause and clause[-1].lower().strip("'\"") in _FILLER:
            clause.pop()
        words = [w.strip("'\"()[]{}") for w in clause]
    else:
        words = text.split()[-1:]
    return " ".join(w for w in (w.strip(".,;:!?'\"()[]{}") for w in words) if w)


def _function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    return [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]


def _normalised_tools(body: dict[str, Any]) -> list[Any]:
    """Function tools with the keys the Response schema requires (strict/parameters may be null)."""
    tools = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tool = {**tool, "strict": tool.get("strict"), "parameters": tool.get("parameters")}
        tools.append(tool)
    return tools


def _tool_output_text(output: Any) -> str:
    """A tool's output as prose: a JSON object's descriptive string field, else the raw text."""
    text = _text_of(output)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(parsed, dict):
        strings = {k: v for k, v in parsed.items() if isinstance(v, str) and v}
        for wanted in _PREFERRED_KEYS:
            for key, value in strings.items():
                if wanted in key.lower():
                    return value
    return text


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _input_text(body: dict[str, Any], items: list[dict[str, Any]]) -> str:
    parts = [_text_of(body.get("instructions"))]
    for item in items:
        parts.append(_text_of(item.get("content")))
        if item.get("type") == "function_call":
            parts += [str(item.get("name", "")), str(item.get("arguments", ""))]
        if item.get("type") == "function_call_output":
            parts.append(_text_of(item.get("output")))
    return "".join(parts)


def respond(body: dict[str, Any], *, always_call: bool = False) -> dict[str, Any]:
    """A request body -> a Response object. Pure and deterministic: ids hash the request (the
    server gives each answer fresh ids: runtime/gym_run/standin/server.py `fresh_ids`).

    always_call: answer a function call even after tool outputs (a model that never stops).
    """
    try:
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
    except UnicodeEncodeError:  # lone surrogates: still canonical, just ASCII-escaped
        ascii_json = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(ascii_json.encode()).hexdigest()

    def make_id(prefix: str) -> str:
        return prefix + hashlib.sha256(f"{digest}:{prefix}".encode()).hexdigest()[:24]

    items = _items(body)
    user_text = _last_user_text(items)
    tools = _function_tools(body)
    choice = body.get("tool_choice")
    answered = not always_call and any(item.get("type") == "function_call_output" for item in items)
    output: dict[str, Any]
    if tools and not answered and choice != "none":
        forced = (
            choice.get("name")
            if isinstance(choice, dict) and choice.get("type") == "function"
            else None
        )
        tool = next((t for t in tools if forced and t.get("name") == forced), tools[0])
        params = tool.get("parameters")
        params = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        gen = ArgGen(params, _hint_from_text(user_text), tool.get("strict") is True)
        arguments = json.dumps(gen.value(params), ensure_ascii=False, separators=(",", ":"))
        output = {
            "type": "function_call",
            "id": make_id("fc_"),
            "call_id": make_id("call_"),
            "name": str(tool.get("name", "")),
            "arguments": arguments,
            "status": "completed",
        }
        out_text = output["name"] + arguments
    else:
        calls = [i for i in items if i.get("type") == "function_call_output"]
        outputs = [o.strip() for o in (_tool_output_text(i.get("output")) for i in calls)]
        text = _judge_answer(user_text)
        if text is None:
            text = " ".join(o for o in outputs if o) or f"You said: {user_text}".rstrip()
        text = structured.structured_text(structured.text_format(body), text) or text
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        output = {
            "type": "message",
            "id": make_id("msg_"),
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
        out_text = text
    in_tokens, out_tokens = _tokens(_input_text(body, items)), _tokens(out_text)
    now = int(time.time())

    def given(key: str, default: Any) -> Any:
        return default if body.get(key) is None else body[key]

    usage = {
        "input_tokens": in_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": in_tokens + out_tokens,
    }
    return {
        "id": make_id("resp_"),
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body.get("model") or DEFAULT_MODEL,
        "output": [output],
        "parallel_tool_calls": given("parallel_tool_calls", True),
        "tools": _normalised_tools(body),
        "tool_choice": given("tool_choice", "auto"),
        "metadata": given("metadata", {}),
        "temperature": given("temperature", 1.0),
        "top_p": given("top_p", 1.0),
        "text": structured.echoed(body),
        "previous_response_id": body.get("previous_response_id"),
        "usage": usage,
    }


# ---------------------------------------------------------------- the HTTP server


def _reject_constant(name: str) -> Any:
    """NaN/Infinity are not JSON; accepting them would make us emit invalid JSON back."""
    raise ValueError(f"{name} is not valid JSON")


def build_app(
    *,
    model: str = DEFAULT_MODEL,
    latency_ms: float = DEFAULT_LATENCY_MS,
    faults: Faults | None = None,
    api_key: str | None = None,
    known_models: list[str] | None = None,
    store_size: int = DEFAULT_CAPACITY,
) -> web.Application:
    """The stand-in as an aiohttp app; app["stats"] counts outcomes so tests can assert on them.

    Answers keep the last `store_size` responses for previous_response_id and retrieval."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_and_ids])
    stats: Counter[str] = Counter()
    store = ResponseStore(store_size)
    with warnings.catch_warnings():  # the public contract is app["stats"], a plain string key
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["stats"] = stats
        app["store"] = store
    injector = FaultInjector(faults or Faults(), stats)
    created = int(time.time())

    async def responses(request: web.Request) -> web.StreamResponse:
        stats["requests"] += 1
        if (faulty := await injector.apply(request)) is not None:
            return faulty
        if (denied := unauthorized(request, api_key)) is not None:
            return denied
        try:
            body = json.loads(await request.read(), parse_constant=_reject_constant)
        except (ValueError, RecursionError):  # 100,000 nested brackets, a 5,000-digit number
            stats["bad_request"] += 1
            message = "We could not parse the JSON body of your request: it must be a JSON object."
            return error_response(400, message, param="body")
        if (problem := bad_request(body) or check_features(body)) is not None:
            stats["bad_request"] += 1
            return error_response(400, problem[0], param=problem[1])
        asked = body.get("model")
        if known_models is not None and asked is not None and asked not in known_models:
            stats["model_not_found"] += 1
            message = f"The model `{asked}` does not exist or you do not have access to it."
            return error_response(404, message, param="model", code="model_not_found")
        conversation = _items(body)
        if (previous_id := body.get("previous_response_id")) is not None:
            previous = store.get(previous_id)
            if previous is None:
                stats["previous_not_found"] += 1
                message, param, code = not_found(previous_id)
                return error_response(404, message, param=param, code=code)
            conversation = store.conversation(previous) + conversation
        answer = fresh_ids(
            respond({**body, "input": conversation}, always_call=injector.faults.always_call)
        )
        if not asked:
            answer["model"] = model
        if body.get("store") is not False:
            store.put(answer, conversation)
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        stats["ok"] += 1
        drip = injector.shape(answer)  # the answer faults: empty, padded, dripped
        if body.get("stream") is True:
            stats["streamed"] += 1
            return await stream.send(request, answer)
        if drip:
            return await injector.drip(request, answer)
        return web.json_response(answer)

    async def stored(request: web.Request) -> web.StreamResponse:
        """GET (retrieve) and DELETE /v1/responses/{id}."""
        if (denied := unauthorized(request, api_key)) is not None:
            return denied
        response_id = request.match_info["response_id"]
        if request.method == "DELETE" and store.delete(response_id):
            return web.json_response({"id": response_id, "object": "response", "deleted": True})
        found = store.get(response_id) if request.method == "GET" else None
        if found is None:
            message = f"No response found with id '{shown(response_id)}'."
            return error_response(404, message, param="response_id")
        return web.json_response(found.response)

    async def models(request: web.Request) -> web.StreamResponse:
        if (denied := unauthorized(request, api_key)) is not None:
            return denied
        names = known_models if known_models is not None else [model]
        data = [
            {"id": n, "object": "model", "created": created, "owned_by": "gym-compile"}
            for n in names
        ]
        return web.json_response({"object": "list", "data": data})

    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/responses", responses)
        app.router.add_get(f"{prefix}/responses/{{response_id}}", stored)
        app.router.add_delete(f"{prefix}/responses/{{response_id}}", stored)
        app.router.add_get(f"{prefix}/models", models)
    return app


@dataclass
class StandIn:
    """A running stand-in; `url` is the base_url to give an OpenAI client."""

    url: str
    port: int
    app: web.Application
    runner: web.AppRunner

    async def close(self) -> None:
        """Stops listening and finishes in-flight requests (aiohttp's graceful shutdown)."""
        await self.runner.cleanup()


async def start_standin(
    host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False, **build_app_kwargs: Any
) -> StandIn:
    """Serves build_app(**build_app_kwargs) in the running loop; port 0 picks a free port.

    Loopback only unless allow_remote (gym-run stand-in with --api-key: the key is the token).
    """
    if not allow_remote or not build_app_kwargs.get("api_key"):
        refuse_remote(host, "the stand-in without --api-key")
    app = build_app(**build_app_kwargs)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    return StandIn(url=f"http://{shown}:{bound}/v1", port=bound, app=app, runner=runner)


def run_standalone(host: str, port: int, **build_app_kwargs: Any) -> None:
    """Blocking: serves until Ctrl-C or SIGTERM, then returns cleanly (no traceback).

    OSError (port taken, bad host) propagates so the caller (gym-run stand-in) words it.
    """

    async def serve() -> None:
        standin = await start_standin(host, port, allow_remote=True, **build_app_kwargs)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                pass
        print(f"stand-in listening on {standin.url}", flush=True)
        try:
            await stop.wait()
        finally:
            await standin.close()
            # what a benchmark needs to count, from the endpoint's side of the wire
            print(f"stand-in served: {json.dumps(dict(standin.app['stats']))}", flush=True)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
