"""instances: which top-level keys of a merged config are server instances, and their shape.

NeMo Gym treats a top-level mapping holding a server-type key as a server (its pydantic class ignores
other keys beside it); a mapping of one key that looks like a server type (a typo) is treated as one
too, so it is reported rather than silently taken for a setting.
"""

from __future__ import annotations

from typing import Any, Protocol

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, did_you_mean, json_path
from gym_compile.directives import DIRECTIVE_KEYS
from gym_compile.interpolate import Resolved


class _Out(Protocol):
    @property
    def resolved(self) -> Resolved: ...

    @property
    def diagnostics(self) -> list[Diagnostic]: ...


def server_type_of(value: Any) -> str | None:
    """A top-level mapping with a server-type key (NeMo Gym ignores other keys beside it), or of
    one key that looks like a server type, is a server instance: never silently a setting."""
    if not isinstance(value, dict) or not value:
        return None
    types = [k for k in value if k in catalog.SERVER_TYPES]
    if types:
        return types[0]
    if len(value) != 1:
        return None
    ((key, inner),) = value.items()
    looks_nested = (
        isinstance(inner, dict) and len(inner) == 1 and isinstance(next(iter(inner.values())), dict)
    )
    if looks_nested or did_you_mean(key, catalog.SERVER_TYPES):
        return key
    return None


def beside_type(out: _Out, name: str, value: dict[str, Any]) -> dict[str, Any]:
    """Keys beside the server type: reported (NeMo Gym ignores them silently); the type is kept."""
    loc = out.resolved.merged.source.key_at
    types = [k for k in value if k in catalog.SERVER_TYPES]
    if not types:
        return value
    for key in value:
        if key in DIRECTIVE_KEYS:
            continue  # a directive NeMo Gym left in place: reported by the directives stage
        if key in types[:1]:
            continue
        if key in types:
            message = (
                f"server instance '{name}' has a second server type '{key}' beside '{types[0]}'"
            )
            hints: tuple[str, ...] = (
                "an instance is one server: give each its own top-level name",
            )
        else:
            message = f"unknown key '{key}' beside the server type of instance '{name}'"
            hints = (
                f"NeMo Gym ignores it; fields of the server go under {name}.{types[0]}.<impl>",
            )
        out.diagnostics.append(
            Diagnostic("GYM037", message, loc((name, key)), json_path((name, key)), hints=hints)
        )
    return {types[0]: value[types[0]]}
