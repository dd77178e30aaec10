"""A plan's servers and their addresses in, NeMo Gym's global config dict out: what NeMo Gym's
servers read from `NEMO_GYM_CONFIG_DICT` and its collector from the head server.

NeMo Gym finds every server through this one dict: `<instance>.<type>.<implementation>.host/port`,
plus `head_server: {host, port}`. A child server reads the dict from its environment and trusts it
as is (no defaults are filled in), so everything NeMo Gym's `run_webserver` reads must be present.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from gym_compile.plan_types import ServerEntry

Address = tuple[str, int]

SECRET_MARKER = "$secret"
MASK = "****"  # what NeMo Gym itself shows for a hidden secret

# Global keys NeMo Gym's servers read with [] (a KeyError otherwise); defaults as `ng_run` sets them.
SERVER_GLOBALS: dict[str, Any] = {"dry_run": False}


#: The model routes NeMo Gym's servers call on a model server.
MODEL_ROUTES = ("/v1/responses", "/v1/chat/completions")


def model_paths(route: str) -> tuple[str, ...]:
    """`route` and its per-rollout forms: NeMo Gym >= 0.7 agents correlate model calls to a
    rollout with a `/ng-rollout/<id>` prefix (`/ng-rollout/<id>/training-token-capture` when
    capturing token ids) that a model server strips before routing."""
    rollout = "/ng-rollout/{rollout_id}"
    return (route, rollout + route, f"{rollout}/training-token-capture{route}")


def url_of(address: Address) -> str:
    host, port = address
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def nemo_global_config(
    servers: Mapping[str, ServerEntry],
    addresses: Mapping[str, Address],
    head: Address,
    *,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """NeMo Gym's merged config for `servers` (the plan's `servers`: type, implementation, config).

    `addresses` gives each instance's host/port (a server without one is left out: nobody can
    reach it). `extra` adds global keys (NeMo Gym settings a server may read). Secret references
    left in a config (`{"$secret": NAME}`) are shown as NeMo Gym shows hidden secrets.
    """
    out: dict[str, Any] = copy.deepcopy(dict(extra or {}))
    out.update(SERVER_GLOBALS)  # what gym-run decides (a user's dry_run would start nothing)
    for name, spec in servers.items():
        if name not in addresses:
            continue
        host, port = addresses[name]
        config = _masked(copy.deepcopy(dict(spec.get("config") or {})))
        config.pop("url", None)
        config.setdefault("entrypoint", "app.py")
        config["host"], config["port"] = host, port
        out[name] = {spec["type"]: {spec["implementation"]: config}}
    out["head_server"] = {"host": head[0], "port": head[1]}
    return out


def config_yaml(config: Mapping[str, Any]) -> str:
    """YAML as OmegaConf reads it back: `${` in a value stays literal text (escaped)."""
    return yaml.safe_dump(_escaped(config), sort_keys=False, allow_unicode=True)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {SECRET_MARKER}:
            return MASK
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _escaped(value: Any) -> Any:
    """OmegaConf would resolve `${...}` found in a value; the plan's values are final text."""
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, Mapping):
        return {str(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    return value
