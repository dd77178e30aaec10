"""Plan servers (secrets resolved) in, live server objects out, built in dependency order.

A plan's server is built in (run in-process here), NeMo Gym's own process (`run: nemo`, started by
servers/launch.py at an address given here) or external (`run: url`). The last two become objects
with the built-in ones' methods that speak NeMo Gym's HTTP protocol (servers/external.py), so a
built-in agent can use a remote resources server and the collector drives any agent alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from gym_compile.plan_types import ServerEntry
from gym_run.defaults import server_defaults
from gym_run.endpoint.cache import ResponseCache
from gym_run.errors import PlanError, ServerStartError
from gym_run.servers.attribution import Attribution
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.cpu_bound import CpuBound
from gym_run.servers.builtin.judge import EquivalenceLLMJudge
from gym_run.servers.builtin.models import ModelServer, openai_model, stand_in_model
from gym_run.servers.builtin.resources import ResourcesServer, SimpleWeather
from gym_run.servers.builtin.verifiers import AnswerMatch
from gym_run.servers.external import HttpAgent, RemoteResources, remote_model
from gym_run.servers.nemo_config import Address, url_of

# Models first, then resources (a judge needs its model), then agents (need both).
BUILD_ORDER = ("responses_api_models", "resources_servers", "responses_api_agents")


@dataclass
class BuildContext:
    """What a factory may use: the shared HTTP session and the servers built before it."""

    session: aiohttp.ClientSession
    built: dict[str, Any] = field(default_factory=dict)
    bind: bool = True
    cache: ResponseCache | None = None  # the job's response cache, for model servers
    cache_stand_in: bool = False
    addresses: Mapping[str, Address] = field(default_factory=dict)  # of NeMo Gym processes
    attribution: Attribution | None = None

    def ref(self, owner: str, ref: dict[str, Any], kind: type) -> Any:
        server = self.built.get(ref.get("name", ""))
        if not isinstance(server, kind):
            raise PlanError(
                f"server {owner!r} refers to {ref.get('name')!r}, which is not a {ref.get('type')} server"
            )
        return server


Factory = Callable[[str, dict[str, Any], BuildContext], Awaitable[Any]]
Kind = Literal["builtin", "nemo", "url"]


def server_kind(spec: ServerEntry) -> Kind:
    """How a plan's server runs: in-process (the default), NeMo Gym's process, or by URL."""
    run = spec.get("run") or "builtin"
    if run == "nemo" or run == "url" or run == "builtin":
        return run
    raise PlanError(f"unknown server run mode {run!r}; recompile with this gym-compile")


def _remote(name: str, spec: ServerEntry, ctx: BuildContext) -> Any:
    """The object standing for a server gym-run does not run in-process."""
    if server_kind(spec) == "url":
        url = str(spec["url"])
    elif name in ctx.addresses:
        url = url_of(ctx.addresses[name])
    else:
        raise PlanError(f"server {name!r} runs as a NeMo Gym process but has no address")
    config, kind = spec["config"], spec["type"]
    if kind == "responses_api_models":
        return remote_model(name, config, url, ctx.session, ctx.cache)
    if kind == "resources_servers":
        return RemoteResources(name, config, url, ctx.session)
    model = config.get("model_server")
    return HttpAgent(
        name,
        url,
        ctx.session,
        model_server=model.get("name") if isinstance(model, dict) else None,
        attribution=ctx.attribution,
    )


async def _openai_model(name: str, config: dict[str, Any], ctx: BuildContext) -> ModelServer:
    return openai_model(name, config, ctx.session, ctx.cache)


async def _stand_in_model(name: str, config: dict[str, Any], ctx: BuildContext) -> ModelServer:
    return await stand_in_model(
        name, config, ctx.session, bind=ctx.bind, cache=ctx.cache if ctx.cache_stand_in else None
    )


async def _simple_weather(name: str, config: dict[str, Any], ctx: BuildContext) -> ResourcesServer:
    return SimpleWeather(name, config)


async def _cpu_bound(name: str, config: dict[str, Any], ctx: BuildContext) -> ResourcesServer:
    return CpuBound(name, config)


async def _equivalence_llm_judge(
    name: str, config: dict[str, Any], ctx: BuildContext
) -> ResourcesServer:
    return EquivalenceLLMJudge(
        name, config, ctx.ref(name, config["judge_model_server"], ModelServer)
    )


async def _answer_match(name: str, config: dict[str, Any], ctx: BuildContext) -> ResourcesServer:
    return AnswerMatch(name, config)


async def _simple_agent(name: str, config: dict[str, Any], ctx: BuildContext) -> SimpleAgent:
    model = ctx.ref(name, config["model_server"], ModelServer)
    resources = ctx.ref(name, config["resources_server"], ResourcesServer)
    max_steps = config.get(
        "max_steps", server_defaults("responses_api_agents", "simple_agent")["max_steps"]
    )
    return SimpleAgent(name, model, resources, max_steps)


FACTORIES: dict[tuple[str, str], Factory] = {
    ("responses_api_models", "openai_model"): _openai_model,
    ("responses_api_models", "stand_in_model"): _stand_in_model,
    ("resources_servers", "example_simple_weather"): _simple_weather,
    ("resources_servers", "example_single_tool_call"): _simple_weather,  # NeMo Gym's new name
    ("resources_servers", "example_cpu_bound"): _cpu_bound,
    ("resources_servers", "equivalence_llm_judge"): _equivalence_llm_judge,
    ("resources_servers", "answer_match"): _answer_match,
    ("responses_api_agents", "simple_agent"): _simple_agent,
}


class Servers:
    """The live servers of one plan; closing them stops any loopback apps and processes they
    started (`stoppers` first, latest first: NeMo Gym processes before what they call)."""

    def __init__(self, specs: dict[str, ServerEntry], built: dict[str, Any]) -> None:
        self.specs = specs
        self.built = built
        self.stoppers: list[Callable[[], Awaitable[None]]] = []
        self.died: list[str] = []  # one line per NeMo Gym server that exited during the run
        self.on_death: Callable[[str], None] | None = None  # set by the runner: stop collecting
        self.head: Any = None  # the HeadServer when the plan has NeMo Gym processes
        self.processes: Any = None  # their NemoProcesses

    def check_processes(self) -> None:
        """Looks now whether a NeMo Gym process has exited (reported through `on_death`)."""
        if self.processes is not None:
            self.processes.check()

    async def settle_processes(self) -> None:
        """After a failed rollout: `check_processes`, and a NeMo Gym server that no longer
        accepts connections is waited for until it has exited (nemo_process.NemoProcesses.settle),
        so no row is admitted only to fail against a server on its way out."""
        if self.processes is not None:
            await self.processes.settle()

    def server_died(self, line: str) -> None:
        self.died.append(line)
        if self.on_death is not None:
            self.on_death(line)

    def __getitem__(self, name: str) -> Any:
        return self.built[name]

    def agent(self, name: str) -> SimpleAgent | HttpAgent:
        server = self.built.get(name)
        if not isinstance(server, (SimpleAgent, HttpAgent)):
            raise PlanError(f"job agent {name!r} is not an agent server of this plan")
        return server

    async def close(self) -> None:
        while self.stoppers:
            await self.stoppers.pop()()
        for server in reversed(list(self.built.values())):
            close = getattr(server, "close", None)
            if close is not None:
                await close()


async def build_servers(
    specs: dict[str, ServerEntry],
    session: aiohttp.ClientSession,
    *,
    bind: bool = True,
    cache: ResponseCache | None = None,
    cache_stand_in: bool = False,
    addresses: Mapping[str, Address] | None = None,
    attribution: Attribution | None = None,
) -> Servers:
    """`specs` is the plan's `servers` with secrets substituted; on failure nothing is left running.

    `addresses` says where the NeMo Gym processes of the plan listen (servers/launch.py starts them).
    """
    ctx = BuildContext(
        session=session,
        bind=bind,
        cache=cache,
        cache_stand_in=cache_stand_in,
        addresses=addresses or {},
        attribution=attribution,
    )
    for kind in BUILD_ORDER:
        for name, spec in specs.items():
            if spec["type"] != kind:
                continue
            factory = FACTORIES.get((kind, spec["implementation"]))
            try:
                if server_kind(spec) != "builtin":
                    ctx.built[name] = _remote(name, spec, ctx)
                    continue
                if factory is None:
                    known = sorted(impl for (k, impl) in FACTORIES if k == kind)
                    raise PlanError(
                        f"server {name!r}: {kind} implementation {spec['implementation']!r} is not built "
                        f"into this gym-run (known: {', '.join(known)})"
                    )
                ctx.built[name] = await factory(name, spec["config"], ctx)
            except OSError as exc:
                await Servers(specs, ctx.built).close()
                raise ServerStartError(
                    f"server {name!r} could not start: {exc.strerror or exc}"
                ) from None
            except BaseException:
                await Servers(specs, ctx.built).close()
                raise
    return Servers(specs, ctx.built)
