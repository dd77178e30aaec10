"""validate: resolved tree -> server instances and globals, each checked against its JSON Schema
(schema_errors.py words what the schema refuses)."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile.datasets import check_datasets_field
from gym_compile.diagnostics import (
    CMDLINE,
    Diagnostic,
    Location,
    Related,
    did_you_mean,
    json_path,
)
from gym_compile.instances import beside_type, server_type_of
from gym_compile.interpolate import Resolved
from gym_compile.nemo.roots import Root, find_roots_explained
from gym_compile.schema_errors import check, kind
from gym_compile.server_schema import runtime_differs, schema_of

Path_ = tuple[Any, ...]
_ABSENT: Any = object()


@dataclass
class Server:
    name: str
    type: str
    implementation: str
    config: dict[str, Any]  # canonical names, defaults filled in, entrypoint dropped
    source_path: Path_  # where the implementation mapping sits in the tree
    renamed: dict[str, str] = field(default_factory=dict)  # canonical key -> key as written
    valid: bool = True  # invalid ones are kept so references to them are not reported twice
    known: bool = True  # False: no schema for its implementation (references by NeMo Gym's rule)
    schema: dict[str, Any] = field(
        default_factory=dict
    )  # built-in or derived from NeMo Gym's source


@dataclass
class Validated:
    resolved: Resolved
    servers: dict[str, Server]
    globals: dict[str, Any]
    diagnostics: list[Diagnostic]
    broken: set[str] = field(
        default_factory=set
    )  # instances too malformed to validate (already reported)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_mode.py: how each runs
    roots: list[Root] = field(default_factory=list)  # NeMo Gym roots, searched in this order

    def location(self, path: Path_) -> Location | None:
        return self.resolved.merged.source.at(path)

    def related(self, path: Path_) -> tuple[Related, ...]:
        """Where an interpolated value was defined, so a bad value points at both places."""
        return tuple(
            Related(o.location, f"value of '{o.key}' defined here")
            for o in self.resolved.origins.get(tuple(path), [])
            if o.location
        )


def validate(
    resolved: Resolved, nemo_gym_roots: Sequence[str | os.PathLike[str]] = ()
) -> Validated:
    """nemo_gym_roots: --nemo-gym-root values; the other roots come from the environment, the
    config files' location, the working directory and an installed nemo-gym."""
    roots = find_roots_explained([d.path for d in resolved.merged.configs], nemo_gym_roots)
    out = Validated(resolved, {}, {}, [], roots=roots)
    settings = catalog.validator("globals.schema.json").schema["properties"]
    for name, value in resolved.data.items():
        server_type = (
            None if name in settings else server_type_of(value)
        )  # prices: {models: {m: {...}}} is a setting
        if server_type is None:
            out.globals[name] = value
        else:
            _server(out, name, value)
            if name not in out.servers:
                out.broken.add(name)
    check(out, catalog.validator("globals.schema.json"), out.globals, (), {})
    _unused_globals(out)
    return out


def _unused_globals(out: Validated) -> None:
    """A top-level key that is neither a setting nor used by any ${...} is most likely a typo."""
    merged = out.resolved.merged
    known = catalog.validator("globals.schema.json").schema["properties"]
    env_file = merged.env.file if merged.env else None
    for key in out.globals:
        if key in known or (key,) in out.resolved.referenced:
            continue
        loc = merged.source.key_at((key,))
        if loc is None or loc.file == env_file:
            continue  # env.yaml holds variables that some configs use and others do not
        cmdline = loc.file == CMDLINE
        out.diagnostics.append(
            Diagnostic(
                "GYM011" if cmdline else "GYM038",
                f"'{key}' is not a setting and nothing refers to it"
                + (" (set on the command line)" if cmdline else ""),
                loc,
                json_path((key,)),
                severity="error" if cmdline else "warning",
                hints=did_you_mean(key, list(known) + list(out.servers))
                + (
                    f"settings: {', '.join(sorted(known))}; server instances: {', '.join(out.servers) or 'none'}",
                ),
            )
        )


def _server(out: Validated, name: str, value: dict[str, Any]) -> None:
    ((stype, impls),) = beside_type(out, name, value).items()
    loc = out.resolved.merged.source.key_at
    if stype not in catalog.SERVER_TYPES:
        out.diagnostics.append(
            Diagnostic(
                "GYM035",
                f"unknown server type '{stype}' in server instance '{name}'",
                loc((name, stype)),
                json_path((name, stype)),
                hints=did_you_mean(stype, catalog.SERVER_TYPES)
                + (f"server types: {', '.join(catalog.SERVER_TYPES)}",),
            )
        )
        return
    known = catalog.implementations()[stype]
    if not isinstance(impls, dict) or len(impls) != 1:
        count = len(impls) if isinstance(impls, dict) else 0
        out.diagnostics.append(
            Diagnostic(
                "GYM037",
                f"server instance '{name}' must name exactly one {stype} implementation, found {count}",
                loc((name, stype)),
                json_path((name, stype)),
                hints=(
                    f"write {name}: {{{stype}: {{<implementation>: {{...}}}}}}; known: {', '.join(known)}",
                ),
            )
        )
        return
    ((impl, config),) = impls.items()
    path = (name, stype, impl)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        out.diagnostics.append(
            Diagnostic(
                "GYM031",
                f"the configuration of '{name}' must be a mapping, got {kind(config)}",
                loc(path),
                json_path(path),
            )
        )
        return
    # `url:` says where the server runs, not how the implementation behaves (run_mode.py checks it)
    config = {k: v for k, v in config.items() if k != "url"}
    datasets = config.pop("datasets", _ABSENT)  # NeMo Gym's rules, whatever the implementation
    datasets_ok = datasets is _ABSENT or check_datasets_field(out, datasets, path + ("datasets",))
    found = schema_of(out, name, stype, impl, config, path)
    if found is None:  # reported; kept (invalid) so references, ports, datasets are still checked
        if datasets is not _ABSENT:
            config["datasets"] = datasets
        out.servers[name] = Server(name, stype, impl, config, path, {}, False, known=False)
        return
    schema, validator = found
    written = dict(config)
    config, renamed = _canonical(out, schema, copy.deepcopy(config), path)
    valid = check(out, validator, config, path, renamed)
    built_in = impl in known
    if built_in:
        config.pop("entrypoint", None)  # ours run in-process; a NeMo Gym server needs its module
    if valid:
        catalog.fill_defaults(schema, config)
        runtime_differs(out, schema, config, written, path)
    if datasets is not _ABSENT:
        config["datasets"] = datasets
    out.servers[name] = Server(
        name, stype, impl, config, path, renamed, valid and datasets_ok, schema=schema
    )


def _canonical(
    out: Validated, schema: dict[str, Any], config: dict[str, Any], path: Path_
) -> tuple[dict[str, Any], dict[str, str]]:
    """Renames NeMo Gym spellings (openai_base_url ...) to the schema's canonical keys."""
    renamed: dict[str, str] = {}
    for alias, canonical in schema.get("x-aliases", {}).items():
        if alias not in config:
            continue
        if canonical in config:
            out.diagnostics.append(
                Diagnostic(
                    "GYM034",
                    f"both '{alias}' and '{canonical}' are set; they are the same setting",
                    out.location(path + (alias,)),
                    json_path(path + (alias,)),
                    hints=(f"keep one of them (canonical: '{canonical}')",),
                    related=tuple(
                        Related(loc, f"'{canonical}' set here")
                        for loc in [out.location(path + (canonical,))]
                        if loc
                    ),
                )
            )
            del config[alias]  # reported once; not again as an unknown key
            continue
        config[canonical] = config.pop(alias)
        renamed[canonical] = alias
    return config, renamed
