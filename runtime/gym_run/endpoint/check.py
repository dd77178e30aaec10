"""A plan in, one line per model endpoint out: do its key, model name and URL work? Asked once,
with a tiny request, before a long collection pays for anything (`gym-run check PLAN`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gym_compile.plan_types import Plan
from gym_run.endpoint.client import OpenAIClient, ProbeResult, make_session
from gym_run.errors import ModelCallError
from gym_run.secrets import env_var_for, server_specs
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.registry import build_servers


@dataclass(frozen=True)
class CheckLine:
    name: str
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{self.name}: {'OK' if self.ok else 'FAILED'}: {self.text}"


async def check_plan(plan: Plan, environ: Mapping[str, str] | None = None) -> list[CheckLine]:
    """Probes every responses_api_models server of the plan concurrently (one attempt each)."""
    models = {
        n: s for n, s in server_specs(plan, environ).items() if s["type"] == "responses_api_models"
    }
    # NeMo Gym's own model servers run only while gym-run runs them: nothing to probe before
    processes = sorted(n for n, s in models.items() if s.get("run") == "nemo")
    specs = {n: s for n, s in models.items() if n not in processes}
    lines = [
        CheckLine(n, True, "NeMo Gym's own server, started by gym-run at run time; not probed")
        for n in processes
    ]
    if not specs:
        return lines
    async with make_session(len(specs) + 4) as session:
        servers = await build_servers(specs, session)
        try:
            checked = await asyncio.gather(
                *(_check(plan, name, servers[name]) for name in sorted(specs))
            )
        finally:
            await servers.close()
    return sorted([*lines, *checked], key=lambda line: line.name)


async def _check(plan: Plan, name: str, server: Any) -> CheckLine:
    client = server.client if isinstance(server, ModelServer) else None
    if not isinstance(client, OpenAIClient):
        return CheckLine(name, True, "not an HTTP endpoint; nothing to probe")
    return describe(plan, name, client, await client.probe())


def describe(plan: Plan, name: str, client: OpenAIClient, result: ProbeResult) -> CheckLine:
    """The one line a user reads: what is wrong and which setting to look at."""
    url, model, err = client.base_url, client.model, result.error
    if err is None:
        return CheckLine(
            name, True, f"model {model!r} at {url} answered in {result.latency_s * 1000:.0f} ms"
        )
    said = _said(err)
    if err.status is None:
        return CheckLine(name, False, f"{err.message} (check base_url)")
    if err.status in (401, 403):
        return CheckLine(
            name, False, f"key rejected by {url} ({said}): check {secret_source(plan, name)}"
        )
    if err.status == 429:
        if "quota" in f"{err.error_type} {err.message}".lower():
            return CheckLine(name, False, f"{url} says the account has no quota left ({said})")
        return CheckLine(
            name,
            True,
            f"model {model!r} at {url} is rate-limiting right now ({said}); "
            "runs will retry and pace themselves",
        )
    if err.status in (400, 404) and _about_model(err, model):
        return CheckLine(
            name, False, f"model {model!r} not found at {url} ({said}): check the model name"
        )
    if err.status == 404:
        return CheckLine(
            name, False, f"no Responses API at {url}/responses ({said}): check base_url"
        )
    return CheckLine(name, False, f"{url} rejected a minimal request ({said})")


def _said(err: ModelCallError) -> str:
    rid = f", request id {err.request_id}" if err.request_id else ""
    return f"HTTP {err.status}: {err.message}{rid}"


def _about_model(err: ModelCallError, model: str) -> bool:
    text = err.message.lower()
    return model.lower() in text or "model" in text


def secret_source(plan: Plan, name: str) -> str:
    """Where the key of server `name` comes from, in the words of the plan's `secrets` table."""
    server = plan["servers"].get(name)
    raw = server["config"].get("api_key") if server else None
    secret = raw.get("$secret") if isinstance(raw, dict) else None
    ref = plan.get("secrets", {}).get(secret) if secret else None
    if ref is None:
        return f"the api_key of {name!r} in its config"
    key, source = ref["key"], ref["source"]
    if source == "env_file":
        where = plan.get("env_file") or "env.yaml"
        return f"{key} in {where} (or the {env_var_for(key)} environment variable, which wins)"
    if source == "environment":
        return f"the environment variable {key}"
    return f"{key} in {ref.get('file', 'its config file')}"
