"""Agent results (or the exception a rollout raised) in, rollout records out: the one failure path.

`_gym` is always the last key of a record, and `_gym.id` is unique per (plan, task, rollout);
runtime/gym_run/collect/resume.py relies on both when it reads a rollouts file back.
"""

from __future__ import annotations

from typing import Any

from gym_run.endpoint.cache import CacheTally
from gym_run.errors import ModelCallError


def rollout_id(plan_hash: str, task: int, rollout: int) -> str:
    """Stable across re-runs of the same plan: `<12 hex of the plan hash>:<task>:<rollout>`."""
    return f"{plan_hash[7:19]}:{task}:{rollout}"


def ok_record(
    result: dict[str, Any],
    *,
    plan_hash: str,
    task: int,
    rollout: int,
    retries: int | None = None,
    cache: CacheTally | None = None,
) -> dict[str, Any]:
    """Verify's answer (row + response + reward + extras) with the indices and the `_gym` block.

    With the response cache on, `cache_hit` says every model call was replayed and `cache` what
    was (the usage it replayed is not paid for again)."""
    stats = result.get("_gym") or {}
    record = {k: v for k, v in result.items() if k != "_gym"}
    record["_ng_task_index"] = task
    record["_ng_rollout_index"] = rollout
    record["_gym"] = {"id": rollout_id(plan_hash, task, rollout), "status": "ok", **stats}
    if retries is not None:
        record["_gym"]["retries"] = retries
    if cache is not None and cache.hits + cache.misses:
        record["_gym"]["cache_hit"] = cache.all_hits
        record["_gym"]["cache"] = cache.as_record()
    return record


def failed_record(
    row: dict[str, Any],
    exc: BaseException,
    *,
    plan_hash: str,
    task: int,
    rollout: int,
    retries: int | None = None,
) -> dict[str, Any]:
    """The row as sent, no reward, and what went wrong (never a secret: client messages are redacted)."""
    record = {k: v for k, v in row.items() if k != "_gym"}
    record["_ng_task_index"] = task
    record["_ng_rollout_index"] = rollout
    record["_gym"] = {
        "id": rollout_id(plan_hash, task, rollout),
        "status": "failed",
        "error": error_info(exc),
    }
    if retries is not None:
        record["_gym"]["retries"] = retries
    return record


def error_info(exc: BaseException) -> dict[str, Any]:
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
