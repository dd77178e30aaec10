"""gym_run.plan: only the plan gym-compile wrote, unchanged and over unchanged input, is accepted."""

from __future__ import annotations

import json

import pytest
from gym_run.errors import PlanError
from gym_run.plan import load_plan

from tests.runtime_helpers import seal, weather_plan, write_plan


def test_loads_a_sealed_plan(tmp_path):
    plan = weather_plan(tmp_path)
    assert load_plan(write_plan(tmp_path / "plan.json", plan)) == plan


def test_missing_file(tmp_path):
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "nope.json")


def test_not_json(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("servers:\n  a: 1\n")
    with pytest.raises(PlanError, match=r"is not JSON \(line 1"):
        load_plan(path)


def test_schema_errors_are_listed_with_paths(tmp_path):
    plan = weather_plan(tmp_path)
    plan["job"]["concurrency"] = 0
    plan["surprise"] = True
    with pytest.raises(PlanError) as info:
        load_plan(write_plan(tmp_path / "plan.json", seal(plan)))
    assert "$.job.concurrency" in info.value.message
    assert "surprise" in info.value.message


def test_newer_format_asks_for_an_upgrade(tmp_path):
    plan = weather_plan(tmp_path)
    plan["format_version"] = 2
    plan["something_new"] = {}
    with pytest.raises(PlanError, match=r"newer gym-compile \(format 2\); upgrade gym-run"):
        load_plan(write_plan(tmp_path / "plan.json", seal(plan)))


def test_edited_plan_is_refused(tmp_path):
    plan = weather_plan(tmp_path)
    plan["job"]["concurrency"] = 99
    with pytest.raises(PlanError, match="plan.json was edited after compiling; recompile"):
        load_plan(write_plan(tmp_path / "plan.json", plan))


def test_changed_input_is_refused(tmp_path):
    plan = weather_plan(tmp_path)
    path = write_plan(tmp_path / "plan.json", plan)
    with open(plan["job"]["input"]["path"], "a") as fh:
        fh.write(json.dumps({"responses_create_params": {"input": "hi"}}) + "\n")
    with pytest.raises(PlanError) as info:
        load_plan(path)
    old = plan["job"]["input"]["sha256"]
    assert "changed since compile" in info.value.message
    assert f"sha256 {old[:12]}… -> " in info.value.message
    assert info.value.message.endswith("; recompile")


def test_missing_input_is_refused(tmp_path):
    plan = weather_plan(tmp_path)
    path = write_plan(tmp_path / "plan.json", plan)
    (tmp_path / "data" / "input.jsonl").unlink()
    with pytest.raises(PlanError, match="cannot be read"):
        load_plan(path)


def test_plan_without_job_loads(tmp_path):
    plan = weather_plan(tmp_path, with_job=False)
    assert load_plan(write_plan(tmp_path / "plan.json", plan))["job"] is None
