"""Who may talk to the servers gym-run starts: loopback by default, a bearer token otherwise,
never a browser page from another origin, and bounded request bodies; errors in the official
OpenAI shape. (Connections themselves are capped and timed out in servers/listen.py.)

In the order a request meets them: the bearer token (when one is set: nothing else is looked at,
no body is read, before it); the browser checks (a page on any site can make the user's browser
POST to 127.0.0.1 with `Content-Type: text/plain` and no preflight, or reach it through a DNS
name rebound to 127.0.0.1: such requests would spend the user's key); then the body is read whole,
within BODY_TIMEOUT_S, a large one only once it fits in the process's REQUEST_MEMORY.

Every app gym-run serves over HTTP is built by `guarded_app` (routes.py for `gym-run serve`,
loopback.py for the servers a run shows NeMo Gym processes) or carries `guard` (the head server,
in serve and run alike); the stand-in (standin/server.py) shares `refuse_remote`.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from gym_compile.plan_types import Plan
from gym_run.endpoint.memory import ByteBudget
from gym_run.errors import EXIT_USAGE, GymRunError
from gym_run.http import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Largest request body any served route reads (an input row with a long conversation fits).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
#: A request body must arrive within this long once its headers have (a byte a second does not).
BODY_TIMEOUT_S = 30.0
#: Bodies over LARGE_REQUEST_BYTES being read or handled at once, all served servers together.
REQUEST_MEMORY = ByteBudget(64 * 1024 * 1024)
LARGE_REQUEST_BYTES = 1024 * 1024
#: How long a large request waits for REQUEST_MEMORY before it is answered 503.
MEMORY_WAIT_S = 30.0
#: Bodies a page can send without a CORS preflight (no Content-Type at all is one too)
_NO_PREFLIGHT = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
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


def bind_hosts(plan: Plan, host: str | None = None) -> dict[str, str]:
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


def guarded_app(token: str | None = None, memory: ByteBudget | None = None) -> web.Application:
    """An aiohttp app behind `guard`, bodies capped at MAX_REQUEST_BYTES: the one way a served
    route is built, so no server gym-run starts can be reached by a page from elsewhere."""
    return web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[guard(token, memory)])


def guard(token: str | None, memory: ByteBudget | None = None) -> Middleware:
    """Middleware: the bearer token (constant-time compare) when one is set, then the browser
    checks, then the body read within its deadline and memory; aiohttp's own errors (404, 405,
    413) in the official error shape instead of text pages."""
    budget = memory if memory is not None else REQUEST_MEMORY

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                denied = _closing(
                    401,
                    "this server needs 'Authorization: Bearer <token>' (the token "
                    "gym-run serve printed, or GYM_SERVE_TOKEN)",
                )
                denied.headers["WWW-Authenticate"] = "Bearer"
                return denied
        refused = browser_refusal(request)
        if refused is not None:
            return refused
        try:
            return await _with_body(request, handler, budget)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, _http_message(exc, request))

    return middleware


def browser_refusal(request: web.Request) -> web.Response | None:
    """A 403/421/415 for what only a browser page from elsewhere would send; None otherwise.

    Programs (the OpenAI SDK, NeMo Gym, curl) send no Origin nor Sec-Fetch-Site and say their
    JSON is JSON; browsers always send Origin on a cross-origin POST."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site and site not in ("same-origin", "none"):
        return _closing(403, f"cross-origin requests are refused (Sec-Fetch-Site: {site})")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return _closing(403, f"cross-origin requests are refused (Origin: {origin[:100]})")
    local = request.transport.get_extra_info("sockname") if request.transport else None
    name = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    if local and is_loopback(str(local[0])) and not is_loopback(name):
        return _closing(
            421,
            f"this server answers requests for localhost only, not for {name[:100]!r} "
            "(a DNS name pointing at 127.0.0.1 is how a web page would reach it)",
        )
    given = request.headers.get("Content-Type")
    if request.method in ("POST", "PUT", "PATCH") and (
        given is None or request.content_type in _NO_PREFLIGHT
    ):
        return _closing(
            415,
            "send the body with 'Content-Type: application/json' (got "
            + (repr(given[:100]) if given is not None else "none")
            + "; a type a web page can send without asking is refused)",
        )
    return None


async def _with_body(
    request: web.Request, handler: Handler, budget: ByteBudget
) -> web.StreamResponse:
    """The body read before the route runs: whole within BODY_TIMEOUT_S, and a large one only
    once it fits in `budget` (held until the answer is sent, since the route works on it)."""
    if not request.body_exists:
        return await handler(request)
    size = request.content_length if request.content_length is not None else MAX_REQUEST_BYTES
    granted = 0
    if size > LARGE_REQUEST_BYTES:
        try:
            granted = await asyncio.wait_for(budget.reserve(size), MEMORY_WAIT_S)
        except asyncio.TimeoutError:
            busy = _closing(503, "busy with other large requests; try again shortly")
            busy.headers["Retry-After"] = "5"
            return busy
    try:
        try:
            await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return _closing(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s")
        response = await handler(request)
        if granted:  # aiohttp keeps a connection's last request (and its body) until the next
            response.force_close()
        return response
    finally:
        if granted:
            budget.release(granted)


def _closing(status: int, message: str) -> web.Response:
    """A refusal that also closes the connection: whatever body follows is never read."""
    response = error_response(status, message)
    response.force_close()
    return response


def _http_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 413:
        return f"request body too large: at most {MAX_REQUEST_BYTES} bytes"
    if exc.status == 405:
        return f"method {request.method} is not allowed for {request.path}"
    if exc.status == 404:
        return f"no route {request.method} {request.path}"
    return exc.reason
