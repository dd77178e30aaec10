"""A verified plan in, every server of it listening over HTTP out (NeMo Gym's protocol between servers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gym_run.collect.record import ok_record
from gym_run.endpoint.client import make_session
from gym_run.errors import ModelCallError, ServerStartError
from gym_run.http import error_response
from gym_run.secrets import REDACT, server_specs
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer
from gym_run.servers.netguard import (
    MAX_REQUEST_BYTES,
    TOKEN_ENV,
    RemoteBindRefused,
    bind_hosts,
    check_binding,
    guard,
    is_loopback,
    serve_token,
)
from gym_run.servers.registry import Servers, build_servers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServedServer:
    name: str
    type: str
    implementation: str
    url: str

    @property
    def base_url(self) -> str:
        """What a client is given: a model server's OpenAI base URL ends in /v1 (the SDK appends
        /responses); the others are NeMo Gym servers addressed at their root."""
        return f"{self.url}/v1" if self.type == "responses_api_models" else self.url


class Served:
    """The address table plus the one call that stops everything that was started."""

    def __init__(self, table: list[ServedServer], close: Callable[[], Awaitable[None]]) -> None:
        self.table = table
        self._close = close

    def url(self, name: str) -> str:
        return next(s.url for s in self.table if s.name == name)

    async def close(self) -> None:
        await self._close()


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        raise _Reject(
            error_response(413, f"request body too large: at most {MAX_REQUEST_BYTES} bytes")
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Reject(error_response(400, f"request body is not JSON: {exc}")) from None
    if not isinstance(body, dict):
        raise _Reject(error_response(400, "request body must be a JSON object"))
    return body


class _Reject(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__("rejected")
        self.response = response


def _endpoint(
    fn: Callable[[dict[str, Any], web.Request], Awaitable[web.StreamResponse]],
) -> Handler:
    """Parses the body and turns failures into official error bodies instead of HTML 500 pages."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(await _json_object(request), request)
        except _Reject as reject:
            return reject.response
        except ModelCallError as exc:
            status = exc.status if exc.status and exc.status >= 400 else 502
            return error_response(status, REDACT(exc.message), "model_error")
        except Exception as exc:  # masked: an exception may quote what an endpoint echoed
            return error_response(500, REDACT(f"{type(exc).__name__}: {exc}"), "server_error")

    return handler


def _app(token: str | None) -> web.Application:
    return web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[guard(token)])


def model_app(model: ModelServer, token: str | None = None) -> web.Application:
    async def responses(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await model.responses(body))

    app = _app(token)
    app.router.add_post("/v1/responses", _endpoint(responses))
    return app


def resources_app(resources: ResourcesServer, token: str | None = None) -> web.Application:
    async def seed_session(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await resources.seed_session(body))

    async def verify(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await resources.verify(body))

    async def tool(body: dict[str, Any], request: web.Request) -> web.Response:
        status, text = await resources.call_tool(request.match_info["tool"], body)
        return web.Response(status=status, text=text, content_type="application/json")

    app = _app(token)
    app.router.add_post("/seed_session", _endpoint(seed_session))
    app.router.add_post("/verify", _endpoint(verify))
    app.router.add_post("/{tool}", _endpoint(tool))
    return app


def agent_app(agent: SimpleAgent, plan_hash: str, token: str | None = None) -> web.Application:
    async def run(body: dict[str, Any], _request: web.Request) -> web.Response:
        task = body.get("_ng_task_index", 0)
        rollout = body.get("_ng_rollout_index", 0)
        row = {
            k: v
            for k, v in body.items()
            if k not in ("_ng_task_index", "_ng_rollout_index", "_gym")
        }
        if not isinstance(row.get("responses_create_params"), dict):
            return error_response(400, "an input row needs a 'responses_create_params' object")
        result = await agent.run(row)
        return web.json_response(ok_record(result, plan_hash=plan_hash, task=task, rollout=rollout))

    async def responses(body: dict[str, Any], _request: web.Request) -> web.Response:
        response, _stats = await agent.responses(body)
        return web.json_response(response)

    app = _app(token)
    app.router.add_post("/run", _endpoint(run))
    app.router.add_post("/v1/responses", _endpoint(responses))
    return app


def _app_for(server: Any, plan_hash: str, token: str | None) -> web.Application:
    if isinstance(server, ModelServer):
        return model_app(server, token)
    if isinstance(server, ResourcesServer):
        return resources_app(server, token)
    if isinstance(server, SimpleAgent):
        return agent_app(server, plan_hash, token)
    raise TypeError(f"no HTTP app for {type(server).__name__}")


async def start_serving(
    plan: dict[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
    allow_remote: bool = False,
    token: str | None = None,
) -> Served:
    """Starts every server of the plan on its host/port (port null/0: a free one); returns the table.

    Beyond loopback only with allow_remote, and then only with a token every request must carry.
    """
    hosts = bind_hosts(plan, host)
    check_binding(hosts, allow_remote=allow_remote)
    if token is None and any(not is_loopback(h) for h in hosts.values()):
        raise RemoteBindRefused("listening beyond this machine needs a bearer token")
    specs = server_specs(plan, environ)
    session = make_session(100)
    runners: list[web.AppRunner] = []
    servers: Servers | None = None

    async def close() -> None:
        for runner in reversed(runners):
            await runner.cleanup()
        if servers is not None:
            await servers.close()
        await session.close()

    table: list[ServedServer] = []
    try:
        servers = await build_servers(specs, session, bind=False)
        for name, spec in specs.items():
            runner = web.AppRunner(
                _app_for(servers[name], plan["content_hash"], token), access_log=None
            )
            await runner.setup()
            runners.append(runner)
            where, port = hosts[name], spec["config"].get("port") or 0
            try:
                await web.TCPSite(runner, where, port).start()
            except OSError as exc:
                raise ServerStartError(
                    f"server {name!r} cannot listen on {where}:{port}: {exc.strerror or exc}"
                ) from None
            port = runner.addresses[0][1]
            shown = f"[{where}]" if ":" in where else where
            table.append(
                ServedServer(name, spec["type"], spec["implementation"], f"http://{shown}:{port}")
            )
    except BaseException:
        await close()
        raise
    return Served(table, close)


def format_table(table: list[ServedServer]) -> str:
    """One row per server with the URL to give a client (base_url for model servers)."""
    rows = [("NAME", "TYPE", "IMPLEMENTATION", "URL")] + [
        (s.name, s.type, s.implementation, s.base_url) for s in table
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


async def serve_forever(
    plan: dict[str, Any],
    *,
    echo: Callable[[str], None] = print,
    host: str | None = None,
    allow_remote: bool = False,
    require_token: bool = False,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Until cancelled (Ctrl-C): asyncio.run cancels this task and the finally stops the servers.

    With allow_remote or require_token every request needs the bearer token: GYM_SERVE_TOKEN, or
    one generated now and printed this once (it is never written anywhere).
    """
    check_binding(bind_hosts(plan, host), allow_remote=allow_remote)
    token = None
    if allow_remote or require_token:
        token, generated = serve_token(environ)
        echo(
            f"bearer token (send 'Authorization: Bearer <token>' with every request): {token}"
            if generated
            else f"bearer token: the value of {TOKEN_ENV}"
        )
    served = await start_serving(
        plan, environ=environ, host=host, allow_remote=allow_remote, token=token
    )
    try:
        echo(format_table(served.table))
        echo("serving; press Ctrl-C to stop")
        await asyncio.Event().wait()
    finally:
        await served.close()
