"""Resources servers: tools the model may call and the verifier that scores a finished rollout."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

ToolHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class ToolError(Exception):
    """A tool refusing its arguments; becomes an HTTP error body the model gets to read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def dump_json(value: Any) -> str:
    """Compact JSON, the way NeMo Gym's FastAPI servers write response bodies."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_body(message: str) -> str:
    return dump_json({"error": message})


class ResourcesServer:
    """NeMo Gym's `resources_servers` protocol: /seed_session, /<tool>, /verify."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self._tools: dict[str, ToolHandler] = self.tools()

    def tools(self) -> dict[str, ToolHandler]:
        """Tool name -> handler taking the parsed JSON arguments; subclasses add theirs."""
        return {}

    @property
    def tool_names(self) -> list[str]:
        return list(self._tools)

    async def seed_session(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def call_tool(self, name: str, args: dict[str, Any]) -> tuple[int, str]:
        """(HTTP status, body text): failures are answers the agent hands back to the model."""
        handler = self._tools.get(name)
        if handler is None:
            known = ", ".join(self._tools) or "none"
            return 404, error_body(f"unknown tool {name!r} (tools: {known})")
        try:
            return 200, dump_json(await handler(args))
        except ToolError as exc:
            return exc.status, error_body(exc.message)
        except Exception as exc:  # a broken tool must not take the rollout down with it
            return 500, error_body(f"{name} failed: {type(exc).__name__}: {exc}")

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class SimpleWeather(ResourcesServer):
    """NeMo Gym's `example_simple_weather`: it is always cold, and every rollout earns 1.0."""

    def tools(self) -> dict[str, ToolHandler]:
        return {"get_weather": self.get_weather}

    async def get_weather(self, args: dict[str, Any]) -> dict[str, Any]:
        city = args.get("city")
        if not isinstance(city, str):
            raise ToolError(422, "get_weather needs a string argument 'city'")
        return {"city": city, "weather_description": f"The weather in {city} is cold."}

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "reward": 1.0}
