"""A verified plan in, permission to send the secrets it refers to out (or a refusal saying where
they would have gone).

The content hash only says a plan is intact; anyone can recompute it (gym_compile/signing.py). A
plan edited by someone else and re-hashed could point base_url at their host, or add a header fed
by an environment variable, and gym-run would send the key there. So no secret is resolved for a
plan unless its signature verifies under this user's plan key: a plan the user compiled, or one
compiled where the same GYM_PLAN_KEY is set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from gym_compile.canonical import SECRET_MARKER
from gym_compile.signing import KEY_ENV, verified
from gym_run.errors import SecretError

_SHOWN = 5


def check_trusted(plan: Mapping[str, Any], path: str = "the plan") -> None:
    """Raises SecretError (exit 4) when the plan's servers use secrets and it is not signed by
    this user; a plan without secrets needs no signature."""
    uses = list(secret_uses(plan.get("servers") or {}))
    if not uses:
        return
    ok, why = verified(dict(plan))
    if ok:
        return
    shown = "; ".join(uses[:_SHOWN]) + (
        f"; and {len(uses) - _SHOWN} more" if len(uses) > _SHOWN else ""
    )
    raise SecretError(
        f"{path} would send secrets ({shown}) but {why}, so gym-run sends none. A content hash "
        "shows a plan is intact, not who made it: recompile the plan yourself with gym-compile "
        f"(a plan compiled elsewhere: set {KEY_ENV} to the same value in both places)"
    )


def secret_uses(servers: Mapping[str, Any]) -> Iterator[str]:
    """'NAME as FIELD to ORIGIN' for every secret reference of every server."""
    for name, server in sorted(servers.items()):
        config = server.get("config") if isinstance(server, dict) else None
        if not isinstance(config, dict):
            continue
        where = _origin(config.get("base_url"), server.get("implementation"))
        for field, secret in _references(config, ()):
            yield f"{secret!r} as {field} to {where} (server {name})"


def _references(node: Any, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get(SECRET_MARKER), str):
            yield ".".join(path) or "(config)", node[SECRET_MARKER]
            return
        for key, value in node.items():
            yield from _references(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, (*path, str(i)))


def _origin(base_url: Any, implementation: Any) -> str:
    if not isinstance(base_url, str):
        return f"the {implementation} server" if implementation else "a server"
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: shown as written
        return base_url[:80]
    return f"{parts.scheme}://{host}{port}"
