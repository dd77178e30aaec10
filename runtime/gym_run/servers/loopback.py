"""gym-run's in-process servers on loopback ports, for the NeMo Gym servers of the same plan.

A NeMo Gym agent or resources server reaches other servers over HTTP only. When it uses a model
server gym-run implements (`openai_model`, `stand_in_model`), that model is served here, so its
calls get gym-run's retries, limits, cache, usage and cost like any other; a call tagged with a
rollout (servers/attribution.py) is counted into that rollout. Built-in resources servers are
served too (a NeMo Gym agent may use one). Agents are not: only collectors call agents.

Behind the same guard as `gym-run serve` (servers/netguard.py): a page in the user's browser could
otherwise POST to a loopback model (spending the plan's key) or reach it by a rebound DNS name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gym_compile import jsonsafe
from gym_compile.jsonsafe import BadJSON
from gym_run.errors import ModelCallError
from gym_run.secrets import REDACT
from gym_run.servers.attribution import Attribution
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer
from gym_run.servers.nemo_config import MODEL_ROUTES, Address, model_paths
from gym_run.servers.netguard import error_response, guarded_app

Handler = Callable[[web.Request], Awaitable[web.Response]]


def model_route(model: ModelServer, attribution: Attribution) -> web.Application:
    """`POST /v1/responses` and `/v1/chat/completions` answered through `model`; errors in the
    official shape."""

    def route(call: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = jsonsafe.loads(await request.read())
            except BadJSON as exc:  # 100,000 nested brackets: a 400, never a 500
                return error_response(400, f"request body is not JSON: {exc.reason}")
            if not isinstance(body, dict):
                return error_response(400, "request body must be a JSON object")
            scope = attribution.claim(body)
            try:
                with attribution.bound(scope):
                    answer = await call(body)
            except ModelCallError as exc:
                if scope is not None and scope.error is None:
                    scope.error = exc
                status = exc.status if exc.status and exc.status >= 400 else 502
                return error_response(status, REDACT(exc.message), "model_error")
            if scope is not None:
                scope.count(model.name, answer)
            return web.json_response(answer)

        return handler

    app = guarded_app()
    for path, call in zip(MODEL_ROUTES, (model.responses, model.chat_completions), strict=True):
        for form in model_paths(path):
            app.router.add_post(form, route(call))
    return app


class Loopback:
    """The apps it started; `close()` stops them."""

    def __init__(self) -> None:
        self.addresses: dict[str, Address] = {}
        self._runners: list[web.AppRunner] = []

    async def serve(
        self,
        servers: Mapping[str, Any],
        attribution: Attribution,
        host: str = "127.0.0.1",
    ) -> None:
        """Every model and resources server of `servers` (in-process ones) on a free port."""
        from gym_run.servers.routes import resources_app  # late: routes build on collect

        for name, server in servers.items():
            if isinstance(server, ModelServer):
                app = model_route(server, attribution)
            elif isinstance(server, ResourcesServer):
                app = resources_app(server)
            else:
                continue
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, host, 0).start()
            self.addresses[name] = (host, int(runner.addresses[0][1]))

    async def close(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners = []
