"""The official OpenAI error body as an aiohttp response: one builder for every server of ours
(serve, the network guard, the stand-in), so OpenAI clients pointed at any of them read our errors."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """All four keys are always present, as OpenAI's clients expect."""
    body: dict[str, Any] = {
        "error": {"message": message, "type": type_, "param": param, "code": code}
    }
    return web.json_response(body, status=status, headers=headers)
