"""An input row in, a scored rollout out: NeMo Gym's `simple_agent` loop (model -> tools -> ... -> verify)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from gym_run.endpoint.usage import (
    USAGE_KEYS,
    add_usage,
    empty_usage,
    merge_usage_by_server,
    responses_usage,
    total_usage,
)
from gym_run.errors import ModelCallError
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer, error_body

__all__ = ["USAGE_KEYS", "RunStats", "SimpleAgent", "merge_params"]


@dataclass
class RunStats:
    """What one rollout cost; summed over all its model calls."""

    usage: dict[str, int] = field(default_factory=empty_usage)
    model_calls: int = 0
    tool_calls: int = 0
    usage_reported: bool = False  # some call answered a `usage` object

    def add_usage(self, usage: Any) -> None:
        """Lenient: endpoints differ in which usage details they fill in."""
        self.usage_reported = self.usage_reported or isinstance(usage, dict)
        add_usage(self.usage, usage)


def merge_params(row: dict[str, Any], params_override: dict[str, Any] | None) -> dict[str, Any]:
    """The job's responses_create_params win over the row's (a shallow merge, as in NeMo Gym)."""
    params = row.get("responses_create_params")
    if not params_override or not isinstance(params, dict):
        return row
    return {**row, "responses_create_params": {**params, **params_override}}


class SimpleAgent:
    """NeMo Gym's `responses_api_agents/simple_agent`, in process."""

    def __init__(
        self, name: str, model: ModelServer, resources: ResourcesServer, max_steps: int | None
    ) -> None:
        self.name = name
        self.model = model
        self.resources = resources
        self.max_steps = max_steps

    async def run(
        self, row: dict[str, Any], params_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """seed_session, the loop, verify; answers verify's result plus `_gym` run statistics."""
        started = time.perf_counter()
        row = merge_params(row, params_override)
        if not isinstance(row.get("responses_create_params"), dict):
            raise ValueError("the row has no 'responses_create_params' object")
        await self.resources.seed_session(row)
        response, stats = await self.responses(row["responses_create_params"])
        result = await self.resources.verify({**row, "response": response})
        reward = result.get("reward") if isinstance(result, dict) else None
        if not isinstance(reward, (int, float)) or isinstance(reward, bool):
            raise TypeError(f"{self.resources.name}/verify returned no numeric 'reward'")
        # Every model server's tokens apart (the judge's come from verify as `_judge_usage`);
        # `usage` is their sum, what the rollout consumed in all.
        by_server = merge_usage_by_server(
            {self.model.name: stats.usage}, result.pop("_judge_usage", None)
        )
        result["_gym"] = {
            "usage": total_usage(by_server),
            "usage_by_server": by_server,
            "model_calls": stats.model_calls,
            "tool_calls": stats.tool_calls,
            "latency_s": round(time.perf_counter() - started, 6),
        }
        return result

    async def responses(self, params: dict[str, Any]) -> tuple[dict[str, Any], RunStats]:
        """The loop; the final response carries every output item of every step and the usage
        of every call, summed."""
        stats = RunStats()
        original = params.get("input", [])
        if isinstance(original, str):
            original = [{"type": "message", "role": "user", "content": original}]
        new_outputs: list[dict[str, Any]] = []
        step = 0
        while True:
            step += 1
            response = await self.model.responses({**params, "input": [*original, *new_outputs]})
            stats.model_calls += 1
            if not isinstance(response, dict):
                raise ModelCallError(200, f"model {self.model.name!r} answered with a non-object")
            stats.add_usage(response.get("usage"))
            output = response.get("output")
            if not isinstance(output, list):
                raise ModelCallError(
                    200, f"model {self.model.name!r} answered without an 'output' list"
                )
            new_outputs.extend(output)
            incomplete = response.get("incomplete_details")
            if isinstance(incomplete, dict) and incomplete.get("reason") == "max_output_tokens":
                break
            calls = [o for o in output if isinstance(o, dict) and o.get("type") == "function_call"]
            messages = [
                o
                for o in output
                if isinstance(o, dict)
                and o.get("type") == "message"
                and o.get("role") == "assistant"
            ]
            if not calls and messages:
                break
            for call in calls:
                new_outputs.append(await self._call_tool(call, stats, params.get("tools") or []))
            if self.max_steps and step >= self.max_steps:
                break
        final = {**response, "output": new_outputs}
        if stats.usage_reported:
            # NeMo Gym (since 2026): the final response's usage is the sum over every model call of
            # the loop, not the last call's; per-call detail is what `_gym` keeps.
            final["usage"] = responses_usage(stats.usage)
        return final, stats

    async def _call_tool(
        self, call: dict[str, Any], stats: RunStats, offered: Any = None
    ) -> dict[str, Any]:
        """A tool's answer or error, as the function_call_output the model reads next.

        `offered` is the request's `tools` list (None: not checked): a model may only call a
        function tool the request offered, whatever else the resources server happens to have.
        """
        name = str(call.get("name", ""))
        raw = call.get("arguments") or "{}"
        if offered is not None:
            names = (
                [
                    t.get("name")
                    for t in offered
                    if isinstance(t, dict) and t.get("type") == "function"
                ]
                if isinstance(offered, list)
                else []
            )
            if name not in names:
                listed = ", ".join(repr(n) for n in names if isinstance(n, str)) or "none"
                output = error_body(
                    f"tool {name!r} was not offered in this request (offered: {listed}); "
                    "it was not called"
                )
                return {
                    "type": "function_call_output",
                    "call_id": call.get("call_id"),
                    "output": output,
                }
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            output = error_body(
                f"arguments for {name} are not valid JSON ({exc.msg} at position {exc.pos})"
            )
        else:
            if isinstance(args, dict):
                stats.tool_calls += 1
                _status, output = await self.resources.call_tool(name, args)
            else:
                output = error_body(f"arguments for {name} must be a JSON object")
        return {"type": "function_call_output", "call_id": call.get("call_id"), "output": output}
