"""Fault injection and error answers (official error bodies) of the stand-in model server.

Split from runtime/gym_run/standin/server.py so the "what goes wrong" knobs live apart from the "what a model
answers" logic. Faults reproduce the failures a real endpoint shows (429 with Retry-After, 5xx,
dropped connections, latency spikes, broken JSON) so retry and timeout code can be tested offline
and reproducibly: every draw comes from random.Random(seed).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gym_run.defaults import model_defaults
from gym_run.http import error_response

_log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_PAD_BYTES = 256 * 1024 * 1024

#: Exclusive faults, in the order their fractions are stacked on one uniform draw.
EXCLUSIVE_KINDS = ("rate_limit", "server_error", "drop", "malformed")


_DEFAULTS = model_defaults("stand_in_model")["faults"]


@dataclass(frozen=True)
class Faults:
    """Fractions in [0, 1] of requests that get each fault; defaults from the stand-in's schema.

    rate_limit, server_error, drop and malformed are exclusive (one draw, stacked fractions, so
    each kind hits exactly its fraction on average; their sum must be <= 1). slow is drawn
    independently and only delays a request that is then answered normally. The answer faults
    (empty_output, drip, always_call, pad_bytes) change what a normal answer looks like; they
    draw from their own stream so adding one leaves the others' sequence unchanged.
    """

    rate_limit: float = _DEFAULTS["rate_limit"]
    server_error: float = _DEFAULTS["server_error"]
    drop: float = _DEFAULTS["drop"]
    slow: float = _DEFAULTS["slow"]
    malformed: float = _DEFAULTS["malformed"]
    slow_ms: float = _DEFAULTS["slow_ms"]
    retry_after_ms: float | None = _DEFAULTS["retry_after_ms"]
    empty_output: float = _DEFAULTS["empty_output"]
    always_call: bool = _DEFAULTS["always_call"]
    drip: float = _DEFAULTS["drip"]
    drip_bytes_per_s: float = _DEFAULTS["drip_bytes_per_s"]
    pad_bytes: int = _DEFAULTS["pad_bytes"]
    seed: int = _DEFAULTS["seed"]

    def __post_init__(self) -> None:
        """Reject impossible settings at start-up rather than mid-benchmark."""
        for name in (*EXCLUSIVE_KINDS, "slow", "empty_output", "drip"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be a fraction in [0, 1], got {value!r}")
        if sum(getattr(self, name) for name in EXCLUSIVE_KINDS) > 1.0 + 1e-9:
            raise ValueError(
                "Faults.rate_limit + server_error + drop + malformed must not exceed 1"
            )
        if self.slow_ms < 0:
            raise ValueError(f"Faults.slow_ms must be >= 0, got {self.slow_ms!r}")
        if self.retry_after_ms is not None and self.retry_after_ms < 0:
            raise ValueError(f"Faults.retry_after_ms must be >= 0, got {self.retry_after_ms!r}")
        if self.drip_bytes_per_s <= 0:
            raise ValueError(f"Faults.drip_bytes_per_s must be > 0, got {self.drip_bytes_per_s!r}")
        if not 0 <= self.pad_bytes <= MAX_PAD_BYTES:
            raise ValueError(
                f"Faults.pad_bytes must be in [0, {MAX_PAD_BYTES}], got {self.pad_bytes!r}"
            )

    @property
    def any(self) -> bool:
        """True when some fault can happen (lets the server skip drawing entirely)."""
        return any(getattr(self, name) > 0 for name in (*EXCLUSIVE_KINDS, "slow"))


class FaultInjector:
    """Draws a fault per request and produces it; one instance per app, so one seeded stream."""

    def __init__(self, faults: Faults, stats: Counter[str]) -> None:
        self.faults = faults
        self.stats = stats
        self._rng = random.Random(faults.seed)
        self._answers = random.Random(faults.seed + 1)  # the answer faults' own stream
        self._server_errors = 0
        self._pad = "x" * faults.pad_bytes

    def shape(self, answer: dict[str, Any]) -> bool:
        """Applies the answer faults to a normal answer in place; True when it must be dripped."""
        f = self.faults
        if f.empty_output > 0 and self._answers.random() < f.empty_output:
            self.stats["empty_output"] += 1
            answer["output"] = []
        if self._pad:
            for item in answer["output"]:
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        part["text"] += " " + self._pad
        drip = f.drip > 0 and self._answers.random() < f.drip
        self.stats["drip"] += drip
        return drip

    async def drip(self, request: web.Request, answer: dict[str, Any]) -> web.StreamResponse:
        """Headers at once, then the body at drip_bytes_per_s: defeats a per-read timeout."""
        body = json.dumps(answer).encode()
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "x-request-id": "req_" + uuid.uuid4().hex}
        )
        response.content_length = len(body)
        await response.prepare(request)
        pause = 1.0 / self.faults.drip_bytes_per_s
        for i in range(len(body)):
            await response.write(body[i : i + 1])
            await asyncio.sleep(pause)
        await response.write_eof()
        return response

    def draw(self) -> tuple[str | None, bool]:
        """(exclusive fault kind or None, slow?). Always two draws, so the stream stays aligned."""
        u_exclusive, u_slow = self._rng.random(), self._rng.random()
        kind = None
        edge = 0.0
        for name in EXCLUSIVE_KINDS:
            edge += getattr(self.faults, name)
            if u_exclusive < edge:
                kind = name
                break
        return kind, u_slow < self.faults.slow

    async def apply(self, request: web.Request) -> web.StreamResponse | None:
        """Returns the faulty response, or None to continue with normal handling."""
        if not self.faults.any:
            return None
        kind, slow = self.draw()
        if kind is None:
            if slow:
                self.stats["slow"] += 1
                await asyncio.sleep(self.faults.slow_ms / 1000)
            return None
        self.stats[kind] += 1
        if kind == "rate_limit":
            return self._rate_limited()
        if kind == "server_error":
            return self._server_error()
        if kind == "drop":
            return self._drop(request)
        return self._malformed()

    def _rate_limited(self) -> web.Response:
        """429 like OpenAI's, with the headers the official SDK reads for its back-off."""
        headers = {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
        }
        ms = self.faults.retry_after_ms
        if ms is not None:
            headers["retry-after-ms"] = f"{ms:g}"
            # HTTP's Retry-After is whole seconds; rounding up never invites an early retry.
            headers["retry-after"] = str(math.ceil(ms / 1000))
            headers["x-ratelimit-reset-requests"] = f"{ms:g}ms"
        return error_response(
            429,
            "Rate limit reached on requests per min (RPM): Limit 60, Used 60, Requested 1. "
            "Please try again later. (injected by the stand-in's faults)",
            "requests",
            code="rate_limit_exceeded",
            headers=headers,
        )

    def _server_error(self) -> web.Response:
        """Alternates 500 and 503 so clients are exercised on both retryable statuses."""
        self._server_errors += 1
        if self._server_errors % 2:
            return error_response(
                500,
                "The server had an error while processing your request. Sorry about that! "
                "(injected by the stand-in's faults)",
                "server_error",
            )
        return error_response(
            503,
            "The engine is currently overloaded, please try again later. "
            "(injected by the stand-in's faults)",
            "server_error",
            code="engine_overloaded",
        )

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Closes the socket; writing the returned response then fails, and aiohttp drops it."""
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=500)

    @staticmethod
    def _malformed() -> web.Response:
        """A 200 cut off mid-object, as seen from proxies that truncate bodies."""
        return web.Response(
            status=200,
            body=b'{"id": "resp_truncated", "object": "response", "output": [{"type": "mess',
            content_type="application/json",
        )


# ---------------------------------------------------------------- error answers of the server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _mask_key(key: str) -> str:
    """OpenAI-style key masking; a short key is hidden entirely, never echoed."""
    return "*" * 8 if len(key) < 8 else f"{key[:3]}****{key[-2:]}"


@web.middleware
async def errors_and_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer gets an x-request-id; aiohttp's errors (404, 405, 413) and crashes the
    official error shape."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        request.app["stats"]["not_found" if exc.status == 404 else "bad_request"] += 1
        messages = {
            404: f"Invalid URL ({request.method} {request.path})",
            405: f"Method {request.method} is not allowed for {request.path}",
            413: f"Request body too large: the stand-in accepts at most {MAX_BODY_BYTES} bytes.",
        }
        response = error_response(exc.status, messages.get(exc.status, exc.reason))
    except ConnectionError:
        raise
    except Exception as exc:  # a bug or an odd body must still get the official shape
        _log.exception("stand-in failed on %s %s", request.method, request.path)
        request.app["stats"]["internal_error"] += 1
        message = f"The stand-in failed on this request ({type(exc).__name__})."
        response = error_response(500, message, "server_error")
    if not response.prepared:  # a stream has sent its headers, its own request id among them
        response.headers["x-request-id"] = "req_" + uuid.uuid4().hex
    return response


def unauthorized(request: web.Request, api_key: str | None) -> web.Response | None:
    """A 401 unless the Bearer key matches (constant-time); the key is never echoed in full."""
    if api_key is None:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if (
        scheme.lower() == "bearer"
        and given
        and hmac.compare_digest(given.encode(), api_key.encode())
    ):
        return None
    request.app["stats"]["unauthorized"] += 1
    if scheme.lower() != "bearer" or not given:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        message = (
            f"Incorrect API key provided: {_mask_key(given)}. Check the key given to the stand-in."
        )
    return error_response(401, message, code="invalid_api_key")


def bad_request(body: Any) -> tuple[str, str | None] | None:
    """(message, param) when the body cannot be answered; the checks OpenAI would fail first."""
    if not isinstance(body, dict):
        return f"Invalid body: expected a JSON object, but got {type(body).__name__} instead.", None
    if "input" not in body:
        return "Missing required parameter: 'input'.", "input"
    if not isinstance(body["input"], (str, list)):
        return (
            "Invalid type for 'input': expected one of a string or an array of input items.",
            "input",
        )
    if (problem := model_and_tools(body)) is not None:
        return problem
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") == "function" and not isinstance(tool.get("name"), str):
            return f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name"
    return None


def model_and_tools(body: dict[str, Any]) -> tuple[str, str] | None:
    """The `model` and `tools` checks both APIs (Responses, Chat Completions) make first."""
    if "model" in body and not isinstance(body["model"], str):
        return "Invalid type for 'model': expected a string.", "model"
    tools = body.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, dict) for t in tools)
    ):
        return "Invalid type for 'tools': expected an array of objects.", "tools"
    return None
