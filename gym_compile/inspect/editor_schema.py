"""The editor schema: every implementation schema in schemas/servers (and those derived from NeMo Gym
sources found under the NeMo Gym roots) -> one JSON Schema for a whole config file.

Editors (VS Code's YAML extension, JetBrains, Neovim through yaml-language-server) then complete and check
server instances as you type. Draft-07 because that is what those editors implement fully.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gym_compile import __version__
from gym_compile import schema_catalog as catalog
from gym_compile.assets import load_schema

FILE_NAME = "gym-config.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"
_INTERPOLATION = {"$ref": "#/definitions/interpolation"}


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
    return {
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


def write(out_dir: Path, derived: Mapping[tuple[str, str], dict[str, Any]] | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / FILE_NAME
    text = json.dumps(build(derived), indent=2, sort_keys=False) + "\n"
    target.write_text(text, encoding="utf-8")
    return target
