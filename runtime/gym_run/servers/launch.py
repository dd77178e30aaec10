"""A verified plan's servers in (built-in, NeMo Gym processes, `url:`), all of them up and able to
reach one another out, as one `Servers` whose `close()` stops everything that was started.

Order: NeMo Gym processes get their ports first (everyone must know every address before any
NeMo Gym server starts: each reads the whole table once, at start); then the in-process servers
and the stand-ins for remote ones are built; the in-process model and resources servers are put
on loopback ports and the head server is started; then the NeMo Gym processes, all at once, and
gym-run waits until each answers. A plan without NeMo Gym processes starts as before: no head, no
loopback, nothing extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gym_compile.plan_types import NemoGym, Plan, ServerEntry
from gym_run.endpoint.cache import ResponseCache
from gym_run.servers.attribution import Attribution
from gym_run.servers.head import HeadServer, instance_entry
from gym_run.servers.loopback import Loopback
from gym_run.servers.nemo_config import Address, config_yaml, nemo_global_config
from gym_run.servers.nemo_process import (
    DEFAULT_STARTUP_TIMEOUT_S,
    NemoProcesses,
    ProcessSpec,
    addresses_for,
    nemo_python,
)
from gym_run.servers.netguard import guard
from gym_run.servers.registry import Servers, build_servers, server_kind


def url_address(url: str) -> Address:
    """host and port of a `url:` server, as NeMo Gym's config spells an address."""
    parts = urlsplit(url)
    return (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))


def logs_dir_for(output_path: str | Path) -> Path:
    """Server logs beside the rollouts: `results/rollouts.jsonl` -> `results/rollouts.logs/`."""
    path = Path(output_path)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + ".logs")


async def start_servers(
    plan: Plan,
    specs: dict[str, ServerEntry],
    session: aiohttp.ClientSession,
    *,
    log_dir: Path,
    bind: bool = True,
    cache: ResponseCache | None = None,
    cache_stand_in: bool = False,
    environ: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> Servers:
    """`plan` as loaded (its `servers` hold secret references: what the head shows), `specs` the
    same servers with secrets substituted (what NeMo Gym processes are given). On any failure,
    nothing is left running. `host`: where NeMo Gym processes, the head and loopback listen."""
    kinds = {name: server_kind(spec) for name, spec in specs.items()}
    nemo = [name for name, kind in kinds.items() if kind == "nemo"]
    if not nemo:
        return await build_servers(
            specs, session, bind=bind, cache=cache, cache_stand_in=cache_stand_in
        )
    settings: NemoGym = plan.get("nemo_gym") or {}
    python = nemo_python(settings.get("python"), environ)
    addresses = addresses_for(
        dict.fromkeys(nemo, host), {name: specs[name]["config"].get("port") for name in nemo}
    )
    attribution = Attribution()
    servers = await build_servers(
        specs,
        session,
        bind=bind,
        cache=cache,
        cache_stand_in=cache_stand_in,
        addresses=addresses,
        attribution=attribution,
    )
    try:
        loopback = Loopback()
        servers.stoppers.append(loopback.close)
        await loopback.serve(
            {n: servers[n] for n, kind in kinds.items() if kind == "builtin"}, attribution, host
        )
        head = HeadServer(middlewares=(guard(None),))  # as serve's: no page reads the table
        servers.stoppers.append(head.close)
        await head.start(host, 0)
        table = {
            **loopback.addresses,
            **addresses,
            **{n: url_address(specs[n]["url"]) for n, kind in kinds.items() if kind == "url"},
        }
        # processes get their own configs with secrets; the head shows references masked
        given = {n: specs[n] if kinds[n] == "nemo" else plan["servers"][n] for n in specs}
        shared = settings.get("globals") or {}
        head.set_config(nemo_global_config(plan["servers"], table, head.address, extra=shared))
        processes = NemoProcesses(python, log_dir)
        servers.stoppers.append(processes.stop)
        to_start = [_process_spec(name, specs[name], addresses[name]) for name in nemo]
        processes.start(
            to_start,
            config_yaml(nemo_global_config(given, table, head.address, extra=shared)),
            environ,
        )
        head.set_instances(
            [
                instance_entry(
                    s.name,
                    s.server_type,
                    s.implementation,
                    s.address,
                    pid=processes.pid(s.name),
                    dir_path=str(s.dir),
                    entrypoint=s.entrypoint,
                )
                for s in to_start
            ]
        )
        timeout = settings.get("startup_timeout_s") or DEFAULT_STARTUP_TIMEOUT_S
        await processes.wait_ready(session, float(timeout))
        head.mark_ready()
        processes.watch(servers.server_died)
    except BaseException:
        await servers.close()
        raise
    servers.head = head
    servers.processes = processes
    return servers


def _process_spec(name: str, spec: ServerEntry, address: Address) -> ProcessSpec:
    source: Mapping[str, Any] = spec.get("source") or {}
    return ProcessSpec(
        name=name,
        server_type=spec["type"],
        implementation=spec["implementation"],
        dir=Path(source.get("dir") or "."),
        entrypoint=str(source.get("entrypoint") or spec["config"].get("entrypoint") or "app.py"),
        address=address,
    )
