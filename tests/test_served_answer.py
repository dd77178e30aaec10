"""gym_run.collect.record.served_answer: a failed rollout as NeMo Gym's current agents answer it."""

from __future__ import annotations

import pytest
from gym_run.collect.record import failed_record, ok_record, served_answer
from gym_run.errors import ModelCallError, RolloutTimeout

from tests.runtime_helpers import weather_row

PLAN = "sha256:" + "ab" * 32


class _AgentFailure(Exception):
    failure_class = "remote_agent:sandbox_lost"  # a NeMo Gym agent's own (namespaced) class


@pytest.mark.parametrize(
    ("exc", "kind", "terminal"),
    [
        (ModelCallError(500, "boom", attempts=5), "agent_run_error", False),
        (ModelCallError(429, "slow down"), "agent_run_error", False),
        (ModelCallError(400, "context too long"), "agent_run_error", True),
        (ModelCallError(404, "no such model"), "agent_run_error", True),
        (ModelCallError(401, "bad key"), "agent_run_error", False),  # fixable, so retried
        (ModelCallError(None, "cannot reach http://127.0.0.1:9"), "transport_unreachable", False),
        (RolloutTimeout("took longer than 5"), "agent_timeout", False),
        (TypeError("verify returned no numeric 'reward'"), "agent_run_error", False),
        (_AgentFailure("sandbox lost"), "remote_agent:sandbox_lost", False),
    ],
)
def test_failure_keys(exc, kind, terminal):
    row = {**weather_row(), "agent_ref": {"name": "a"}}
    record = failed_record(row, exc, plan_hash=PLAN, task=2, rollout=1, agent="a")
    answer = served_answer(record)
    assert answer["_ng_failure_class"] == kind
    assert answer.get("_ng_failure_terminal", False) is terminal
    assert answer["reward"] == 0.0 and answer["response"]["output"][0]["role"] == "assistant"
    assert answer["error"].startswith(f"{record['_gym']['error']['class']}: ")
    assert answer["_gym"] is record["_gym"] and list(answer)[-1] == "_gym"
    assert "_ng_no_persist" not in answer  # a failure is data: NeMo Gym keeps it in its sidecar
    assert {k: answer[k] for k in row} == row and answer["_ng_task_index"] == 2


def test_ok_record_is_answered_as_it_is():
    result = {**weather_row(), "response": {"output": []}, "reward": 1.0, "_gym": {}}
    record = ok_record(result, plan_hash=PLAN, task=0, rollout=0, agent="a")
    assert served_answer(record) is record
    assert record["agent_ref"] == {"name": "a"} and list(record)[-1] == "_gym"
