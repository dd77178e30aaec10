"""Builders for runtime tests: sealed plans over a tmp input file, Response bodies, a scripted endpoint."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gym_compile.canonical import content_hash, file_sha256

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": ""}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def weather_row(text: str = "what's it like in sf?", **extra: Any) -> dict[str, Any]:
    return {
        "responses_create_params": {
            "input": [
                {"role": "developer", "content": "You are a helpful personal assistant."},
                {"role": "user", "content": text},
            ],
            "tools": [copy.deepcopy(WEATHER_TOOL)],
        },
        **extra,
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def stand_in_spec(**config: Any) -> dict[str, Any]:
    return {
        "type": "responses_api_models",
        "implementation": "stand_in_model",
        "config": {
            "model": "stand-in-1",
            "latency_ms": 0,
            "host": "127.0.0.1",
            "port": None,
            **config,
        },
    }


def openai_spec(base_url: str, api_key: Any = "sk-test-123", **config: Any) -> dict[str, Any]:
    return {
        "type": "responses_api_models",
        "implementation": "openai_model",
        "config": {
            "base_url": base_url,
            "api_key": api_key,
            "model": "gpt-test",
            "default_headers": {},
            "extra_body": {},
            "max_concurrent_requests": None,
            "timeouts": {"connect": 5, "read": 30, "total": None},
            "host": "127.0.0.1",
            "port": None,
            **config,
        },
    }


def seal(plan: dict[str, Any]) -> dict[str, Any]:
    """Recomputes content_hash the way gym-compile does."""
    plan["content_hash"] = content_hash(plan)
    return plan


def weather_plan(
    tmp_path: Path,
    rows: list[dict[str, Any]] | None = None,
    *,
    model: dict[str, Any] | None = None,
    with_job: bool = True,
    limit: int | None = None,
    num_repeats: int = 1,
    concurrency: int = 4,
    params: dict[str, Any] | None = None,
    max_steps: int | None = None,
    secrets: dict[str, Any] | None = None,
    env_file: str | None = None,
    rollout_timeout_s: float | None = None,
) -> dict[str, Any]:
    """A sealed simple_weather plan (stand-in model unless `model` is given)."""
    rows = (
        rows if rows is not None else [weather_row(), weather_row("how's the weather in new york?")]
    )
    input_path = write_jsonl(tmp_path / "data" / "input.jsonl", rows)
    sha = file_sha256(str(input_path))
    plan: dict[str, Any] = {
        "format_version": 1,
        "compiler": {"name": "gym-compile", "version": "0.1.0"},
        "sources": [{"role": "input", "path": str(input_path), "sha256": sha}],
        "env_file": env_file,
        "secrets": secrets or {},
        "servers": {
            "policy_model": model or stand_in_spec(),
            "example_simple_weather": {
                "type": "resources_servers",
                "implementation": "example_simple_weather",
                "config": {"domain": "agent", "verified": False, "host": "127.0.0.1", "port": None},
            },
            "simple_weather_simple_agent": {
                "type": "responses_api_agents",
                "implementation": "simple_agent",
                "config": {
                    "resources_server": {
                        "type": "resources_servers",
                        "name": "example_simple_weather",
                    },
                    "model_server": {"type": "responses_api_models", "name": "policy_model"},
                    "max_steps": max_steps,
                    "rollout_timeout_s": rollout_timeout_s,
                    "datasets": [],
                    "host": "127.0.0.1",
                    "port": None,
                },
            },
        },
        "job": None,
        "content_hash": "",
    }
    if with_job:
        plan["job"] = {
            "agent": "simple_weather_simple_agent",
            "input": {"path": str(input_path), "sha256": sha, "rows": len(rows)},
            "output": {
                "path": str(tmp_path / "results" / "rollouts.jsonl"),
                "metrics_path": str(tmp_path / "results" / "rollouts.metrics.json"),
            },
            "limit": limit,
            "num_repeats": num_repeats,
            "concurrency": concurrency,
            "responses_create_params": params or {},
        }
    return seal(plan)


def write_plan(path: Path, plan: dict[str, Any]) -> Path:
    path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def ids(records: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in records]


FAST_RETRY = {"max_attempts": 3, "initial_delay_s": 0.001, "max_delay_s": 0.01}


# ---------------------------------------------------------------- Response bodies


def function_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def assistant_message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def response_body(
    output: list[dict[str, Any]],
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    model: str = "gpt-test",
    rid: str = "resp_1",
) -> dict[str, Any]:
    """A Response the official schema accepts."""
    return {
        "id": rid,
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tools": [],
        "tool_choice": "auto",
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 1},
            "total_tokens": input_tokens + output_tokens,
        },
    }


class ScriptedEndpoint:
    """A real Responses endpoint whose answers a test scripts; it records every request.

    `answer(body, index)` gives a Response dict, any aiohttp response, or an awaitable of either
    (to sleep, hang or count in-flight requests): the one fake endpoint every test uses."""

    def __init__(self, answer: Callable[[dict[str, Any], int], Any]) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/responses", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        answer = self.answer(body, len(self.bodies) - 1)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer)


async def start_endpoint(
    aiohttp_server: Any, answer: Callable[[dict[str, Any], int], Any]
) -> tuple[ScriptedEndpoint, str]:
    """(endpoint, base_url) on a loopback port."""
    endpoint = ScriptedEndpoint(answer)
    server = await aiohttp_server(endpoint.app)
    return endpoint, str(server.make_url("/v1"))


def recording_stand_in(body: dict[str, Any], _index: int) -> dict[str, Any]:
    """The stand-in's own model logic behind a recording endpoint."""
    from gym_run.standin.server import respond

    return respond(body)
