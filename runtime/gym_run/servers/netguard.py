"""Who may talk to the servers gym-run starts: loopback by default, a bearer token otherwise,
and bounded request bodies; errors in the official OpenAI shape.

Shared by `gym-run serve` (runtime/gym_run/servers/serve.py) and the stand-in (runtime/gym_run/standin/server.py).
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gym_run.errors import EXIT_USAGE, GymRunError
from gym_run.http import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Largest request body any served route reads (an input row with a long conversation fits).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
TOKEN_ENV = "GYM_SERVE_TOKEN"


class RemoteBindRefused(GymRunError):
    """A server would be reachable from other machines and nobody asked for that."""

    exit_code = EXIT_USAGE


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; a name or a wildcard (0.0.0.0, ::, "") is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_remote(host: str, what: str) -> None:
    """PermissionError (an OSError, so callers word it like a taken port) for a non-loopback host."""
    if not is_loopback(host):
        raise PermissionError(
            errno.EACCES, f"refusing to serve {what} on {host!r}, which other machines can reach"
        )


def bind_hosts(plan: Mapping[str, Any], host: str | None = None) -> dict[str, str]:
    """Where each server will listen: `host` (the --host flag) for all, else each config's host."""
    return {
        name: host or spec["config"].get("host") or "127.0.0.1"
        for name, spec in plan["servers"].items()
    }


def check_binding(hosts: Mapping[str, str], *, allow_remote: bool) -> None:
    """Refuses, before anything starts, to listen beyond this machine unless asked to."""
    remote = {name: host for name, host in hosts.items() if not is_loopback(host)}
    if remote and not allow_remote:
        where = ", ".join(f"{name!r} on {host!r}" for name, host in sorted(remote.items()))
        raise RemoteBindRefused(
            f"refusing to listen beyond this machine ({where}): pass --allow-remote to do that; every "
            f"request must then carry 'Authorization: Bearer <token>' (the token is printed once, or "
            f"set {TOKEN_ENV})"
        )


def serve_token(environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """(token, generated?): GYM_SERVE_TOKEN when set, else a fresh random one."""
    given = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return (given, False) if given else (secrets.token_urlsafe(32), True)


def guard(token: str | None) -> Middleware:
    """Middleware: the bearer token (constant-time compare) when one is set, and aiohttp's own
    errors (404, 405, 413) in the official error shape instead of text pages."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                denied = error_response(
                    401,
                    "this server needs 'Authorization: Bearer <token>' (the token "
                    "gym-run serve printed, or GYM_SERVE_TOKEN)",
                    "invalid_request_error",
                )
                denied.headers["WWW-Authenticate"] = "Bearer"
                return denied
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, _http_message(exc, request))

    return middleware


def _http_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 413:
        return f"request body too large: at most {MAX_REQUEST_BYTES} bytes"
    if exc.status == 405:
        return f"method {request.method} is not allowed for {request.path}"
    if exc.status == 404:
        return f"no route {request.method} {request.path}"
    return exc.reason
