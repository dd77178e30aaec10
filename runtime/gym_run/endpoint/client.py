"""Responses API request body in, Response JSON out (or a Chat Completions body in, a chat
completion out: NeMo Gym's judges and some agents call a model server's `/v1/chat/completions`):
the one seam between the runtime and a model.

Every HTTP attempt goes through `_attempt`; `_call` wraps it in the retry policy (endpoint/retry.py),
the endpoint's pacing gate (endpoint/ratelimit.py), the circuit breaker and the run's hooks
(endpoint/watch.py); a large answer first reserves memory (endpoint/memory.py). Tests swap the
endpoint (a stand-in or a recording server), never this code path. Defaults: the schema's.
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

from gym_compile.secretscan import credential_header, mask_text
from gym_run.defaults import model_defaults, with_defaults
from gym_run.endpoint.answer import cut, error_from_body, json_object
from gym_run.endpoint.callstats import CallStats, note_pause, note_retry
from gym_run.endpoint.memory import LARGE_ANSWER_BYTES, ByteBudget, Hold
from gym_run.endpoint.ratelimit import Gate
from gym_run.endpoint.retry import Failure, RetryPolicy, Tally
from gym_run.endpoint.sse import final_response, is_event_stream
from gym_run.endpoint.timeouts import Timeouts
from gym_run.endpoint.watch import Breaker, Watch
from gym_run.errors import ModelCallError
from gym_run.secrets import REDACT, Redactor

PROBE_TIMEOUT_S = 30.0
_DEFAULTS = model_defaults()
#: An answer (decompressed) larger than this is refused unread: a Response is kilobytes, so more
#: is a misbehaving endpoint, and reading it would risk the whole run's memory.
MAX_RESPONSE_BYTES: int = _DEFAULTS["max_response_bytes"]
#: aiohttp >= 3.10 tells a connect timeout (the endpoint cannot be reached) from a slow answer
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())
_READ_CHUNK = 64 * 1024


class ModelClient(Protocol):
    """What a model server needs from an endpoint."""

    async def create(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]: ...


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
        max_buffered_response_bytes: int | None = _DEFAULTS["max_buffered_response_bytes"],
        circuit_breaker: Mapping[str, Any] | None = None,
        name: str = "",
        stream: bool = False,
        key_is_secret: bool = True,
    ) -> None:
        self._session = session
        self.name = name or model  # the model server's name in the plan, for messages
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
        self._redactor = Redactor([api_key, *sent] if key_is_secret else sent)
        # An answer's text may quote the key too (a valid 200 echoing the request): what is
        # masked there is narrower, so ordinary header values (X-Title) stay in model output.
        credentials = [v for k, v in (default_headers or {}).items() if credential_header(k)]
        self._answer_redactor = Redactor([api_key, *credentials] if key_is_secret else credentials)
        self.max_response_bytes = max_response_bytes
        self._extra_body = dict(extra_body or {})
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.gate = Gate.from_config(max_concurrent_requests, throttle)
        self.stats = CallStats()
        self.breaker = Breaker(
            with_defaults(circuit_breaker, "circuit_breaker")["consecutive_failures"]
        )
        self.memory = (
            ByteBudget(max_buffered_response_bytes) if max_buffered_response_bytes else None
        )
        #: set by a collection run: the budget sees spend as it happens, the breaker can stop it
        self.watch: Watch | None = None
        self._rng = random.Random()

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request's `model` is always replaced by the configured one (NeMo Gym does the same)."""
        payload = self._payload(body)
        return await self._call("/responses", payload, self.retry, self.timeouts)

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST {base_url}/chat/completions, with the same retries, limits, breaker and budget as
        `create`; never streamed (the answer is read whole, as NeMo Gym's model servers do)."""
        payload = {**self._extra_body, **body, "model": self.model}
        for key in ("stream", "stream_options"):
            payload.pop(key, None)
        return await self._call("/chat/completions", payload, self.retry, self.timeouts)

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
        estimate = len(data) // 4 + _max_tokens(payload)
        timeout = timeouts.client_timeout()
        self._check()
        tally = Tally(started=time.monotonic())
        while True:
            tally.attempts += 1
            try:
                answer = await self._attempt(url, data, estimate, timeout)
            except _AttemptFailed as exc:
                failure = exc.failure
                if failure.rate_limited:
                    tally.rate_limited += 1
                else:
                    tally.failures += 1
                if failure.kind in ("too_large", "unsendable"):  # would fail the same way again
                    wait, why = None, ""
                else:
                    wait, why = policy.decide(failure, tally, self._rng)
                if wait is None:
                    self._finish(tally.attempts, failed=True)
                    self._failed(failure)
                    message = f"{failure.message}; {why}" if why else failure.message
                    raise ModelCallError(
                        failure.status,
                        message,
                        failure.request_id,
                        failure.error_type,
                        tally.attempts,
                    ) from None
                self.stats.retries += 1
                note_retry()
                if failure.rate_limited:  # back-pressure: not held against the rollout's deadline
                    tally.rate_limited_s += wait
                    note_pause(wait)
                await asyncio.sleep(wait)
                self._check()
                continue
            self._finish(tally.attempts, failed=False)
            self.breaker.success()
            if self.watch is not None:
                self.watch.spent(self.name, answer.get("usage"))
            return answer

    def _check(self) -> None:
        """No model call starts (or retries) once the run has stopped admitting them."""
        if self.watch is not None:
            self.watch.check()

    def _failed(self, failure: Failure) -> None:
        """A call failed for good: the breaker may stop the run; once stopped, the rollout that
        asked is abandoned (RunStopped), not recorded as one more identical failure."""
        if self.breaker.failure(failure) and self.watch is not None:
            self.watch.endpoint_down(self.name, self._down_reason(failure))
        self._check()

    def _down_reason(self, failure: Failure) -> str:
        count = self.breaker.count
        if failure.kind == "connection":
            return f"{count} model calls in a row could not reach the endpoint: {failure.message}"
        kind = (
            f" {failure.code or failure.error_type}" if failure.code or failure.error_type else ""
        )
        return (
            f"{self._where} answered HTTP {failure.status}{kind} to {count} model calls in a "
            f"row: {cut(failure.message, 200).rstrip('.')}"
        )

    def _finish(self, attempts: int, *, failed: bool) -> None:
        self.stats.calls += 1
        self.stats.failed += failed
        self.stats.max_attempts = max(self.stats.max_attempts, attempts)

    async def _attempt(
        self, url: str, data: bytes, estimate: int, timeout: aiohttp.ClientTimeout
    ) -> dict[str, Any]:
        """The one place an HTTP request is sent; every way it can fail becomes a `Failure`."""
        waiting = time.monotonic()
        async with self.gate.slot(estimate) as outcome:
            note_pause(time.monotonic() - waiting)  # the adaptive cap's wait is back-pressure
            self.stats.requests += 1
            hold = Hold(self.memory)
            try:
                return await self._exchange(url, data, timeout, outcome, hold)
            finally:
                hold.done()

    async def _exchange(
        self, url: str, data: bytes, timeout: aiohttp.ClientTimeout, outcome: Any, hold: Hold
    ) -> dict[str, Any]:
        try:
            async with self._session.post(
                url, data=data, headers=self._headers, timeout=timeout
            ) as resp:
                status, headers = resp.status, resp.headers
                reason = resp.reason
                text = await self._read(resp, hold)
        except _CONNECT_TIMEOUT:
            raise _AttemptFailed(
                Failure("connection", f"cannot reach {self._where}: connection timed out")
            ) from None
        except asyncio.TimeoutError:
            raise _AttemptFailed(
                Failure("timeout", f"timed out waiting for {self._where}")
            ) from None
        except (
            ValueError
        ) as exc:  # aiohttp refuses to build it: a line break in a header, user:pass@ in the URL
            reason = cut(self._redact(str(exc)), 200)
            raise _AttemptFailed(
                Failure(
                    "unsendable",
                    f"cannot send a request to {self._where}: {reason} (check api_key "
                    "and default_headers for line breaks, and base_url for user:password@)",
                )
            ) from None
        except aiohttp.ClientResponseError as exc:  # an answer aiohttp cannot parse as HTTP
            reason = cut(self._redact(exc.message or type(exc).__name__), 200)
            raise _AttemptFailed(
                Failure("connection", f"{self._where} answered with broken HTTP: {reason}")
            ) from None
        except aiohttp.ClientError as exc:
            reason = cut(self._redact(str(exc) or type(exc).__name__), 200)
            raise _AttemptFailed(
                Failure("connection", f"cannot reach {self._where}: {reason}")
            ) from None
        request_id = headers.get("x-request-id")
        if not 200 <= status < 300:
            message, error_type, code = error_from_body(self._redact(text), reason)
            failure = Failure(
                "status", self._redact(message), status, headers, request_id, error_type, code
            )
            outcome.rate_limited = failure.rate_limited  # the adaptive cap backs off
            self.stats.rate_limited += failure.rate_limited
            raise _AttemptFailed(failure)
        sse = is_event_stream(headers.get("Content-Type"))
        streamed = final_response(text) if sse else None
        if streamed is not None and streamed.response is None:  # retried, like a non-Response
            raise _AttemptFailed(
                Failure(
                    "malformed",
                    f"{self._where} answered {status} with an event stream that "
                    f"{'failed: ' if streamed.kind == 'failed' else 'ended early: '}"
                    f"{cut(self._redact(streamed.message), 200)}",
                    status,
                    headers,
                    request_id,
                    streamed.error_type,
                )
            )
        parsed = streamed.response if streamed is not None else json_object(text)
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
        parsed = self._mask_answer(text, parsed)
        outcome.ok = True
        usage = parsed.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            outcome.tokens = usage["total_tokens"]
        return parsed

    async def _read(self, resp: aiohttp.ClientResponse, hold: Hold) -> str:
        """The body as text, refused past max_response_bytes (announced or actually sent); a large
        one first reserves its size (its announced size, else the worst case) from the memory
        budget. The raw bytes are dropped before the caller parses the text."""
        limit = self.max_response_bytes
        announced = resp.content_length
        if announced is not None and announced > limit:
            raise self._too_large(resp, f"announces {announced} bytes")
        if announced is not None:
            await hold.need(announced)
        raw = bytearray()
        while chunk := await resp.content.read(_READ_CHUNK):
            raw += chunk
            if len(raw) > limit:
                raise self._too_large(resp, f"sent more than {limit} bytes")
            if announced is None and len(raw) > LARGE_ANSWER_BYTES:
                await hold.need(limit)
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

    def _mask_answer(self, text: str, parsed: dict[str, Any]) -> dict[str, Any]:
        """Every known secret masked in a parsed answer (a quick look at the raw text first: a
        walk is needed only when a secret, or a \\u escape that could spell one, is there)."""
        escaped = "\\u" in text
        for redactor in (self._answer_redactor, REDACT):
            if redactor and (escaped or redactor.found_in(text)):
                parsed = redactor.tree(parsed)
        return parsed

    def _redact(self, text: str) -> str:
        """Some endpoints echo the key or headers they were sent; they must not reach a log or rollout."""
        return REDACT(self._redactor(text))


def _max_tokens(payload: Mapping[str, Any]) -> int:
    """The answer's token cap, for the pacing gate's estimate (Responses or Chat Completions)."""
    for key in ("max_output_tokens", "max_completion_tokens", "max_tokens"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def make_session(limit: int) -> aiohttp.ClientSession:
    """One session per run: connections are pooled across rollouts, sized to what can be in flight.

    No cookie jar: a NeMo Gym server's session cookie belongs to one rollout and is passed on per
    request (servers/external.py), never shared with the next rollout through the session."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar()
    )
