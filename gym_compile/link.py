"""link: cross-references resolve to instances of the right type, paths exist, input rows validate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match

from gym_compile import schema_catalog as catalog
from gym_compile.costing import JobSpend, start_costing
from gym_compile.diagnostics import (
    CMDLINE,
    Diagnostic,
    Location,
    Related,
    Severity,
    did_you_mean,
    json_path,
)
from gym_compile.loader import display_path
from gym_compile.merge import EVERYTHING
from gym_compile.validate import Validated

MAX_ROW_ERRORS = 20  # per input file; the rest are counted


@dataclass
class InputFile:
    path: Path
    sha256: str
    rows: int


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
    response_cache: dict[str, Any] | None = None
    ray: dict[str, Any] | None = None


@dataclass
class Linked:
    validated: Validated
    job: Job | None


@dataclass(frozen=True)
class LinkOptions:
    """How much of the world the config sees: lint checks files that are only part of one."""

    elsewhere: Mapping[str, frozenset[str]] = field(
        default_factory=dict
    )  # instance -> types, other files
    maybe_defined: frozenset[str] = frozenset()  # names a file that could not be read may define
    undefined_refs: Severity | None = "error"  # None: a ref to an unknown instance is not reported
    job: bool = True  # False: no job; check the example datasets and input_jsonl_fpath instead


def options_for(v: Validated) -> LinkOptions:
    """A config with a file that could not be read: what that file may define is not reported missing."""
    merged = v.resolved.merged
    if not merged.incomplete:
        return LinkOptions()
    return LinkOptions(
        maybe_defined=frozenset(merged.unknown),
        undefined_refs=None if EVERYTHING in merged.unknown else "error",
        job=False,
    )


def link(v: Validated, options: LinkOptions | None = None) -> Linked:
    options = options or LinkOptions()
    for server in v.servers.values():
        _check_refs(v, server, options)
    _check_ports(v)
    if not options.job:
        check_datasets(v)
        return Linked(v, None)
    return Linked(v, _job(v))


def check_datasets(v: Validated) -> None:
    """The inputs a config names without running a job: example datasets must be committed."""
    if isinstance(v.globals.get("input_jsonl_fpath"), str) and not v.resolved.is_failed(
        ("input_jsonl_fpath",)
    ):
        check_input(
            v,
            resolve_path(v, ("input_jsonl_fpath",), v.globals["input_jsonl_fpath"]),
            ("input_jsonl_fpath",),
        )
    for server in v.servers.values():
        datasets = server.config.get("datasets") if server.valid else None
        for i, ds in enumerate(datasets or []):
            at = server.source_path + ("datasets", i, "jsonl_fpath")
            if ds.get("type") == "example" and not v.resolved.is_failed(at):
                check_input(v, resolve_path(v, at, ds["jsonl_fpath"]), at)


def resolve_path(v: Validated, path: tuple[Any, ...], value: str) -> Path:
    """Relative paths resolve against the file that wrote them; command-line ones against the cwd."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    origins = v.resolved.origins.get(tuple(path))
    loc = origins[-1].location if origins and origins[-1].location else v.location(path)
    if loc is None or loc.file == CMDLINE:
        return (Path.cwd() / p).resolve()
    return (Path(loc.file).resolve().parent / p).resolve()


def _check_refs(v: Validated, server: Any, options: LinkOptions) -> None:
    schema = server.schema
    for rel, ref, want in catalog.marked(schema, server.config, "x-ref-type"):
        path = server.source_path + rel
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            continue  # the schema check already reported its shape
        name = ref["name"]
        target = v.servers.get(name)
        if v.resolved.is_failed(path + ("name",)):
            continue  # an unresolved ${...}: reported, or supplied from outside
        if target is None:
            _missing_ref(v, server.name, rel, path + ("name",), name, want, options)
        elif target.type != want:
            v.diagnostics.append(
                Diagnostic(
                    "GYM041",
                    f"'{server.name}'.{rel[-1]} must refer to a {want} instance; "
                    f"'{name}' is a {target.type}",
                    v.location(path + ("name",)),
                    json_path(path + ("name",)),
                    hints=(
                        f"{want} instances: "
                        f"{', '.join(s.name for s in v.servers.values() if s.type == want) or 'none'}",
                    ),
                )
            )
        elif ref.get("type") != want:
            v.diagnostics.append(
                Diagnostic(
                    "GYM041",
                    f"'{server.name}'.{rel[-1]} says type {ref.get('type')}, but '{name}' is a {want}",
                    v.location(path + ("type",)),
                    json_path(path + ("type",)),
                    hints=(f"write type: {want}",),
                )
            )


def _missing_ref(
    v: Validated,
    owner: str,
    rel: tuple[Any, ...],
    at: tuple[Any, ...],
    name: str,
    want: str,
    options: LinkOptions,
) -> None:
    """A reference to a name this config does not define: maybe fine (lint, unreadable files), else GYM040."""
    if name in v.broken or name in options.maybe_defined:
        return  # there but invalid (reported by validate), or maybe in a file that could not be read
    if name in options.elsewhere:
        if want not in options.elsewhere[name]:
            v.diagnostics.append(
                Diagnostic(
                    "GYM041",
                    f"'{owner}'.{rel[-1]} must refer to a {want} instance; '{name}' is defined "
                    f"in another linted file as {' and '.join(sorted(options.elsewhere[name]))}",
                    v.location(at),
                    json_path(at),
                )
            )
        return
    if options.undefined_refs is None:
        return
    same_type = sorted(
        {s.name for s in v.servers.values() if s.type == want}
        | {n for n, types in options.elsewhere.items() if want in types}
    )
    lint = options.undefined_refs == "warning"
    v.diagnostics.append(
        Diagnostic(
            "GYM040",
            f"'{owner}' refers to {want} instance '{name}', which is not defined"
            + (" in any linted file" if lint else ""),
            v.location(at),
            json_path(at),
            severity=options.undefined_refs,
            related=v.related(at),
            hints=did_you_mean(name, same_type)
            + (
                (f"{want} instances: {', '.join(same_type)}",)
                if same_type
                else (
                    f"no {want} instance is defined; add its config file"
                    + (" to the lint, or lint with --set" if lint else ""),
                )
            ),
        )
    )


def _check_ports(v: Validated) -> None:
    taken: dict[tuple[str, int], str] = {}
    for server in v.servers.values():
        port = server.config.get("port")
        if not port:
            continue
        key = (server.config.get("host", "127.0.0.1"), port)
        if key in taken:
            path = server.source_path + ("port",)
            other = v.servers[taken[key]]
            v.diagnostics.append(
                Diagnostic(
                    "GYM043",
                    f"'{server.name}' and '{other.name}' both use port {port}",
                    v.location(path),
                    json_path(path),
                    hints=("give each server its own port, or null to pick a free one",),
                    related=tuple(
                        Related(loc, f"'{other.name}' uses it here")
                        for loc in [v.location(other.source_path + ("port",))]
                        if loc
                    ),
                )
            )
        else:
            taken[key] = server.name


def _job(v: Validated) -> Job | None:
    g = v.globals
    agents = [s for s in v.servers.values() if s.type == "responses_api_agents"]
    name = g.get("agent_name")
    if v.resolved.is_failed(("agent_name",)) or any(not a.valid for a in agents if a.name == name):
        return None  # already reported
    if name is None:
        wants_job = any(k in g for k in ("input_jsonl_fpath", "output_jsonl_fpath"))
        if len(agents) == 1:
            name = agents[0].name
        elif wants_job or not agents:
            if wants_job:
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
        else:
            return None  # several agents and no job asked for: a servers-only plan
    agent = v.servers.get(name)
    if agent is None or agent.type != "responses_api_agents":
        what = "not defined" if agent is None else f"a {agent.type} instance, not an agent"
        v.diagnostics.append(
            Diagnostic(
                "GYM042",
                f"agent_name '{name}' is {what}",
                v.location(("agent_name",)),
                "$.agent_name",
                hints=did_you_mean(name, [a.name for a in agents])
                + (f"agents: {', '.join(a.name for a in agents) or 'none'}",),
            )
        )
        return None

    if "input_jsonl_fpath" in g:
        input_path = resolve_path(v, ("input_jsonl_fpath",), g["input_jsonl_fpath"])
        input_at: tuple[Any, ...] = ("input_jsonl_fpath",)
    else:
        datasets = agent.config.get("datasets") or []
        if not datasets:
            v.diagnostics.append(
                Diagnostic(
                    "GYM050",
                    f"no input rows: input_jsonl_fpath is not set and agent '{name}' has no datasets",
                    v.location(("agent_name",))
                    or v.resolved.merged.source.key_at(agent.source_path),
                    "$.input_jsonl_fpath",
                    hints=("add +input_jsonl_fpath=path/to/rows.jsonl",),
                )
            )
            return None
        ds = next((d for d in datasets if d.get("type") == "example"), datasets[0])
        idx = datasets.index(ds)
        input_at = agent.source_path + ("datasets", idx, "jsonl_fpath")
        input_path = resolve_path(v, input_at, ds["jsonl_fpath"])
    costing = start_costing(v, agent)
    input_file = check_input(v, input_path, input_at, on_row=costing.builder.add)

    if "output_jsonl_fpath" in g:
        output = resolve_path(v, ("output_jsonl_fpath",), g["output_jsonl_fpath"])
    else:
        output = (Path.cwd() / "results" / f"{name}_rollouts.jsonl").resolve()
    if output.exists() and output.is_dir():
        v.diagnostics.append(
            Diagnostic(
                "GYM003",
                f"output_jsonl_fpath is a directory: {display_path(output)}",
                v.location(("output_jsonl_fpath",)),
                "$.output_jsonl_fpath",
                hints=("name a .jsonl file",),
            )
        )
    if input_file is None or not agent.valid:
        return None
    limit = g.get("limit") or None
    params = g.get("responses_create_params") or {}
    repeats = g.get("num_repeats") or 1
    return Job(
        name,
        input_file,
        output,
        limit,
        repeats,
        g.get("num_samples_in_parallel") or 16,
        params,
        costing.finish(v, repeats),
        _response_cache(v, output),
        _ray(v),
    )


def _ray(v: Validated) -> dict[str, Any] | None:
    """`ray:` -> every key spelled out (null = gym-run decides); None when the block is absent."""
    setting = v.globals.get("ray")
    if not isinstance(setting, dict):
        return None
    return {
        "address": setting.get("address"),
        "workers": setting.get("workers"),
        "resources_per_worker": dict(setting.get("resources_per_worker") or {"CPU": 1}),
        "concurrency_per_worker": setting.get("concurrency_per_worker"),
    }


def _response_cache(v: Validated, output: Path) -> dict[str, Any] | None:
    """`response_cache:` -> {path, stand_in}: the path resolved like every path of a config file,
    defaulting to responses.sqlite beside the rollouts; None when the cache is off."""
    setting = v.globals.get("response_cache")
    if setting is True:
        setting = {}
    if not isinstance(setting, dict):
        return None
    at = ("response_cache", "path")
    path = (
        resolve_path(v, at, setting["path"])
        if setting.get("path")
        else output.parent / "responses.sqlite"
    )
    return {"path": str(path), "stand_in": bool(setting.get("stand_in", False))}


def check_input(
    v: Validated,
    path: Path,
    at: tuple[Any, ...],
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> InputFile | None:
    """The input file a config names: missing is reported at the config value that names it."""
    loc = v.location(at)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "does not exist"
        v.diagnostics.append(
            Diagnostic(
                "GYM050",
                f"input file {display_path(path)} {why}",
                loc,
                json_path(at),
                related=v.related(at),
                hints=(
                    f"looked for {display_path(path)}",
                    "relative paths are resolved against the file that names them",
                ),
            )
        )
        return None
    input_file, problems = read_input(path, on_row)
    v.diagnostics.extend(problems)
    return input_file


def read_input(
    path: Path, on_row: Callable[[dict[str, Any]], None] | None = None
) -> tuple[InputFile | None, list[Diagnostic]]:
    """One streaming pass: hash, count and validate every row (the validator is built once).

    `on_row` sees each valid row as it goes by (the cost estimate), so a big file is read once."""
    shown = display_path(path)
    validator = catalog.validator("input_row.schema.json")
    quick = catalog.quick_check("input_row.schema.json")
    digest = hashlib.sha256()
    rows = errors = 0
    problems: list[Diagnostic] = []
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                digest.update(raw)
                if not raw.strip():
                    continue
                rows += 1
                row, problem = _row_problem(quick, validator, raw, shown, lineno)
                if problem is None and on_row is not None:
                    on_row(row)
                elif problem is not None:
                    errors += 1
                    if errors <= MAX_ROW_ERRORS:
                        problems.append(problem)
    except OSError as exc:
        return None, [
            Diagnostic("GYM050", f"cannot read input file {shown}: {exc.strerror}", Location(shown))
        ]
    if errors > MAX_ROW_ERRORS:
        problems.append(
            Diagnostic(
                "GYM052",
                f"{errors - MAX_ROW_ERRORS} more invalid rows in {shown} not shown ({errors} in all)",
                Location(shown),
            )
        )
    if rows == 0:
        problems.append(Diagnostic("GYM053", f"input file {shown} has no rows", Location(shown)))
    return InputFile(path, digest.hexdigest(), rows), problems


def _row_problem(
    quick: Any, validator: Any, raw: bytes, shown: str, lineno: int
) -> tuple[Any, Diagnostic | None]:
    """(the parsed row, None) or (whatever parsed, what is wrong with it)."""
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        col = getattr(exc, "colno", 1)
        msg = getattr(exc, "msg", "not UTF-8")
        return None, Diagnostic(
            "GYM051",
            f"line {lineno} is not JSON: {msg}",
            Location(shown, lineno, col),
            hints=("each line must be one JSON object (JSON Lines)",),
        )
    if quick(row):
        return row, None
    error = best_match(validator.iter_errors(row))
    if error is None:
        return row, None
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    keys = [p for p in error.absolute_path if isinstance(p, str)]
    hit = text.find(json.dumps(keys[-1])) if keys else -1
    loc = (
        Location(shown, lineno, hit + 1, span=len(json.dumps(keys[-1])))
        if hit >= 0
        else Location(shown, lineno, 1, span=1)
    )
    hints = (
        ("a row needs responses_create_params.input (a string or a list of messages)",)
        if error.validator == "required"
        else ()
    )
    return row, Diagnostic(
        "GYM052",
        f"row {lineno} is invalid: {error.message[:200]}",
        loc,
        json_path(error.absolute_path),
        hints=hints,
    )
