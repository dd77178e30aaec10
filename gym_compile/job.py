"""job: a validated config -> the collection job it asks for, or none (a servers-only plan).

A job is asked for by agent_name, input_jsonl_fpath, output_jsonl_fpath, limit or num_repeats (the
arguments of NeMo Gym's ng_collect_rollouts); without them the plan describes servers only (`gym-run serve`), as most
NeMo Gym config files do. The job's input defaults to the agent's `example` dataset (else the example
set of the resources server it uses, where NeMo Gym 0.7 declares datasets). Input files are found
as NeMo Gym finds them (gym_compile.searchpath). train/validation sets NeMo Gym downloads on demand
and benchmark sets it prepares need not be on disk unless they are the job's input; then the
message says how to get them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gym_compile import files, settings
from gym_compile import schema_catalog as catalog
from gym_compile.assets import load_schema
from gym_compile.costing import JobSpend, start_costing
from gym_compile.datasets import declared_in, obtain_hints
from gym_compile.diagnostics import CMDLINE, Diagnostic, did_you_mean, json_path
from gym_compile.files import real_path, refusal
from gym_compile.inputs import InputFile, read_input
from gym_compile.plan_types import CacheSpec, RayBlock
from gym_compile.searchpath import Found, ambiguity, search
from gym_compile.sourcemap import display_name, display_path
from gym_compile.validate import Server, Validated

Path_ = tuple[Any, ...]
#: ng_collect_rollouts arguments that ask for a run (responses_create_params and
#: num_samples_in_parallel are defaults NeMo Gym configs also carry: they ask for nothing)
JOB_KEYS = ("agent_name", "input_jsonl_fpath", "output_jsonl_fpath", "limit", "num_repeats")
AGENTS = "responses_api_agents"


@dataclass
class Job:
    agent: str
    input: InputFile
    output: Path
    limit: int | None
    num_repeats: int
    concurrency: int
    responses_create_params: dict[str, Any]
    spend: JobSpend | None = None
    response_cache: CacheSpec | None = None
    ray: RayBlock | None = None
    pass_threshold: float | None = None  # None: not set (gym-run's default applies)


@dataclass(frozen=True)
class Dataset:
    """One `datasets:` entry of a server, where it is written."""

    server: Server
    index: int
    entry: dict[str, Any]

    @property
    def at(self) -> Path_:
        return self.server.source_path + ("datasets", self.index, "jsonl_fpath")


def build_job(v: Validated) -> Job | None:
    g = v.globals
    if not any(k in g for k in JOB_KEYS):
        check_datasets(v)
        return None
    agent = _agent(v)
    if agent is None:
        return None
    picked = _input(v, agent)
    if picked is None:
        return None
    found, at, dataset = picked
    costing = start_costing(v, agent)
    input_file = read_found(
        v, found, at, dataset, on_row=costing.builder.add, row_schema=builtin(agent)
    )
    output = _output(v, agent.name)
    if input_file is None or not agent.valid:
        return None
    repeats = settings.num_repeats(g)  # a value the schema refused falls back (reported there)
    return Job(
        agent.name,
        input_file,
        output,
        settings.limit(g),
        repeats,
        settings.count(g.get("num_samples_in_parallel"), None, minimum=1)
        or global_default("num_samples_in_parallel"),
        settings.params(g),
        costing.finish(v, repeats),
        _response_cache(v, output),
        _ray(v),
        settings.fraction(g.get("pass_threshold")),
    )


def global_default(key: str) -> Any:
    """A global key's default, as schemas/globals.schema.json states it (the one place it lives)."""
    return load_schema("globals.schema.json")["properties"][key]["default"]


def check_datasets(v: Validated) -> None:
    """Without a job: the example sets (committed with an environment) and input_jsonl_fpath must
    be there and valid; sets NeMo Gym downloads or prepares on demand need not be."""
    if isinstance(v.globals.get("input_jsonl_fpath"), str) and not v.resolved.is_failed(
        ("input_jsonl_fpath",)
    ):
        at: Path_ = ("input_jsonl_fpath",)
        agents = [s for s in v.servers.values() if s.type == AGENTS]
        schema = all(builtin(a) for a in agents)
        read_found(v, find(v, at, v.globals["input_jsonl_fpath"]), at, None, row_schema=schema)
    for ds in datasets_of(v):
        if ds.entry.get("type") == "example" and _usable(v, ds):
            found = find(v, ds.at, ds.entry["jsonl_fpath"])
            read_found(v, found, ds.at, ds, row_schema=builtin(ds.server))


def builtin(server: Server) -> bool:
    """A server gym-run runs itself: its rows follow schemas/input_row.schema.json. Rows of other
    NeMo Gym servers have their own shape (a task id, a scenario): they need only be JSON objects."""
    return server.implementation in catalog.implementations().get(server.type, ())


def datasets_of(v: Validated, servers: list[Server] | None = None) -> list[Dataset]:
    out: list[Dataset] = []
    for server in servers if servers is not None else list(v.servers.values()):
        entries = server.config.get("datasets")
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict):
                out.append(Dataset(server, i, entry))
    return out


def find(v: Validated, at: Path_, value: str) -> Found:
    """NeMo Gym's search for a file a config reads, from where the value was written."""
    origins = v.resolved.origins.get(tuple(at))
    loc = origins[-1].location if origins and origins[-1].location else v.location(at)
    written_in = None if loc is None or loc.file == CMDLINE else real_path(loc.file)
    return search(value, v.resolved.merged.roots, written_in)


def read_found(
    v: Validated,
    found: Found,
    at: Path_,
    dataset: Dataset | None,
    on_row: Any = None,
    *,
    row_schema: bool = True,
) -> InputFile | None:
    """Reads an input file that was searched for; a missing one is located at the value naming
    it, with every place looked and, for a dataset, how NeMo Gym gets it."""
    value = _value(v, at)
    warning = ambiguity(found, str(value), v.location(at), json_path(at))
    if warning is not None:
        v.diagnostics.append(warning)
    refused = refusal(found.path)  # /proc/self/environ, a FIFO, a device: never read
    if not found.exists or refused is not None:
        what = refused or ("is a directory" if files.is_dir(found.path) else "does not exist")
        how = obtain_hints(dataset.entry, declared_in(v, dataset.at)) if dataset else ()
        named = (
            f"{dataset.entry.get('type')} dataset '{dataset.entry.get('name')}'" if dataset else ""
        )
        v.diagnostics.append(
            Diagnostic(
                "GYM050",
                f"input file {display_name(str(value))} {what}" + (f" ({named})" if named else ""),
                v.location(at),
                json_path(at),
                related=v.related(at),
                hints=how + found.looked_hints(),
            )
        )
        return None
    input_file, problems = read_input(found.path, on_row, row_schema=row_schema)
    v.diagnostics.extend(problems)
    return input_file


def _agent(v: Validated) -> Server | None:
    g = v.globals
    agents = [s for s in v.servers.values() if s.type == AGENTS]
    name = g.get("agent_name")
    if v.resolved.is_failed(("agent_name",)) or (name is not None and not settings.text(name)):
        return None  # already reported (unresolved, or not a string: the schema check)
    if name is None and len(agents) == 1:
        return agents[0]
    if name is None:
        v.diagnostics.append(
            Diagnostic(
                "GYM042",
                "which agent collects the rollouts? agent_name is not set",
                None,
                "$.agent_name",
                hints=(
                    f"add +agent_name=NAME; agents: {', '.join(a.name for a in agents) or 'none defined'}",
                ),
            )
        )
        return None
    agent = v.servers.get(name)
    if agent is not None and agent.type == AGENTS:
        return agent if agent.valid else None  # an invalid one is reported already
    if name in v.broken:
        return None
    what = "not defined" if agent is None else f"a {agent.type} instance, not an agent"
    v.diagnostics.append(
        Diagnostic(
            "GYM042",
            f"agent_name '{name}' is {what}",
            v.location(("agent_name",)),
            "$.agent_name",
            hints=did_you_mean(str(name), [a.name for a in agents])
            + (f"agents: {', '.join(a.name for a in agents) or 'none'}",),
        )
    )
    return None


def _input(v: Validated, agent: Server) -> tuple[Found, Path_, Dataset | None] | None:
    """input_jsonl_fpath, else the example set of the agent or of its resources server."""
    g = v.globals
    if "input_jsonl_fpath" in g:
        at: Path_ = ("input_jsonl_fpath",)
        if v.resolved.is_failed(at) or not isinstance(g[at[0]], str):
            return None
        found = find(v, at, g[at[0]])
        return found, at, _declaring(v, found)
    own = datasets_of(v, [agent] + _resources_of(v, agent))
    example = next((d for d in own if d.entry.get("type") == "example" and _usable(v, d)), None)
    if example is not None:
        return find(v, example.at, example.entry["jsonl_fpath"]), example.at, example
    others = [f"+input_jsonl_fpath={d.entry.get('jsonl_fpath')}" for d in own if _usable(v, d)]
    v.diagnostics.append(
        Diagnostic(
            "GYM050",
            f"no input rows: input_jsonl_fpath is not set and agent '{agent.name}' has no "
            "example dataset",
            v.location(("agent_name",)) or v.resolved.merged.source.key_at(agent.source_path),
            "$.input_jsonl_fpath",
            hints=(
                (f"its other datasets: {' or '.join(others[:3])}",)
                if others
                else ("add +input_jsonl_fpath=path/to/rows.jsonl",)
            ),
        )
    )
    return None


def _resources_of(v: Validated, agent: Server) -> list[Server]:
    ref = agent.config.get("resources_server")
    name = ref.get("name") if isinstance(ref, dict) else None
    target = v.servers.get(name) if isinstance(name, str) else None
    return [target] if target is not None and target.type == "resources_servers" else []


def _declaring(v: Validated, found: Found) -> Dataset | None:
    """The dataset entry an input_jsonl_fpath names, so a missing file gets its download hint."""
    for ds in datasets_of(v):
        if _usable(v, ds) and find(v, ds.at, ds.entry["jsonl_fpath"]).path == found.path:
            return ds
    return None


def _usable(v: Validated, ds: Dataset) -> bool:
    return isinstance(ds.entry.get("jsonl_fpath"), str) and not v.resolved.is_failed(ds.at)


def _value(v: Validated, at: Path_) -> Any:
    node: Any = v.resolved.data
    for part in at:
        node = node[part] if isinstance(node, (dict, list)) else None
    return node


def _output(v: Validated, agent: str) -> Path:
    """A write target: relative to the file that names it (NeMo Gym: the working directory)."""
    g = v.globals
    if settings.text(g.get("output_jsonl_fpath")) is not None:
        output = write_path(v, ("output_jsonl_fpath",), g["output_jsonl_fpath"])
    else:  # unset, or a value the schema check refused (null, a list)
        output = real_path(Path.cwd() / "results" / f"{agent}_rollouts.jsonl")
    if files.is_dir(output):
        v.diagnostics.append(
            Diagnostic(
                "GYM003",
                f"output_jsonl_fpath is a directory: {display_path(output)}",
                v.location(("output_jsonl_fpath",)),
                "$.output_jsonl_fpath",
                hints=("name a .jsonl file",),
            )
        )
    return output


def write_path(v: Validated, at: Path_, value: str) -> Path:
    """Where a file is written: relative to the file that names it; a command-line value (or one
    from an unlocated place) relative to the working directory."""
    p = Path(os.path.expanduser(value))  # Path.expanduser raises for ~unknown-user
    if p.is_absolute():
        return p
    origins = v.resolved.origins.get(tuple(at))
    loc = origins[-1].location if origins and origins[-1].location else v.location(at)
    if loc is None or loc.file == CMDLINE:
        return real_path(Path.cwd() / p)
    return real_path(real_path(loc.file).parent / p)


def _ray(v: Validated) -> RayBlock | None:
    """`ray:` -> every key spelled out (null = gym-run decides); None when the block is absent."""
    setting = v.globals.get("ray")
    if not isinstance(setting, dict):
        return None
    per_worker = setting.get("resources_per_worker") or {"CPU": 1}
    return {
        "address": setting.get("address"),
        "workers": setting.get("workers"),
        "resources_per_worker": dict(per_worker) if isinstance(per_worker, dict) else {"CPU": 1},
        "concurrency_per_worker": setting.get("concurrency_per_worker"),
    }


def _response_cache(v: Validated, output: Path) -> CacheSpec | None:
    """`response_cache:` -> {path, stand_in}: the path resolved like every written path,
    defaulting to responses.sqlite beside the rollouts; None when the cache is off."""
    setting = v.globals.get("response_cache")
    if setting is True:
        setting = {}
    if not isinstance(setting, dict):
        return None
    at = ("response_cache", "path")
    path = (
        write_path(v, at, setting["path"])
        if settings.text(setting.get("path"))
        else output.parent / "responses.sqlite"
    )
    return {"path": str(path), "stand_in": bool(setting.get("stand_in", False))}
