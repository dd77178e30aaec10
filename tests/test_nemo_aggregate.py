"""gym_run.collect.metrics.aggregate_metrics answers `/aggregate_metrics` as NeMo Gym does: the
same records through NeMo Gym 0.4.0's own `compute_aggregate_metrics` (in its venv) give the same
numbers; gym-run adds only `agent_metrics["_gym"]` and names the agent in each task's sample."""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import pytest
from gym_run.collect.metrics import aggregate_metrics

from tests.nemo_venv import nemo_python

NEMO_AGGREGATE = """
import json, sys
from nemo_gym.reward_profile import compute_aggregate_metrics
print(json.dumps(compute_aggregate_metrics(json.load(sys.stdin)).model_dump(mode="json")))
"""


def _usage(i: int, o: int) -> dict[str, Any]:
    return {
        "input_tokens": i,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": o,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": i + o,
    }


def _ok(task: int, rollout: int, reward: float, i: int, o: int, **extra: Any) -> dict[str, Any]:
    gym = {"status": "ok", "usage": {"total_tokens": i + o}, "usage_by_server": {}}
    return {
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "agent_ref": {"name": "weather_agent"},
        "reward": reward,
        **extra,
        "response": {"usage": _usage(i, o)},  # what NeMo Gym's collector keeps of a response
        "_gym": gym,
    }


def _failed(task: int, rollout: int, terminal: bool = False) -> dict[str, Any]:
    record = {
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "agent_ref": {"name": "weather_agent"},
        "reward": 0.0,
        "_ng_failure_class": "agent_run_error",
        "error": "ModelCallError: HTTP 500",
        "_gym": {"status": "failed", "error": {"class": "ModelCallError", "message": "x"}},
    }
    if terminal:
        record["_ng_failure_terminal"] = True
    return record


RECORDS = [
    _ok(0, 0, 1.0, 80, 13, judge_equal=True),
    _ok(0, 1, 0.0, 90, 17, judge_equal=False),
    _ok(0, 2, 1.0, 85, 11),
    _ok(1, 0, 0.5, 70, 9, steps=3),  # a task with one rollout, and a field only it has
    _failed(2, 0),
    _ok(2, 1, 1.0, 60, 10),
    _failed(3, 0, terminal=True),
    _failed(3, 1),
]


def _same(ours: Any, theirs: Any, where: str = "$") -> None:
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), (where, ours, theirs)
        for key in theirs:
            _same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (where, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12), (where, ours, theirs)
    else:
        assert ours == theirs, (where, ours, theirs)


def test_same_numbers_as_nemo_gyms_own_aggregation():
    done = subprocess.run(
        [str(nemo_python()), "-c", NEMO_AGGREGATE],
        input=json.dumps(RECORDS),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout)
    ours = json.loads(json.dumps(aggregate_metrics(RECORDS)))
    gym = ours["agent_metrics"].pop("_gym")
    for group in ours["group_level_metrics"]:
        assert group["sample"] == {"agent_ref": {"name": "weather_agent"}}
        group["sample"] = {"agent_ref": {"name": "agent"}}  # NeMo Gym names no agent there
    _same(ours, theirs)
    assert theirs["key_metrics"]["mean/reward"] == pytest.approx(3.5 / 8)

    assert gym["counts"]["ok"] == 5 and gym["counts"]["failed"] == 3
    assert gym["usage"]["total_tokens"] == 93 + 107 + 96 + 79 + 70


def test_no_records():
    assert aggregate_metrics([]) == {
        "group_level_metrics": [],
        "agent_metrics": {},
        "key_metrics": {},
    }
