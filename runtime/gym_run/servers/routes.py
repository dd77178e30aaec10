"""Built-in server objects in, aiohttp apps out: the routes NeMo Gym's servers answer, as its
collector and servers expect them (`/run` answers 200 for a failed rollout, `/aggregate_metrics`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gym_compile import jsonsafe
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import RolloutRecord
from gym_run.collect.metrics import Metrics
from gym_run.collect.record import served_answer
from gym_run.collect.rollouts import run_one
from gym_run.errors import ModelCallError
from gym_run.http import error_response
from gym_run.metrics.nemo import aggregate_metrics
from gym_run.secrets import REDACT
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import ResourcesServer
from gym_run.servers.nemo_config import MODEL_ROUTES, model_paths
from gym_run.servers.netguard import MAX_REQUEST_BYTES, guarded_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INDEX_KEYS = ("_ng_task_index", "_ng_rollout_index")


@dataclass(frozen=True)
class RunSettings:
    """What `/run` needs beyond the agent: the plan (for `_gym.id`), the deadline, the pricing."""

    plan_hash: str
    rollout_timeout_s: float | None = None
    finish: Callable[[RolloutRecord], None] = lambda record: None


class _Reject(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__("rejected")
        self.response = response


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = jsonsafe.loads(await request.read())
    except web.HTTPRequestEntityTooLarge:
        raise _Reject(
            error_response(413, f"request body too large: at most {MAX_REQUEST_BYTES} bytes")
        ) from None
    except BadJSON as exc:  # bounded nesting and numbers: a 400, never a 500
        raise _Reject(error_response(400, f"request body is not JSON: {exc.reason}")) from None
    if not isinstance(body, dict):
        raise _Reject(error_response(400, "request body must be a JSON object"))
    return body


def _endpoint(
    fn: Callable[[dict[str, Any], web.Request], Awaitable[web.StreamResponse]],
) -> Handler:
    """Parses the body and turns failures into official error bodies instead of HTML 500 pages."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(await _json_object(request), request)
        except _Reject as reject:
            return reject.response
        except ModelCallError as exc:
            status = exc.status if exc.status and exc.status >= 400 else 502
            return error_response(status, REDACT(exc.message), "model_error")
        except Exception as exc:  # masked: an exception may quote what an endpoint echoed
            return error_response(500, REDACT(f"{type(exc).__name__}: {exc}"), "server_error")

    return handler


async def _aggregate(body: dict[str, Any], _request: web.Request) -> web.Response:
    """NeMo Gym's `AggregateMetricsRequest` in (`verify_responses`), `AggregateMetrics` out
    (gym_run.metrics.nemo), plus `agent_metrics._gym`: our totals (ok/failed, tokens per model
    server, cost) over the records that carry a `_gym` block (what `gym-run serve` answered)."""
    records = body.get("verify_responses")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _Reject(error_response(400, "'verify_responses' must be a list of JSON objects"))
    try:
        answer = aggregate_metrics(records)
    except ValueError as exc:  # a record without its task/rollout index
        raise _Reject(error_response(400, str(exc))) from None
    totals = Metrics()
    for record in records:
        if isinstance(record.get("_gym"), dict):
            totals.add(record)
    if totals.rollouts:
        gym = totals.totals()
        gym["counts"] = {k: gym["counts"][k] for k in ("rollouts", "ok", "failed")}
        answer["agent_metrics"]["_gym"] = gym
    return web.json_response(answer)


def model_app(model: ModelServer, token: str | None = None) -> web.Application:
    async def responses(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await model.responses(body))

    async def chat_completions(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await model.chat_completions(body))

    app = guarded_app(token)
    for path, call in zip(MODEL_ROUTES, (responses, chat_completions), strict=True):
        for form in model_paths(path):
            app.router.add_post(form, _endpoint(call))
    return app


def resources_app(resources: ResourcesServer, token: str | None = None) -> web.Application:
    async def seed_session(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await resources.seed_session(body))

    async def verify(body: dict[str, Any], _request: web.Request) -> web.Response:
        return web.json_response(await resources.verify(body))

    async def tool(body: dict[str, Any], request: web.Request) -> web.Response:
        status, text = await resources.call_tool(request.match_info["tool"], body)
        return web.Response(status=status, text=text, content_type="application/json")

    app = guarded_app(token)
    app.router.add_post("/seed_session", _endpoint(seed_session))
    app.router.add_post("/verify", _endpoint(verify))
    app.router.add_post("/aggregate_metrics", _endpoint(_aggregate))
    app.router.add_post("/{tool}", _endpoint(tool))
    return app


def _index(body: dict[str, Any], key: str) -> int:
    value = body.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Reject(error_response(400, f"'{key}' must be a non-negative integer"))
    return value


def agent_app(
    agent: SimpleAgent, settings: RunSettings, token: str | None = None
) -> web.Application:
    async def run(body: dict[str, Any], _request: web.Request) -> web.Response:
        """The rollout as the collector runs it (same record, same `_gym`); a failed one is
        answered 200 with NeMo Gym's failure keys, so NeMo Gym's collector goes on."""
        task, rollout = (_index(body, key) for key in INDEX_KEYS)
        row = {k: v for k, v in body.items() if k not in (*INDEX_KEYS, "_gym")}
        if not isinstance(row.get("responses_create_params"), dict):
            return error_response(400, "an input row needs a 'responses_create_params' object")
        record = await run_one(
            agent,
            (task, rollout, row),
            plan_hash=settings.plan_hash,
            params_override={},
            rollout_timeout_s=settings.rollout_timeout_s,
        )
        settings.finish(record)
        return web.json_response(served_answer(record))

    async def responses(body: dict[str, Any], _request: web.Request) -> web.Response:
        response, _stats = await agent.responses(body)
        return web.json_response(response)

    app = guarded_app(token)
    app.router.add_post("/run", _endpoint(run))
    app.router.add_post("/v1/responses", _endpoint(responses))
    app.router.add_post("/aggregate_metrics", _endpoint(_aggregate))
    return app
