"""server_schema: a server instance in, the schema it is checked against out (diagnostics added).

Two sources, one validator: the implementations gym-compile ships have their schema in
schemas/servers/; any other one gets a schema derived from its NeMo Gym source (gym_compile.nemo),
found under the compile's NeMo Gym roots. After validation, a built-in schema's
`x-gym-run-differs` rules say where gym-run would run a value differently from NeMo Gym.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, did_you_mean, json_path
from gym_compile.nemo.lookup import implementations_in, schema_from_source
from gym_compile.nemo.roots import HOW_TO_POINT
from gym_compile.sourcemap import display_path

Path_ = tuple[Any, ...]
#: What an instance is checked against when its source has no config class we can read.
UNCHECKED: dict[str, Any] = {"type": "object", "x-unchecked": True}
_UNCHECKED_DIGEST = "unchecked"


def schema_of(
    v: Any, name: str, stype: str, impl: str, config: dict[str, Any], path: Path_
) -> tuple[dict[str, Any], Draft202012Validator] | None:
    """(schema, validator) for the instance, or None when there is none (reported: GYM036)."""
    if impl in catalog.implementations()[stype]:
        return catalog.server_schema(stype, impl), catalog.server_validator(stype, impl)
    found = schema_from_source(v.roots, stype, impl, config.get("entrypoint"))
    loc = v.resolved.merged.source.key_at(path)
    if found.derived is None:
        known = catalog.implementations()[stype]
        nearby = implementations_in(v.roots, stype)
        v.diagnostics.append(
            Diagnostic(
                "GYM036",
                f"unknown {stype} implementation '{impl}': gym-compile does not ship it and its "
                "NeMo Gym source was not found",
                loc,
                json_path(path),
                hints=did_you_mean(impl, [*known, *nearby])
                + tuple(
                    f"looked in {display_path(place)} ({root.origin}"
                    + ("" if root.path.is_dir() else ", does not exist")
                    + ")"
                    for place, root in found.looked_in
                )
                + (HOW_TO_POINT, f"built into gym-compile: {', '.join(known)}"),
            )
        )
        return None
    derived = found.derived
    if derived.schema is None:
        v.diagnostics.append(
            Diagnostic(
                "GYM090",
                f"no schema derived from {display_path(derived.source)}: {derived.error}; "
                f"the fields of '{name}' are not checked",
                loc,
                json_path(path),
                severity="warning",
            )
        )
        return UNCHECKED, catalog.schema_validator(UNCHECKED, _UNCHECKED_DIGEST)
    return derived.schema, catalog.schema_validator(derived.schema, derived.digest)


def runtime_differs(
    v: Any, schema: dict[str, Any], config: dict[str, Any], written: dict[str, Any], path: Path_
) -> None:
    """GYM092 for each top-level value (written or defaulted) a rule of the schema names:
    `"x-gym-run-differs": [{"const": v | "not": v | "written": true, "unless": [keys], "message"}]`:
    the value is v, the value is not v, the key is written at all; an `unless` key written
    (even as null: gym-run's own option chosen) silences it."""
    for key, sub in schema.get("properties", {}).items():
        for rule in sub.get("x-gym-run-differs", []):
            value = config.get(key)
            if "const" in rule and not _same(value, rule["const"]):
                continue
            if "not" in rule and _same(value, rule["not"]):
                continue
            if rule.get("written") and key not in written:
                continue
            if any(other in written for other in rule.get("unless", [])):
                continue  # the config chose gym-run's own option
            was_written = key in written
            at = path + (key,) if was_written else path
            v.diagnostics.append(
                Diagnostic(
                    "GYM092",
                    f"{key}: {rule['message']}"
                    + ("" if was_written else f" ({key} is not set: its default applies)"),
                    v.resolved.merged.source.key_at(at),
                    json_path(path + (key,)),
                    severity="warning",
                    hints=tuple(rule.get("hints", ())),
                )
            )


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)
