"""A verified plan in, every server of it listening over HTTP out (NeMo Gym's protocol between servers)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gym_compile.plan_types import NemoGym, Plan, RolloutRecord, ServerEntry
from gym_run.endpoint.cache import open_cache
from gym_run.endpoint.client import make_session
from gym_run.endpoint.pricing import CostMeter, PriceTable, price_record, server_models
from gym_run.errors import PlanError, ServerStartError
from gym_run.secrets import server_specs
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer
from gym_run.servers.head import HeadServer, instance_entry
from gym_run.servers.launch import _process_spec, url_address
from gym_run.servers.listen import Connections, fitted_cap, listen
from gym_run.servers.nemo_config import Address, config_yaml, nemo_global_config, url_of
from gym_run.servers.nemo_process import (
    DEFAULT_STARTUP_TIMEOUT_S,
    NemoProcesses,
    ServerDied,
    addresses_for,
    nemo_python,
)
from gym_run.servers.netguard import (
    TOKEN_ENV,
    RemoteBindRefused,
    bind_hosts,
    check_binding,
    guard,
    is_loopback,
    serve_token,
)
from gym_run.servers.registry import Servers, build_servers, server_kind
from gym_run.servers.routes import RunSettings, agent_app, model_app, resources_app

#: Where NeMo Gym's tools look for the head server when not told otherwise (its default).
DEFAULT_HEAD_PORT = 11000


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
    """The address table, the head server's URL, and the one call that stops everything started.

    `died` is set (with the line in `death`) when a NeMo Gym server of the plan exits."""

    def __init__(
        self, table: list[ServedServer], head_url: str, close: Callable[[], Awaitable[None]]
    ) -> None:
        self.table = table
        self.head_url = head_url
        self._close = close
        self.died = asyncio.Event()
        self.death = ""

    def server_died(self, line: str) -> None:
        self.death = self.death or line
        self.died.set()

    def url(self, name: str) -> str:
        return next(s.url for s in self.table if s.name == name)

    async def close(self) -> None:
        await self._close()


def _pricing(plan: Plan) -> Callable[[RolloutRecord], None]:
    """Prices a served record as the collector prices a collected one (same `_gym` cost keys)."""
    job: Mapping[str, Any] = plan.get("job") or {}
    try:
        prices = PriceTable.load(job.get("prices"))
    except ValueError as exc:
        raise PlanError(f"job.prices: {exc}; fix prices: in the config and recompile") from None
    meter = CostMeter(prices, server_models(plan["servers"]))
    return lambda record: price_record(meter, record)


def _app_for(
    name: str, server: Any, plan: Plan, settings: RunSettings, token: str | None
) -> web.Application:
    if isinstance(server, ModelServer):
        return model_app(server, token)
    if isinstance(server, ResourcesServer):
        return resources_app(server, token)
    if isinstance(server, SimpleAgent):
        timeout = plan["servers"][name]["config"].get("rollout_timeout_s")
        return agent_app(server, RunSettings(settings.plan_hash, timeout, settings.finish), token)
    raise TypeError(f"no HTTP app for {type(server).__name__}")


async def _listen(
    app: web.Application, where: str, port: int, what: str, cap: int
) -> web.AppRunner:
    """Listening with servers/listen.py's bounds: a connection cap, header and body timeouts."""
    try:
        return await listen(app, where, port, Connections(cap))
    except OSError as exc:
        raise ServerStartError(
            f"{what} cannot listen on {where}:{port}: {exc.strerror or exc}"
        ) from None


async def start_serving(
    plan: Plan,
    *,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
    allow_remote: bool = False,
    token: str | None = None,
    head_port: int = 0,
    log_dir: Path | None = None,
    use_cache: bool = True,
) -> Served:
    """Starts NeMo Gym's head server on `head_port` (0: a free one) and every server of the plan on
    its host/port (port null/0: a free one); returns the table. The head answers NeMo Gym's config
    with every server's address, so NeMo Gym's collector needs nothing but the head's address.

    NeMo Gym's own servers of the plan (`run: nemo`) are started as processes (logs in `log_dir`)
    and told every address; `url:` servers are only named. Beyond loopback only with
    allow_remote, and then only with a token every request must carry. `use_cache=False` leaves
    the plan's response cache alone (neither read nor written), as `gym-run PLAN --no-cache` does.
    """
    hosts = bind_hosts(plan, host)
    check_binding(hosts, allow_remote=allow_remote)
    if token is None and any(not is_loopback(h) for h in hosts.values()):
        raise RemoteBindRefused("listening beyond this machine needs a bearer token")
    specs = server_specs(plan, environ)
    settings = RunSettings(plan["content_hash"], finish=_pricing(plan))
    job = plan.get("job")
    cache_spec = job.get("response_cache") if job and use_cache else None
    head = HeadServer(middlewares=(guard(token),))
    session = make_session(100)
    runners: list[web.AppRunner] = []
    servers: Servers | None = None
    cache = None

    async def close() -> None:
        await head.close()
        for runner in reversed(runners):
            await runner.cleanup()
        if servers is not None:
            await servers.close()
        await session.close()
        if cache is not None:
            cache.close()

    table: list[ServedServer] = []
    try:
        head_host = host or "127.0.0.1"
        try:
            await head.start(head_host, head_port)
        except OSError as exc:
            raise ServerStartError(
                f"the head server cannot listen on {head_host}:{head_port}: "
                f"{exc.strerror or exc} (gym-run serve --head-port N; NeMo Gym's tools then "
                "need +head_server.port=N)"
            ) from None
        cache = open_cache(cache_spec["path"], _stderr) if cache_spec else None
        kinds = {name: server_kind(spec) for name, spec in specs.items()}
        nemo = [name for name in specs if kinds[name] == "nemo"]
        addresses: dict[str, Address] = addresses_for(
            {name: hosts[name] for name in nemo},
            {name: specs[name]["config"].get("port") for name in nemo},
        )
        addresses.update(
            {n: url_address(specs[n]["url"]) for n, kind in kinds.items() if kind == "url"}
        )
        servers = await build_servers(
            specs,
            session,
            bind=False,
            cache=cache,
            cache_stand_in=bool(cache_spec and cache_spec["stand_in"]),
            addresses=addresses,
        )
        cap = fitted_cap(1 + sum(kind == "builtin" for kind in kinds.values()))
        for name, spec in specs.items():
            if kinds[name] == "builtin":
                where, port = hosts[name], spec["config"].get("port") or 0
                app = _app_for(name, servers[name], plan, settings, token)
                runners.append(await _listen(app, where, port, f"server {name!r}", cap))
                addresses[name] = (where, runners[-1].addresses[0][1])
            table.append(
                ServedServer(name, spec["type"], spec["implementation"], url_of(addresses[name]))
            )
        head.set_config(nemo_global_config(plan["servers"], addresses, head.address))
        pids = await _start_nemo(
            plan, specs, kinds, addresses, head, servers, session, log_dir, environ
        )
        head.set_instances(
            [
                instance_entry(
                    s.name, s.type, s.implementation, addresses[s.name], pid=pids.get(s.name)
                )
                for s in table
            ]
        )
        head.mark_ready()
    except BaseException:
        await close()
        raise
    served = Served(table, head.url, close)
    assert servers is not None
    servers.on_death = served.server_died
    for line in servers.died:  # one died between its start and now
        served.server_died(line)
    return served


async def _start_nemo(
    plan: Plan,
    specs: dict[str, ServerEntry],
    kinds: Mapping[str, str],
    addresses: Mapping[str, Address],
    head: HeadServer,
    servers: Servers,
    session: aiohttp.ClientSession,
    log_dir: Path | None,
    environ: Mapping[str, str] | None,
) -> dict[str, int]:
    """The plan's NeMo Gym processes up and answering (stopped with `servers`); their pids."""
    nemo = [name for name, kind in kinds.items() if kind == "nemo"]
    if not nemo:
        return {}
    settings: NemoGym = plan.get("nemo_gym") or {}
    python = nemo_python(settings.get("python"), environ)
    processes = NemoProcesses(python, log_dir or Path("gym-run.logs"))
    servers.stoppers.append(processes.stop)
    # processes get their own configs with secrets; the head shows references masked
    given = {n: specs[n] if kinds[n] == "nemo" else plan["servers"][n] for n in specs}
    to_start = [_process_spec(name, specs[name], addresses[name]) for name in nemo]
    processes.start(
        to_start, config_yaml(nemo_global_config(given, addresses, head.address)), environ
    )
    timeout = settings.get("startup_timeout_s") or DEFAULT_STARTUP_TIMEOUT_S
    await processes.wait_ready(session, float(timeout))
    processes.watch(servers.server_died)
    return {name: processes.pid(name) for name in nemo}


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
    plan: Plan,
    *,
    echo: Callable[[str], None] = print,
    host: str | None = None,
    allow_remote: bool = False,
    require_token: bool = False,
    head_port: int = DEFAULT_HEAD_PORT,
    log_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    use_cache: bool = True,
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
        plan,
        environ=environ,
        host=host,
        allow_remote=allow_remote,
        token=token,
        head_port=head_port,
        log_dir=log_dir,
        use_cache=use_cache,
    )
    try:
        head = ServedServer("head_server", "head_server", "nemo_gym", served.head_url)
        echo(format_table([*served.table, head]))
        echo(collector_hint(plan, served))
        echo("serving; press Ctrl-C to stop")
        await served.died.wait()
        raise ServerDied(f"{served.death}; stopped serving")
    finally:
        await served.close()


def collector_hint(plan: Plan, served: Served) -> str:
    """The NeMo Gym command that collects from these servers: only the head's address is needed."""
    host, _, port = served.head_url.removeprefix("http://").rpartition(":")
    agents = [s.name for s in served.table if s.type == "responses_api_agents"]
    job: Mapping[str, Any] = plan.get("job") or {}
    agent = job.get("agent") or (agents[0] if agents else "AGENT")
    data = (job.get("input") or {}).get("path") or "IN.jsonl"
    return (
        f"NeMo Gym's collector: ng_collect_rollouts +head_server.host={host} "
        f"+head_server.port={port} +agent_name={agent} +input_jsonl_fpath={data} "
        "+output_jsonl_fpath=OUT.jsonl"
    )
