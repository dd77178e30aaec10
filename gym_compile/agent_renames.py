"""agent_renames: after the directives, environment servers follow an agent that `_inherit_from`
moved to a new top-level name, as NeMo Gym 0.7 does (nemo_gym/global_config.py
`_recursively_swap_keys`, `_retarget_environment_servers`): with one destination, an environment
server's agent references are renamed to it; with several, a reference still naming the moved
agent is ambiguous, and NeMo Gym refuses the config.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gym_compile.diagnostics import Diagnostic, json_path
from gym_compile.sourcemap import SourceMap

AGENTS = "responses_api_agents"
ENVIRONMENT = "environment_servers"
_INHERIT_STR = "${inherit_from:"


def retarget(frozen: dict[str, Any], data: dict[str, Any], source: SourceMap) -> list[Diagnostic]:
    """`frozen`: the config before the directives ran; `data`: after. Renames in place."""
    original = {name for name, value in frozen.items() if _is_agent(value)}
    destinations: dict[str, list[str]] = {}
    for name, value in frozen.items():
        moved_from = _inherits(value)
        if moved_from in original:
            destinations.setdefault(moved_from, []).append(name)
    final = {name for name, value in data.items() if _is_agent(value)}
    moved = {
        src: [t for t in targets if t in final]
        for src, targets in destinations.items()
        if src not in data
    }
    problems: list[Diagnostic] = []
    for path, ref in _agent_refs(data):
        targets = moved.get(str(ref["name"]), [])
        if len(targets) == 1:
            ref["name"] = targets[0]
        elif len(targets) > 1:
            problems.append(
                Diagnostic(
                    "GYM029",
                    f"agent '{ref['name']}' was inherited into several names "
                    f"({', '.join(targets)}), and this environment server still refers to it",
                    source.at(path + ("name",)),
                    json_path(path + ("name",)),
                    hints=(
                        "give each new agent its own environment server that refers to it by name",
                    ),
                )
            )
    return problems


def _is_agent(value: Any) -> bool:
    """A top-level agent instance: one agent implementation under responses_api_agents."""
    agents = value.get(AGENTS) if isinstance(value, dict) else None
    return isinstance(agents, dict) and len(agents) == 1


def _inherits(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(_INHERIT_STR):
        return value.removeprefix(_INHERIT_STR).removesuffix("}")
    if isinstance(value, dict) and isinstance(value.get("_inherit_from"), str):
        return str(value["_inherit_from"])
    return None


def _agent_refs(data: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Each agent reference of each environment server: a field holding {type:
    responses_api_agents, name}, or `agent_server` with its type left out."""
    for name, instance in data.items():
        servers = instance.get(ENVIRONMENT) if isinstance(instance, dict) else None
        if not isinstance(servers, dict):
            continue
        for impl, config in servers.items():
            if not isinstance(config, dict):
                continue
            for field, ref in config.items():
                if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
                    continue
                if ref.get("type") == AGENTS or (field == "agent_server" and "type" not in ref):
                    yield (name, ENVIRONMENT, impl, field), ref
