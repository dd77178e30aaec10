"""An aiohttp app in, a listening server that stays answerable under hostile connections out.

20,000 connections that never finish a request used to take every file descriptor of
`gym-run serve`: nobody else got an answer. Here each listening server
- caps its open connections; at the cap, a new connection pushes out the oldest one that is not
  serving a request (half-open ones first, they never are), so a real client still gets in;
- closes a connection that has not sent a whole request HEADER_TIMEOUT_S after it opened, one
  idle KEEPALIVE_S after its last answer (aiohttp's keep-alive timer), and one whose request was
  refused unread after LINGER_S of draining its body;
- marks a connection busy while a request is handled (the `busy` middleware), so only idle ones
  are ever pushed out.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER_TIMEOUT_S = 10.0
KEEPALIVE_S = 15.0
LINGER_S = 1.0  # a refused request's unread body is drained (and dropped) this long at most
MAX_CONNECTIONS = 1024  # per listening server; lowered to fit the open-file limit (fitted_cap)


class Connections:
    """The open connections of one listening server, oldest first."""

    def __init__(self, cap: int, header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        self.cap = cap
        self.header_timeout_s = header_timeout_s
        self._open: collections.OrderedDict[RequestHandler, None] = collections.OrderedDict()
        self._busy: dict[Any, int] = {}  # transport -> requests being handled on it
        self._served: set[Any] = set()  # transports that sent at least one whole request
        self.evicted = 0

    def factory(self, make: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
        """Wraps aiohttp's protocol factory: one call per accepted connection."""

        def protocol() -> RequestHandler:
            if len(self._open) >= self.cap:
                self._make_room()
            handler = make()
            self._open[handler] = None
            loop = asyncio.get_running_loop()
            loop.call_later(self.header_timeout_s, self._expire, handler)
            return handler

        return protocol

    @web.middleware
    async def busy(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        self._served.add(transport)
        self._busy[transport] = self._busy.get(transport, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self._busy.pop(transport, 1) - 1
            if left:
                self._busy[transport] = left

    def _make_room(self) -> None:
        """Forgets closed connections (aiohttp tells its own manager, not us); if still at the cap,
        closes the oldest idle one, preferring one that never sent a request. Oldest first, so
        under a flood of half-open connections the first look finds one."""
        victim = fallback = None
        for handler in list(self._open):
            transport = handler.transport
            if transport is None:  # accepted, not yet started: leave it be
                continue
            if transport.is_closing():
                self._open.pop(handler, None)
                self._served.discard(transport)
            elif transport not in self._busy:
                if transport not in self._served:
                    victim = handler
                    break
                fallback = fallback or handler
        victim = victim or fallback
        if victim is not None and len(self._open) >= self.cap:
            self._close(victim)
            self.evicted += 1

    def _expire(self, handler: RequestHandler) -> None:
        """HEADER_TIMEOUT_S after it opened: a connection that never sent a whole request goes."""
        if handler in self._open and handler.transport not in self._served:
            self._close(handler)

    def _close(self, handler: RequestHandler) -> None:
        self._open.pop(handler, None)
        self._served.discard(handler.transport)
        handler.force_close()


class CappedSite(web.TCPSite):
    """web.TCPSite whose connections are counted and capped by `connections`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, connections: Connections):
        super().__init__(runner, host, port, backlog=1024)
        self.connections = connections

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.connections.factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


def fitted_cap(servers: int) -> int:
    """MAX_CONNECTIONS, or fewer so `servers` listening servers stay within half the open-file
    limit (the other half is for their own calls to the model endpoint)."""
    try:
        import resource
    except ImportError:
        return MAX_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:  # as much room as we are allowed
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft // 2 // max(1, servers)))


async def listen(
    app: web.Application, host: str, port: int, connections: Connections
) -> web.AppRunner:
    """Starts `app` on host:port behind `connections`; the caller cleans the runner up."""
    app.middlewares.insert(0, connections.busy)
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=KEEPALIVE_S, lingering_time=LINGER_S
    )
    await runner.setup()
    try:
        await CappedSite(runner, host, port, connections).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
