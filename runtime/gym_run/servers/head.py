"""NeMo Gym's head server on aiohttp: the merged config and the instance table, so NeMo Gym's
servers and collector (`ng_collect_rollouts`, `ng_status`) find gym-run's servers and each other.

Endpoints (as NeMo Gym's own head server answers them):
- `GET /global_config_dict_yaml`: a JSON string holding the merged config as YAML;
- `GET /server_instances`: a list of `{process_name, server_type, name, host, port, url, pid, ...}`;
- `GET /`, `/livez`: liveness; `/readyz`, `/healthz`, `/health`: 503 until `mark_ready()`.

Usage (run and serve alike):

    head = HeadServer()
    await head.start("127.0.0.1", 0)          # before the servers: they are told its address
    head.set_config(nemo_global_config(plan_servers, addresses, head.address))
    head.set_instances(instances)             # optional, see `instance_entry`
    head.mark_ready()
    ...
    await head.close()
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gym_run.servers.listen import Connections, fitted_cap, listen
from gym_run.servers.nemo_config import Address, config_yaml, url_of

Middleware = Callable[..., Awaitable[web.StreamResponse]]  # an aiohttp middleware (netguard.guard)


def instance_entry(
    name: str,
    server_type: str,
    implementation: str,
    address: Address,
    *,
    pid: int | None = None,
    dir_path: str | None = None,
    entrypoint: str | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """One row of `/server_instances`, in NeMo Gym's field names (`ServerInstanceDisplayConfig`)."""
    return {
        "process_name": name,
        "config_path": name,
        "server_type": server_type,
        "name": implementation,
        "host": address[0],
        "port": address[1],
        "url": url_of(address),
        "pid": pid,
        "dir_path": dir_path,
        "entrypoint": entrypoint,
        "start_time": started if started is not None else time.time(),
    }


class HeadServer:
    """Serves what it is given; `set_config` may be called again (the next request sees it)."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        instances: list[dict[str, Any]] | None = None,
        *,
        middlewares: tuple[Middleware, ...] = (),
    ) -> None:
        self._yaml_json = json.dumps(config_yaml(config or {}))
        self._instances = list(instances or [])
        self._ready = False
        self._middlewares = middlewares
        self._runner: web.AppRunner | None = None
        self.address: Address = ("127.0.0.1", 0)

    @property
    def url(self) -> str:
        return url_of(self.address)

    def set_config(self, config: Mapping[str, Any]) -> None:
        self._yaml_json = json.dumps(config_yaml(config))

    def set_instances(self, instances: list[dict[str, Any]]) -> None:
        self._instances = list(instances)

    def mark_ready(self) -> None:
        self._ready = True

    def app(self) -> web.Application:
        app = web.Application(middlewares=list(self._middlewares))
        app.router.add_get("/global_config_dict_yaml", self._config)
        app.router.add_get("/server_instances", self._server_instances)
        for path in ("/", "/livez"):
            app.router.add_get(path, self._live)
        for path in ("/readyz", "/healthz", "/health"):
            app.router.add_get(path, self._readiness)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listens (port 0: a free one); answers the URL. OSError if the address is taken."""
        runner = await listen(self.app(), host, port, Connections(fitted_cap(1)))
        self._runner = runner
        self.address = (host, runner.addresses[0][1])
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _config(self, _request: web.Request) -> web.Response:
        return web.Response(text=self._yaml_json, content_type="application/json")

    async def _server_instances(self, _request: web.Request) -> web.Response:
        return web.json_response(self._instances)

    async def _live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readiness(self, _request: web.Request) -> web.Response:
        if not self._ready:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ok"})
