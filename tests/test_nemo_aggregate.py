"""`/aggregate_metrics` of `gym-run serve` (gym_run.metrics.nemo) against NeMo Gym 0.4.0's own
`compute_aggregate_metrics` (in its venv) on the same records: every statistic NeMo Gym gives is
there with the same value. Where they differ on purpose: a failed rollout is left out of the
statistics and counted (NeMo Gym 0.4.0's server would average its reward 0 in; 0.7.0's collector
does not send it), and gym-run adds statistics (a std of one value is 0, `_across_repeats`)."""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import pytest
from gym_run.metrics.nemo import aggregate_metrics

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
    usage = {
        "input_tokens": i,
        "cached_input_tokens": 0,
        "output_tokens": o,
        "reasoning_tokens": 0,
        "total_tokens": i + o,
    }
    return {
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "agent_ref": {"name": "weather_agent"},
        "reward": reward,
        **extra,
        "response": {"usage": _usage(i, o)},  # what NeMo Gym's collector keeps of a response
        "_gym": {"status": "ok", "usage": usage, "usage_by_server": {"policy_model": usage}},
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


def _nemo(records: list[dict[str, Any]]) -> dict[str, Any]:
    done = subprocess.run(
        [str(nemo_python()), "-c", NEMO_AGGREGATE],
        input=json.dumps(records),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _agrees(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    """Every statistic NeMo Gym gives is ours too, with the same value."""
    for key, value in theirs.items():
        if "/" in key:
            assert key in ours, f"{where}: no {key}"
            assert math.isclose(ours[key], value, rel_tol=1e-9, abs_tol=1e-12), (where, key)


def test_every_statistic_nemo_gym_gives_has_the_same_value():
    ok = [r for r in RECORDS if r["_gym"]["status"] == "ok"]
    theirs, ours = _nemo(ok), aggregate_metrics(RECORDS)
    _agrees(ours["agent_metrics"], theirs["agent_metrics"], "agent_metrics")
    _agrees(ours["key_metrics"], theirs["key_metrics"], "key_metrics")
    assert [g["_ng_task_index"] for g in ours["group_level_metrics"]] == [0, 1, 2]
    for mine, nemo in zip(ours["group_level_metrics"], theirs["group_level_metrics"], strict=True):
        _agrees(mine, nemo, f"task {nemo['_ng_task_index']}")
        assert mine["num_rollouts"] == nemo["num_rollouts"]
    assert ours["key_metrics"]["mean/reward"] == pytest.approx(3.5 / 5)
    assert ours["agent_metrics"]["failed_rollouts"] == 3


def test_no_records():
    assert aggregate_metrics([])["group_level_metrics"] == []
