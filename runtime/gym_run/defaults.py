"""A server implementation's JSON Schema in, its default settings out: the one place defaults live.

gym-compile writes every default into the plan, so a plan run by gym-run states each value it uses.
Code that builds a client without a plan (`gym-run check`, the stand-in's CLI, tests) reads the
same defaults here instead of restating them, so a schema change is the only change needed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from gym_compile.assets import load_schema


@cache
def _defaults(server_type: str, implementation: str) -> dict[str, Any]:
    schema = load_schema(f"servers/{server_type}/{implementation}.schema.json")
    return _fill(schema, {})


def _fill(schema: Mapping[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    for key, sub in (schema.get("properties") or {}).items():
        if key not in instance:
            if "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            elif sub.get("type") == "object" and "properties" in sub:
                instance[key] = {}
        if isinstance(instance.get(key), dict) and "properties" in sub:
            _fill(sub, instance[key])
    return instance


def global_default(key: str) -> Any:
    """A global setting's default, as schemas/globals.schema.json states it."""
    return copy.deepcopy(load_schema("globals.schema.json")["properties"][key]["default"])


def pass_threshold(job: Mapping[str, Any] | None, override: float | None = None) -> float:
    """What a rollout's reward must reach to pass: `override` (--pass-threshold) when given, else
    the plan's `job.pass_threshold` (written only when the config sets it), else the default."""
    if override is not None:
        return float(override)
    value = (job or {}).get("pass_threshold")
    return float(value if value is not None else global_default("pass_threshold"))


def server_defaults(server_type: str, implementation: str) -> dict[str, Any]:
    """Every default of one implementation's config (a fresh copy: callers may change it)."""
    return copy.deepcopy(_defaults(server_type, implementation))


def default_of(server_type: str, implementation: str, key: str) -> Any:
    """One key's default (a fresh copy): for code that reads a hand-built config's missing key."""
    return copy.deepcopy(_defaults(server_type, implementation)[key])


@cache
def _plan_schema() -> dict[str, Any]:
    return load_schema("plan.schema.json")


def plan_default(*path: str) -> Any:
    """A plan key's default as schemas/plan.schema.json states it, e.g. ("nemo_gym",
    "startup_timeout_s"): what gym-run uses when a plan leaves the key out or null."""
    node: Any = _plan_schema()
    for key in path:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def model_defaults(implementation: str = "openai_model") -> dict[str, Any]:
    return server_defaults("responses_api_models", implementation)


def with_defaults(
    section: Mapping[str, Any] | None, name: str, implementation: str = "openai_model"
) -> dict[str, Any]:
    """A model config's `name` block (retry, timeouts, throttle, ...) with the keys left out filled
    from the schema; a plan from gym-compile has them all, a hand-built config may not."""
    base = model_defaults(implementation).get(name) or {}
    return {**base, **dict(section or {})}
