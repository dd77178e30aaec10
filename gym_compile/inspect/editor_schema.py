"""The editor schema: every implementation schema in schemas/servers (and those derived from NeMo Gym
sources found under the NeMo Gym roots) -> one JSON Schema for a whole config file.

Editors (VS Code's YAML extension, JetBrains, Neovim through yaml-language-server) then complete and check
server instances as you type. Draft-07 because that is what those editors implement fully.

Schemas derived from NeMo Gym carry the same pydantic definitions (OpenAI request params, dataset
configs, server refs) once per implementation: 4.6 MB with NeMo Gym 0.7.0. Definitions equal in
content are emitted once, as `shared.<Name>`, and every implementation refers to that one.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gym_compile import __version__
from gym_compile import schema_catalog as catalog
from gym_compile.assets import load_schema
from gym_compile.atomic import atomic_file

FILE_NAME = "gym-config.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"
_INTERPOLATION = {"$ref": "#/definitions/interpolation"}
_REF = "#/definitions/"
SHARED = "shared."
#: a definition an implementation brought along (`<server type>.<implementation>.<its name>`)
_OWN_DEFINITION = re.compile(
    r"^(?:responses_api_models|resources_servers|responses_api_agents)\.[^.]+\.(.+)$"
)


def _strip(node: Any, prefix: str, defs: dict[str, Any]) -> Any:
    """Drops x-* keywords and $schema/$id, and moves $defs into definitions under a prefix."""
    if isinstance(node, list):
        return [_strip(x, prefix, defs) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "additionalProperties" and node.get("x-incomplete"):
            value = True  # a derived object whose keys are not all known: no red squiggles
        if key.startswith("x-") or key in ("$schema", "$id"):
            continue
        if key == "$defs":
            for name, sub in value.items():
                defs[f"{prefix}.{name}"] = _strip(sub, prefix, defs)
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            value = f"#/definitions/{prefix}.{value.removeprefix('#/$defs/')}"
        elif key == "$ref" and value in catalog.top_level_ids():  # another file's schema: inline it
            name = catalog.top_level_ids()[value].removesuffix(".schema.json")
            if name not in defs:
                defs[name] = {}  # placeholder first: a schema that refers to itself stops here
                defs[name] = _strip(
                    copy.deepcopy(load_schema(catalog.top_level_ids()[value])), name, defs
                )
            value = f"#/definitions/{name}"
        out[key] = _strip(value, prefix, defs)
    return out


def _accept_interpolation(properties: dict[str, Any]) -> None:
    """A field may be written as ${...} or ??? whatever its type: it is resolved at compile time."""
    for key, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        if "properties" in sub:
            _accept_interpolation(sub["properties"])
        if set(sub) - {"description", "default"} == {"type"} and sub["type"] == "string":
            continue
        properties[key] = {
            "anyOf": [sub, _INTERPOLATION],
            **({"description": sub["description"]} if "description" in sub else {}),
        }


def _implementation(
    server_type: str, impl: str, defs: dict[str, Any], original: dict[str, Any] | None = None
) -> dict[str, Any]:
    original = original if original is not None else catalog.server_schema(server_type, impl)
    schema = _strip(copy.deepcopy(original), f"{server_type}.{impl}", defs)
    props = schema.setdefault("properties", {})
    aliases: dict[str, str] = original.get("x-aliases", {})
    for alias, canonical in aliases.items():
        if canonical in props:
            props[alias] = {
                **props[canonical],
                "description": f"NeMo Gym spelling of '{canonical}'.",
            }
    required = schema.pop("required", [])
    plain = [k for k in required if k not in aliases.values()]
    if plain:
        schema["required"] = plain
    either = [
        {"anyOf": [{"required": [k]}, *({"required": [a]} for a, c in aliases.items() if c == k)]}
        for k in required
        if k in aliases.values()
    ]
    if either:
        schema["allOf"] = either
    _accept_interpolation(props)
    return schema


def build(derived: Mapping[tuple[str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """derived: (server type, implementation) -> a schema derived from NeMo Gym's source."""
    derived = derived or {}
    defs: dict[str, Any] = {
        "interpolation": {
            "type": "string",
            "pattern": r"\$\{|^\?\?\?$",
            "description": "${...} (resolved by gym-compile) or ??? (must be set on the command line)",
        },
    }
    instance_props: dict[str, Any] = {}
    for server_type, shipped in catalog.implementations().items():
        extra = sorted(i for (t, i) in derived if t == server_type and i not in shipped)
        impls = [*shipped, *extra]
        for impl in impls:
            original = derived.get((server_type, impl))
            defs[f"{server_type}.{impl}"] = _implementation(server_type, impl, defs, original)
        defs[server_type] = {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False if impls else {"type": ["object", "null"]},
            "description": f"One {server_type} implementation: {', '.join(impls) or 'any'}.",
            "properties": {impl: {"$ref": f"#/definitions/{server_type}.{impl}"} for impl in impls},
        }
        instance_props[server_type] = {"$ref": f"#/definitions/{server_type}"}
    defs["server_instance"] = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "description": "A server instance: exactly one server type, then exactly one implementation.",
        "properties": instance_props,
    }
    settings = _strip(copy.deepcopy(load_schema("globals.schema.json")), "globals", defs)
    return share_definitions(
        {
            "$schema": DRAFT,
            "title": "gym-compile config file",
            "description": f"Generated by gym-compile {__version__} (`gym-compile schema`). Top-level mappings are "
            "server instances; other top-level keys are settings or interpolation variables.",
            "type": "object",
            "properties": settings["properties"],
            "additionalProperties": {
                "if": {"type": "object"},
                "then": {"$ref": "#/definitions/server_instance"},
            },
            "definitions": defs,
        }
    )


def share_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """Definitions of implementations that are equal in content become one `shared.<Name>`, and
    every $ref to them points there. Repeated until nothing changes: once the leaves are shared,
    the definitions that refer to them become equal too."""
    defs: dict[str, Any] = schema["definitions"]
    while True:
        groups: dict[str, list[str]] = {}
        for name, sub in defs.items():
            if name.startswith(SHARED) or _OWN_DEFINITION.match(name):
                groups.setdefault(json.dumps(sub, sort_keys=True), []).append(name)
        renames: dict[str, str] = {}
        for names in groups.values():
            if len(names) > 1:
                keep = next((n for n in names if n.startswith(SHARED)), None)
                keep = keep or _free_name(names[0], defs)
                defs.setdefault(keep, defs[names[0]])
                renames.update({n: keep for n in names if n != keep})
        if not renames:
            return schema
        for name in renames:
            del defs[name]
        _rename_refs(schema, renames)


def _free_name(name: str, defs: Mapping[str, Any]) -> str:
    own = _OWN_DEFINITION.match(name)
    base = SHARED + (own.group(1) if own else name)
    taken = (f"{base}.{i}" if i else base for i in range(len(defs) + 1))
    return next(n for n in taken if n not in defs)


def _rename_refs(node: Any, renames: Mapping[str, str]) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in renames:
                item["$ref"] = _REF + renames[ref[len(_REF) :]]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def write(out_dir: Path, derived: Mapping[tuple[str, str], dict[str, Any]] | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / FILE_NAME
    with atomic_file(target) as fh:
        fh.write(json.dumps(build(derived), indent=2, sort_keys=False) + "\n")
    return target
