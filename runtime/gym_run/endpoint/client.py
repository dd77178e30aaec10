"""Responses API request body in, Response JSON out: the one seam between the runtime and a model.

Every HTTP attempt goes through `_attempt`; `_call` wraps it in the retry policy (runtime/gym_run/endpoint/retry.py)
and the endpoint's pacing gate (runtime/gym_run/endpoint/ratelimit.py). Tests swap the endpoint (a stand-in or a
recording server), never this code path.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from gym_compile.secretscan import mask_text
from gym_run.endpoint.callstats import CallStats, note_retry
from gym_run.endpoint.ratelimit import Gate
from gym_run.endpoint.retry import Failure, RetryPolicy
from gym_run.endpoint.sse import final_response, is_event_stream
from gym_run.errors import ModelCallError
from gym_run.secrets import REDACT, Redactor

_MAX_ERROR_TEXT = 500
PROBE_TIMEOUT_S = 30.0
#: An answer (decompressed) larger than this is refused unread: a Response is kilobytes, so more
#: is a misbehaving endpoint, and reading it would risk the whole run's memory.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_READ_CHUNK = 64 * 1024


class ModelClient(Protocol):
    """What a model server needs from an endpoint."""

    async def create(self, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None disables a limit (the official SDK's defaults: 5 s connect, 600 s read)."""

    connect: float | None = 5
    read: float | None = 600
    total: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Timeouts:
        config = config or {}
        return cls(
            connect=config.get("connect", cls.connect),
            read=config.get("read", cls.read),
            total=config.get("total", cls.total),
        )

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )

    def capped(self, limit: float) -> Timeouts:
        """The same limits, none longer than `limit` (a preflight probe must answer quickly)."""
        return Timeouts(
            *(limit if v is None else min(v, limit) for v in (self.connect, self.read, self.total))
        )


@dataclass(frozen=True)
class ProbeResult:
    """One single-attempt request: the answer's status and latency, or the error it raised."""

    latency_s: float
    error: ModelCallError | None


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class OpenAIClient:
    """POST {base_url}/responses on a shared session; the api key never appears in a message."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        model: str,
        default_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
        max_concurrent_requests: int | None = None,
        retry: RetryPolicy | None = None,
        throttle: Mapping[str, Any] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        stream: bool = False,
    ) -> None:
        self._session = session
        self.stream = stream  # ask for server-sent events; the final Response is read from them
        self.base_url = base_url.rstrip("/")
        self._where = mask_text(self.base_url)  # as messages show it: no user:password@
        self.model = model
        self._headers = {
            **(default_headers or {}),
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        # Whatever we send may be echoed back; none of it may reach a record or a log.
        sent = [
            v
            for k, v in self._headers.items()
            if k.lower() != "content-type" and isinstance(v, str)
        ]
        self._redactor = Redactor([api_key, *sent])
        self.max_response_bytes = max_response_bytes
        self._extra_body = dict(extra_body or {})
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.gate = Gate.from_config(max_concurrent_requests, throttle)
        self.stats = CallStats()
        self._rng = random.Random()

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request's `model` is always replaced by the configured one (NeMo Gym does the same)."""
        payload = self._payload(body)
        return await self._call("/responses", payload, self.retry, self.timeouts)

    def _payload(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = {**self._extra_body, **body, "model": self.model}
        if self.stream:
            payload["stream"] = True
        return payload

    async def probe(self) -> ProbeResult:
        """One tiny request, no retry, short timeouts: does the key, the model and the URL work?"""
        started = time.monotonic()
        try:
            await self.create_once({"input": "ping", "max_output_tokens": 16})
        except ModelCallError as exc:
            return ProbeResult(time.monotonic() - started, exc)
        return ProbeResult(time.monotonic() - started, None)

    async def create_once(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = self._payload(body)
        return await self._call(
            "/responses", payload, RetryPolicy.none(), self.timeouts.capped(PROBE_TIMEOUT_S)
        )

    async def _call(
        self, path: str, payload: dict[str, Any], policy: RetryPolicy, timeouts: Timeouts
    ) -> dict[str, Any]:
        """Attempts until one succeeds or the policy gives up; the error says how many were made."""
        url = self.base_url + path
        data = json.dumps(payload, ensure_ascii=False).encode()
        estimate = len(data) // 4 + int(payload.get("max_output_tokens") or 0)
        timeout = timeouts.client_timeout()
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = await self._attempt(url, data, estimate, timeout)
            except _AttemptFailed as exc:
                failure = exc.failure
                if failure.kind in (
                    "too_large",
                    "unsendable",
                ):  # the same request would fail the same way
                    wait, why = None, ""
                else:
                    wait, why = policy.decide(
                        failure, attempts, time.monotonic() - started, self._rng
                    )
                if wait is None:
                    self._finish(attempts, failed=True)
                    message = f"{failure.message}; {why}" if why else failure.message
                    raise ModelCallError(
                        failure.status, message, failure.request_id, failure.error_type, attempts
                    ) from None
                self.stats.retries += 1
                note_retry()
                await asyncio.sleep(wait)
                continue
            self._finish(attempts, failed=False)
            return answer

    def _finish(self, attempts: int, *, failed: bool) -> None:
        self.stats.calls += 1
        self.stats.failed += failed
        self.stats.max_attempts = max(self.stats.max_attempts, attempts)

    async def _attempt(
        self, url: str, data: bytes, estimate: int, timeout: aiohttp.ClientTimeout
    ) -> dict[str, Any]:
        """The one place an HTTP request is sent; every way it can fail becomes a `Failure`."""
        async with self.gate.slot(estimate) as outcome:
            self.stats.requests += 1
            try:
                async with self._session.post(
                    url, data=data, headers=self._headers, timeout=timeout
                ) as resp:
                    status, headers = resp.status, resp.headers
                    reason = resp.reason
                    text = await self._read(resp)
            except asyncio.TimeoutError:
                raise _AttemptFailed(
                    Failure("timeout", f"timed out waiting for {self._where}")
                ) from None
            except ValueError as exc:  # aiohttp refuses to build it: a line break in a header, user:pass@ in the URL
                reason = _cut(self._redact(str(exc)), 200)
                raise _AttemptFailed(
                    Failure(
                        "unsendable",
                        f"cannot send a request to {self._where}: {reason} (check api_key "
                        "and default_headers for line breaks, and base_url for user:password@)",
                    )
                ) from None
            except aiohttp.ClientResponseError as exc:  # an answer aiohttp cannot parse as HTTP
                reason = _cut(self._redact(exc.message or type(exc).__name__), 200)
                raise _AttemptFailed(
                    Failure("connection", f"{self._where} answered with broken HTTP: {reason}")
                ) from None
            except aiohttp.ClientError as exc:
                reason = _cut(self._redact(str(exc) or type(exc).__name__), 200)
                raise _AttemptFailed(
                    Failure("connection", f"cannot reach {self._where}: {reason}")
                ) from None
            request_id = headers.get("x-request-id")
            if not 200 <= status < 300:
                outcome.rate_limited = status == 429
                self.stats.rate_limited += status == 429
                message, error_type = _error_from_body(self._redact(text), reason)
                raise _AttemptFailed(
                    Failure(
                        "status", self._redact(message), status, headers, request_id, error_type
                    )
                )
            sse = is_event_stream(headers.get("Content-Type"))
            streamed = final_response(text) if sse else None
            if streamed is not None and streamed.response is None:  # retried, like a non-Response
                raise _AttemptFailed(
                    Failure(
                        "malformed",
                        f"{self._where} answered {status} with an event stream that "
                        f"{'failed: ' if streamed.kind == 'failed' else 'ended early: '}"
                        f"{_cut(self._redact(streamed.message), 200)}",
                        status,
                        headers,
                        request_id,
                        streamed.error_type,
                    )
                )
            parsed = streamed.response if streamed is not None else _json_object(text)
            if parsed is None:
                snippet = self._redact(text)[:200]  # masked before it is cut: no half a key
                raise _AttemptFailed(
                    Failure(
                        "malformed",
                        f"{self._where} answered {status} with a body that is not a JSON object: "
                        f"{snippet!r}",
                        status,
                        headers,
                        request_id,
                    )
                )
            outcome.ok = True
            usage = parsed.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
                outcome.tokens = usage["total_tokens"]
            return parsed

    async def _read(self, resp: aiohttp.ClientResponse) -> str:
        """The body as text, refused past max_response_bytes (announced or actually sent)."""
        limit = self.max_response_bytes
        announced = resp.content_length
        if announced is not None and announced > limit:
            raise self._too_large(resp, f"announces {announced} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise self._too_large(resp, f"sent more than {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return raw.decode(resp.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return raw.decode("utf-8", errors="replace")

    def _too_large(self, resp: aiohttp.ClientResponse, what: str) -> _AttemptFailed:
        return _AttemptFailed(
            Failure(
                "too_large",
                f"{self._where} answered {resp.status} with a body that {what}, over the "
                f"{self.max_response_bytes}-byte limit of gym-run (not retried)",
                resp.status,
                resp.headers,
                resp.headers.get("x-request-id"),
                "response_too_large",
            )
        )

    def _redact(self, text: str) -> str:
        """Some endpoints echo the key or headers they were sent; they must not reach a log or rollout."""
        return REDACT(self._redactor(text))


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _error_from_body(text: str, reason: str | None) -> tuple[str, str | None]:
    """The official error shape {"error": {"message", "type", ...}}; anything else as raw text."""
    body = _json_object(text)
    if body is not None:
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return _cut(str(err["message"])), (
                _cut(str(err["type"]), 100) if err.get("type") else None
            )
        if isinstance(err, str) and err:
            return _cut(err), None
        if isinstance(body.get("message"), str):
            return _cut(body["message"]), None
    snippet = _cut(text.strip())
    return snippet or (reason or "no error message"), None


def _cut(text: str, limit: int = _MAX_ERROR_TEXT) -> str:
    """Error text as recorded: an endpoint's message can be megabytes; a record line should not."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_session(limit: int) -> aiohttp.ClientSession:
    """One session per run: connections are pooled across rollouts, sized to what can be in flight.

    No cookie jar: a NeMo Gym server's session cookie belongs to one rollout and is passed on per
    request (servers/external.py), never shared with the next rollout through the session."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar()
    )
