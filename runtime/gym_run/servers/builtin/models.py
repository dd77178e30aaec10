"""Model server configs in, `ModelServer` objects out: every model is reached over HTTP by `OpenAIClient`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gym_run.defaults import default_of, model_defaults
from gym_run.endpoint.cache import CachingClient, ResponseCache
from gym_run.endpoint.client import ModelClient, OpenAIClient
from gym_run.endpoint.retry import RetryPolicy
from gym_run.endpoint.timeouts import Timeouts
from gym_run.errors import PlanError

STAND_IN_API_KEY = "stand-in"


class ModelServer:
    """NeMo Gym's `responses_api_models` server: `/v1/responses` and `/v1/chat/completions`
    forwarded to an endpoint."""

    def __init__(
        self,
        name: str,
        client: ModelClient,
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self._on_close = on_close

    async def responses(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.create(body)

    async def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.chat(body)

    async def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()


MODELS = "responses_api_models"


def call_options(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """How every model server calls its endpoint: timeouts, retries, concurrency, pacing, the
    circuit breaker, the answer-size limits (keys a config leaves out: the schema's defaults) and
    whether answers come as a stream of events."""
    defaults = model_defaults()
    return {
        "name": name,
        "timeouts": Timeouts.from_config(config.get("timeouts")),
        "retry": RetryPolicy.from_config(config.get("retry")),
        "max_concurrent_requests": config.get("max_concurrent_requests"),
        "throttle": config.get("throttle"),
        "circuit_breaker": config.get("circuit_breaker"),
        **{
            key: config.get(key, defaults[key])
            for key in ("max_response_bytes", "max_buffered_response_bytes")
        },
        "stream": bool(config.get("stream", defaults["stream"])),
    }


def cached(
    name: str,
    client: OpenAIClient,
    cache: ResponseCache | None,
    *,
    key_url: str | None = None,
    key_extra: dict[str, Any] | None = None,
    secrets: tuple[str, ...] = (),
) -> ModelClient:
    """`client` behind the response cache when there is one. `key_url` stands for the base URL in
    the key (the stand-in's loopback port changes every run; its answers do not)."""
    if cache is None:
        return client
    return CachingClient(
        client,
        cache,
        key_url or client.base_url,
        client.model,
        server=name,
        key_extra=key_extra,
        secrets=secrets,
    )


def openai_model(
    name: str,
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    cache: ResponseCache | None = None,
) -> ModelServer:
    """`openai_model`: the config is already canonical (renamed spellings, secrets resolved)."""
    client = OpenAIClient(
        session,
        base_url=config.get("base_url", default_of(MODELS, "openai_model", "base_url")),
        api_key=config.get("api_key", ""),
        model=config["model"],
        default_headers=config.get("default_headers"),
        extra_body=config.get("extra_body"),
        **call_options(name, config),
    )
    # extra_body changes the answer, so it is key material; headers (credentials) never are
    headers = [str(v) for v in (config.get("default_headers") or {}).values() if len(str(v)) >= 12]
    secrets = (str(config.get("api_key") or ""), *headers)
    return ModelServer(
        name, cached(name, client, cache, key_extra=config.get("extra_body"), secrets=secrets)
    )


async def stand_in_model(
    name: str,
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    *,
    bind: bool = True,
    cache: ResponseCache | None = None,
) -> ModelServer:
    """The stand-in app on a loopback port, reached with the same client as a real endpoint.

    `bind=False` (for `gym-run serve`) leaves the configured host/port to the served model route
    and puts the stand-in itself on a free loopback port.
    """
    # Imported late: only plans that use the stand-in need it.
    from gym_run.standin.server import Faults, start_standin

    host = (config.get("host") or "127.0.0.1") if bind else "127.0.0.1"
    port = (config.get("port") or 0) if bind else 0
    model = config.get("model", default_of(MODELS, "stand_in_model", "model"))
    try:
        faults = Faults(**(config.get("faults") or {}))
    except (TypeError, ValueError) as exc:
        raise PlanError(f"server {name!r}: faults: {exc}") from None
    standin = await start_standin(
        host,
        port,
        model=model,
        latency_ms=config.get("latency_ms", default_of(MODELS, "stand_in_model", "latency_ms")),
        api_key=STAND_IN_API_KEY,
        faults=faults,
    )
    client = OpenAIClient(
        session,
        base_url=standin.url,
        api_key=STAND_IN_API_KEY,
        model=model,
        key_is_secret=False,  # a public constant: masking it would turn stand-in-1 into ***-1
        **call_options(name, config),
    )
    return ModelServer(
        name, cached(name, client, cache, key_url=f"stand-in://{model}"), on_close=standin.close
    )
