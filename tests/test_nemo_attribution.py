"""An agent process's model calls stay gym-run's: served on loopback, counted into the rollout that
made them (usage, model calls, retries, cache hits), budget and failures as for a built-in agent.

The agent and resources server are processes speaking NeMo Gym's protocol (tests/fake_nemo/), so
this runs without NeMo Gym; tests/test_nemo_run.py shows the same with NeMo Gym's simple_agent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gym_run.collect.runner import run_job

from tests.runtime_helpers import (
    FAST_RETRY,
    read_jsonl,
    seal,
    stand_in_spec,
    weather_plan,
    weather_row,
)

FAKE = Path(__file__).parent / "fake_nemo"


def agent_plan(tmp_path: Path, rows: int = 6, *, model: dict | None = None, **agent_config):
    plan = weather_plan(
        tmp_path,
        [weather_row(f"in city{i}?", initial=i) for i in range(rows)],
        model=model or stand_in_spec(),
        concurrency=3,
    )
    plan["servers"]["example_simple_weather"] = {
        "type": "resources_servers",
        "implementation": "fake_weather",
        "config": {"entrypoint": "app.py"},
        "run": "nemo",
        "source": {"dir": str(FAKE / "resources_servers" / "fake_weather"), "entrypoint": "app.py"},
    }
    plan["servers"]["simple_weather_simple_agent"] = {
        "type": "responses_api_agents",
        "implementation": "fake_agent",
        "config": {
            "entrypoint": "app.py",
            "resources_server": {"type": "resources_servers", "name": "example_simple_weather"},
            "model_server": {"type": "responses_api_models", "name": "policy_model"},
            **agent_config,
        },
        "run": "nemo",
        "source": {
            "dir": str(FAKE / "responses_api_agents" / "fake_agent"),
            "entrypoint": "app.py",
        },
    }
    plan["nemo_gym"] = {"python": sys.executable, "startup_timeout_s": 30}
    return plan


async def test_calls_are_counted_into_their_rollouts_and_cached(tmp_path):
    plan = agent_plan(tmp_path)
    plan["job"]["response_cache"] = {"path": str(tmp_path / "cache.sqlite"), "stand_in": True}
    seal(plan)
    first = await run_job(plan, show_progress=False)
    assert first.counts["ok"] == 6, first.first_error
    for record in read_jsonl(first.rollouts_path):
        gym = record["_gym"]
        assert gym["model_calls"] == 2 and gym["tool_calls"] == 1
        assert (
            gym["usage_by_server"]["policy_model"]["total_tokens"]
            == (record["response"]["usage"]["total_tokens"])
        )
        assert gym["cache"]["misses"] == 2 and gym["cache_hit"] is False
        assert "metadata" not in record["responses_create_params"]
        assert record["session_at_verify"] == f"s{record['initial']}"
    again = await run_job(plan, existing="overwrite", show_progress=False)
    records = read_jsonl(again.rollouts_path)
    assert [r["_gym"]["cache_hit"] for r in records] == [True] * 6  # replayed, per rollout
    assert again.metrics["_gym"]["cache"]["hits"] == 12


async def test_retries_are_the_rollouts_own(tmp_path):
    model = stand_in_spec(retry=FAST_RETRY, faults={"rate_limit": 0.4, "seed": 3})
    plan = seal(agent_plan(tmp_path, rows=12, model=model))
    result = await run_job(plan, show_progress=False)
    records = read_jsonl(result.rollouts_path)
    retried = sum(r["_gym"]["retries"] for r in records)
    assert retried > 0
    assert retried == result.metrics["_gym"]["calls"]["retries"]  # none counted twice or lost


async def test_a_failing_agent_is_a_failure_record_and_the_model_error_is_kept(tmp_path):
    plan = seal(agent_plan(tmp_path, fail_on="city3", soft_fail_on="city4"))
    result = await run_job(plan, show_progress=False)
    assert (result.counts["ok"], result.counts["failed"]) == (4, 2)
    failed = {
        r["_ng_task_index"]: r["_gym"]["error"]
        for r in read_jsonl(result.rollouts_path)
        if r["_gym"]["status"] == "failed"
    }
    assert failed[3]["class"] == "RemoteCallError" and failed[3]["status"] == 500
    assert "the fake agent failed" in failed[3]["message"]
    assert failed[4]["class"] == "env_timeout"  # NeMo Gym's own failure class
    assert failed[4]["message"] == "tool took too long"

    model = stand_in_spec(retry={"max_attempts": 1}, faults={"server_error": 1.0})
    broken = seal(agent_plan(tmp_path / "broken", rows=2, model=model))
    result = await run_job(broken, show_progress=False)
    record = read_jsonl(result.rollouts_path)[0]
    # the agent only says 500; the record says what the model call behind it said
    assert record["_gym"]["error"]["class"] == "ModelCallError"
    assert record["_gym"]["error"]["status"] == 500


async def test_the_budget_counts_an_agent_process_spend(tmp_path):
    plan = agent_plan(tmp_path, rows=30)
    plan["job"]["budget"] = {"max_usd": None, "max_tokens": 300}
    plan["job"]["concurrency"] = 1
    seal(plan)
    result = await run_job(plan, show_progress=False)
    assert result.budget.stopped
    assert 0 < result.counts["ok"] < 30
