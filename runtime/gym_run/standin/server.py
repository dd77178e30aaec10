"""The built-in stand-in model server: a real aiohttp server speaking the OpenAI Responses API
(and Chat Completions, for NeMo Gym's judges and agents that use it).

Offline runs, tests and benchmarks need an endpoint that behaves like OpenAI's on the wire (same
routes, bodies, error shapes and headers) but answers instantly, for free and deterministically.
`respond` (runtime/gym_run/standin/model.py) is the pure "model"; `build_app` wraps it in HTTP with
auth, validation and injectable faults (runtime/gym_run/standin/faults.py) so client
retry/timeout code is exercised for real.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gym_run.http import error_response
from gym_run.servers.netguard import refuse_remote
from gym_run.standin import chat, stream
from gym_run.standin.faults import (
    MAX_BODY_BYTES,
    FaultInjector,
    Faults,
    bad_request,
    errors_and_ids,
    unauthorized,
)
from gym_run.standin.judging import _judge_answer
from gym_run.standin.model import DEFAULT_LATENCY_MS, DEFAULT_MODEL, input_items, respond
from gym_run.standin.store import DEFAULT_CAPACITY, ResponseStore, not_found, shown
from gym_run.standin.wire import check_features, fresh_ids

__all__ = [
    "Faults",
    "StandIn",
    "_judge_answer",
    "build_app",
    "respond",
    "run_standalone",
    "start_standin",
]

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

    async def admitted(
        request: web.Request, problems: Callable[[Any], tuple[str, str | None] | None]
    ) -> dict[str, Any] | web.StreamResponse:
        """The body, or the answer a real endpoint gives first: a fault, 401, 400, 404."""
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
        if (problem := problems(body)) is not None:
            stats["bad_request"] += 1
            return error_response(400, problem[0], param=problem[1])
        asked = body.get("model")
        if known_models is not None and asked is not None and asked not in known_models:
            stats["model_not_found"] += 1
            message = f"The model `{asked}` does not exist or you do not have access to it."
            return error_response(404, message, param="model", code="model_not_found")
        return body

    def answered(body: dict[str, Any], conversation: list[dict[str, Any]]) -> dict[str, Any]:
        answer = fresh_ids(
            respond({**body, "input": conversation}, always_call=injector.faults.always_call)
        )
        if not body.get("model"):
            answer["model"] = model
        return answer

    async def responses(request: web.Request) -> web.StreamResponse:
        body = await admitted(request, lambda b: bad_request(b) or check_features(b))
        if isinstance(body, web.StreamResponse):
            return body
        conversation = input_items(body)
        if (previous_id := body.get("previous_response_id")) is not None:
            previous = store.get(previous_id)
            if previous is None:
                stats["previous_not_found"] += 1
                message, param, code = not_found(previous_id)
                return error_response(404, message, param=param, code=code)
            conversation = store.conversation(previous) + conversation
        answer = answered(body, conversation)
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

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        body = await admitted(request, chat.check)
        if isinstance(body, web.StreamResponse):
            return body
        asked = chat.as_responses(body)
        answer = answered(asked, asked["input"])
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        stats["ok"] += 1
        stats["chat"] += 1
        return web.json_response(chat.as_chat(answer))

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
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
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
