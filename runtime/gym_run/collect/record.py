"""Agent results (or the exception a rollout raised) in, rollout records out: the one failure path.

`_gym` is always the last key of a record, and `_gym.id` is unique per (plan, task, rollout);
runtime/gym_run/collect/resume.py relies on both when it reads a rollouts file back. A record
carries `agent_ref` as NeMo Gym's do; `served_answer` is what `gym-run serve` answers on `/run`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from gym_compile.plan_types import ErrorInfo, GymBlock, RolloutRecord
from gym_run.endpoint.cache import CacheTally
from gym_run.errors import ModelCallError

#: NeMo Gym's row keys for which row (task) and which repeat of it (rollout) a rollout is.
TASK_INDEX = "_ng_task_index"
ROLLOUT_INDEX = "_ng_rollout_index"


def rollout_id(plan_hash: str, task: int, rollout: int) -> str:
    """Stable across re-runs of the same plan: `<12 hex of the plan hash>:<task>:<rollout>`."""
    return f"{plan_hash[7:19]}:{task}:{rollout}"


def ok_record(
    result: Mapping[str, Any],
    *,
    plan_hash: str,
    task: int,
    rollout: int,
    retries: int | None = None,
    cache: CacheTally | None = None,
    agent: str | None = None,
) -> RolloutRecord:
    """Verify's answer (row + response + reward + extras) with the indices and the `_gym` block.

    With the response cache on, `cache_hit` says every model call was replayed and `cache` what
    was (the usage it replayed is not paid for again)."""
    stats = result.get("_gym") or {}
    # the agent's counters (usage, calls, latency): ours, or a NeMo Gym agent's answer as it came
    gym = cast(GymBlock, {"id": rollout_id(plan_hash, task, rollout), "status": "ok", **stats})
    if retries is not None:
        gym["retries"] = retries
    if cache is not None and cache.hits + cache.misses:
        gym["cache_hit"] = cache.all_hits
        gym["cache"] = cache.as_record()
    return indexed_record(result, task, rollout, agent, gym)


def failed_record(
    row: Mapping[str, Any],
    exc: BaseException,
    *,
    plan_hash: str,
    task: int,
    rollout: int,
    retries: int | None = None,
    agent: str | None = None,
) -> RolloutRecord:
    """The row as sent, no reward, and what went wrong (never a secret: client messages are redacted)."""
    gym: GymBlock = {
        "id": rollout_id(plan_hash, task, rollout),
        "status": "failed",
        "error": error_info(exc),
    }
    if retries is not None:
        gym["retries"] = retries
    return indexed_record(row, task, rollout, agent, gym)


def indexed_record(
    fields: Mapping[str, Any], task: int, rollout: int, agent: str | None, gym: GymBlock
) -> RolloutRecord:
    """NeMo Gym's record keys after the row's: the indices, then `agent_ref` (kept if the row has
    one), `_gym` last. The row's and verify's own fields are not ours to type: the one cast from
    an answer to a record is here."""
    # the agent may echo the indices it was sent: they still come right after the row's keys
    record = {k: v for k, v in fields.items() if k not in ("_gym", TASK_INDEX, ROLLOUT_INDEX)}
    record[TASK_INDEX] = task
    record[ROLLOUT_INDEX] = rollout
    if agent is not None and "agent_ref" not in record:
        record["agent_ref"] = {"name": agent}
    record["_gym"] = gym
    return cast(RolloutRecord, record)


def error_info(exc: BaseException) -> ErrorInfo:
    """class, HTTP status, message, attempts (HTTP requests of the failing call) and request id."""
    if isinstance(exc, ModelCallError):
        return {
            "class": type(exc).__name__,
            "status": exc.status,
            "message": exc.message,
            "attempts": exc.attempts,
            "request_id": exc.request_id,
        }
    # Not a model call (a verifier bug, a deadline, a NeMo Gym server's answer): no attempts.
    # A NeMo Gym agent's own failure class (`_ng_failure_class`) names the failure when there is one.
    message = str(exc) or repr(exc)
    status = getattr(exc, "status", None)
    return {
        "class": str(getattr(exc, "failure_class", None) or type(exc).__name__),
        "status": status if isinstance(status, int) else None,
        "message": message,
        "attempts": None,
        "request_id": None,
    }


# NeMo Gym's failure routing: its collector writes a /run answer carrying `_ng_failure_class` to
# `<stem>_failures.jsonl` (retried on resume, up to NEMO_GYM_MAX_ROLLOUT_ATTEMPTS, never when
# `_ng_failure_terminal`), while any non-2xx answer aborts its whole batch.
NG_FAILURE_CLASS = "_ng_failure_class"
NG_FAILURE_TERMINAL = "_ng_failure_terminal"
# NeMo Gym's failure names: `<domain>_<condition>` or `<server>:<kind>` (never a Python class name).
_NG_NAME = re.compile(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?")
# The endpoint refused the request itself: sending it again gets the same answer.
_TERMINAL_STATUSES = frozenset({400, 404, 413, 422})


def served_answer(record: RolloutRecord) -> Mapping[str, Any]:
    """What `gym-run serve` answers on `/run` (HTTP 200 either way): an ok record as it is; a
    failed one as NeMo Gym's current agents answer a failure: reward 0.0, a minimal valid
    response, `_ng_failure_class` and `error` (and `_ng_failure_terminal`), `_gym` unchanged."""
    gym = record["_gym"]
    if gym.get("status") == "ok":
        return record
    error = gym["error"]
    answer: dict[str, Any] = {k: v for k, v in record.items() if k != "_gym"}
    params = record.get("responses_create_params")
    model = params.get("model") if isinstance(params, dict) else None
    answer["reward"] = 0.0
    answer["response"] = _failed_response(gym["id"], model if isinstance(model, str) else None)
    answer[NG_FAILURE_CLASS] = failure_class(error)
    status = f"HTTP {error['status']}: " if error.get("status") is not None else ""
    answer["error"] = f"{error['class']}: {status}{error['message']}"
    if error["class"] == "ModelCallError" and error.get("status") in _TERMINAL_STATUSES:
        answer[NG_FAILURE_TERMINAL] = True
    answer["_gym"] = gym
    return answer


def failure_class(error: Mapping[str, Any]) -> str:
    """A name from NeMo Gym's shared failure vocabulary (nemo_gym/failure_kinds.py); a NeMo Gym
    agent's own class (recorded as the error's class) is passed on as it is."""
    name = str(error["class"])
    if _NG_NAME.fullmatch(name):
        return name
    if name == "RolloutTimeout":
        return "agent_timeout"
    if name in ("ModelCallError", "RemoteCallError") and error.get("status") is None:
        return "transport_unreachable"  # no HTTP answer: refused, dropped or timed out
    return "agent_run_error"  # what NeMo Gym's collector calls a /run that ran and broke


def _failed_response(rollout: str, model: str | None) -> dict[str, Any]:
    """The smallest Response NeMo Gym's pydantic model accepts: one empty assistant message."""
    return {
        "id": f"gym-run-failed-{rollout}",
        "object": "response",
        "created_at": 0,
        "model": model or "gym-run",
        "status": "failed",
        "output": [
            {
                "id": "msg_failed",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "", "annotations": []}],
            }
        ],
        "parallel_tool_calls": False,
        "tool_choice": "none",
        "tools": [],
    }
