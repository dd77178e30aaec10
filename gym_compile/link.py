"""link: cross-references resolve to instances of the right type, ports do not clash, the job's
input is found and its rows validate (gym_compile.job).

References are found by the server's schema (`x-ref-type`) and, as NeMo Gym finds them whatever the
implementation, in every top-level field of a server's config that is a `{type, name}` mapping, so
a server whose implementation is unknown still has its references checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, Related, Severity, closest, did_you_mean, json_path
from gym_compile.job import Job, build_job, check_datasets, datasets_of, write_path
from gym_compile.merge import EVERYTHING
from gym_compile.validate import Server, Validated

Path_ = tuple[Any, ...]
AGENTS = "responses_api_agents"


@dataclass
class Linked:
    validated: Validated
    job: Job | None


@dataclass(frozen=True)
class LinkOptions:
    """How much of the world the config sees: lint checks files that are only part of one."""

    #: instance -> types, defined in other linted files
    elsewhere: Mapping[str, frozenset[str]] = field(default_factory=dict)
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
    _dataset_pins(v)
    if not options.job:
        check_datasets(v)
        return Linked(v, None)
    return Linked(v, build_job(v))


def resolve_path(v: Validated, path: Path_, value: str) -> Path:
    """A path relative to the file that names it (a command-line value: the working directory),
    for files gym-compile's own settings name (nemo_gym.python, outputs). Files NeMo Gym reads
    (includes, datasets, a server's files) are found by gym_compile.searchpath instead."""
    return write_path(v, path, value)


def references(server: Server) -> list[tuple[Path_, Any, str]]:
    """(relative path, the {type, name} mapping, the type it must name): by the schema, then by
    NeMo Gym's rule (a top-level field holding a mapping with a server type and a name; an
    environment server's `agent_server` may leave its type out)."""
    found = {
        rel: (ref, want)
        for rel, ref, want in catalog.marked(server.schema, server.config, "x-ref-type")
    }
    for key, value in server.config.items():
        if (key,) in found or not isinstance(value, dict) or not isinstance(value.get("name"), str):
            continue
        kind = value.get("type")
        if kind in catalog.SERVER_TYPES:
            found[(key,)] = (value, kind)
        elif kind is None and key == "agent_server":
            found[(key,)] = (value, AGENTS)
    return [(rel, ref, want) for rel, (ref, want) in found.items()]


def _check_refs(v: Validated, server: Server, options: LinkOptions) -> None:
    for rel, ref, want in references(server):
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
        elif ref.get("type", want) != want:
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
            hints=(did_you_mean(name, same_type) or _other_types(v, name, want))
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
        if not isinstance(port, int) or isinstance(port, bool) or not port:
            continue  # unset (a free one is picked), or a wrong type reported by validate
        key = (str(server.config.get("host") or "127.0.0.1"), port)
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


def _other_types(v: Validated, name: str, want: str) -> tuple[str, ...]:
    """Did you mean, across the instances of every type (a reference with the wrong type)."""
    others = {s.name: s.type for s in v.servers.values() if s.type != want}
    close = closest(name, others)
    return (
        ("did you mean " + " or ".join(f"'{c}' (a {others[c]} instance)" for c in close) + "?",)
        if close
        else ()
    )


def _dataset_pins(v: Validated) -> None:
    """A dataset's `agent:` pin (NeMo Gym 0.7, benchmark sets): it must name the agent that runs
    the rows, i.e. the declaring agent itself, or an agent using the declaring resources server;
    a set routed by `taskset` cannot pin one (nemo_gym/global_config.py resolve_dataset_agent)."""
    for ds in datasets_of(v):
        pin = ds.entry.get("agent")
        at = ds.server.source_path + ("datasets", ds.index, "agent")
        if not isinstance(pin, str) or v.resolved.is_failed(at):
            continue
        if ds.entry.get("taskset") is not None:
            why = "a dataset with a taskset is routed to an environment server, not to an agent"
            users: list[str] = []
        elif ds.server.type == AGENTS:
            if pin == ds.server.name:
                continue
            why = f"rows of a dataset declared by agent '{ds.server.name}' go to that agent"
            users = [ds.server.name]
        else:
            users = sorted(
                s.name
                for s in v.servers.values()
                if s.type == AGENTS
                and isinstance(s.config.get("resources_server"), dict)
                and s.config["resources_server"].get("name") == ds.server.name
            )
            if pin in users:
                continue
            why = f"no agent of that name uses resources server '{ds.server.name}'"
        v.diagnostics.append(
            Diagnostic(
                "GYM045",
                f"dataset '{ds.entry.get('name')}' pins agent '{pin}', but {why}",
                v.location(at),
                json_path(at),
                hints=did_you_mean(pin, users)
                + (
                    (f"agents that can run it: {', '.join(users)}",)
                    if users
                    else ("remove agent:",)
                ),
            )
        )
