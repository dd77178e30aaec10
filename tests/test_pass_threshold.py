"""The pass threshold is a setting of the job: `pass_threshold:` in the config, validated 0..1 with
a located error, compiled into the plan (only when set), shown by explain and show; gym-run's runs,
report, JUnit and aggregate use it, and `--pass-threshold` overrides it for one run.

Rewards here are 1 or 0 (answer_match against a policy on 127.0.0.1 that always says Paris), so a
threshold of 0 passes every ok rollout and the default of 1 only the right ones."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.collect.runner import run_job
from gym_run.scale.merge import merge_shards
from gym_run.scale.shard import Shard

from gym_compile.cli import main as gym_compile
from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.runtime_helpers import (
    assistant_message,
    read_jsonl,
    response_body,
    start_endpoint,
    write_jsonl,
)

ROWS = [("capital of France?", "paris"), ("of Italy?", "Rome"), ("France again?", "Paris")]


def paris(_body: dict[str, Any], _index: int) -> Any:
    return response_body([assistant_message("The answer is: Paris.")], input_tokens=20)


def write_config(tmp_path: Path, base_url: str, setting: str = "") -> Path:
    write_jsonl(
        tmp_path / "rows.jsonl",
        [{"responses_create_params": {"input": q}, "expected_answer": a} for q, a in ROWS],
    )
    (tmp_path / "env.yaml").write_text(
        f"policy_base_url: {base_url}\npolicy_api_key: sk-test-123\n", encoding="utf-8"
    )
    config = tmp_path / "qa.yaml"
    config.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      base_url: ${policy_base_url}\n      api_key: ${policy_api_key}\n"
        "      model: gpt-test\n      retry: {max_attempts: 1}\n"
        "matcher:\n  resources_servers:\n    answer_match:\n      domain: knowledge\n"
        "      case_sensitive: false\n"
        "agent:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: matcher}\n"
        "      model_server: {type: responses_api_models, name: policy_model}\n"
        "      datasets: [{name: qa, type: example, jsonl_fpath: rows.jsonl}]\n"
        f"output_jsonl_fpath: {tmp_path / 'out.jsonl'}\n"
        f"num_repeats: 2\n{setting}",
        encoding="utf-8",
    )
    return config


def compiled(tmp_path: Path, base_url: str, setting: str = "") -> dict[str, Any]:
    config = write_config(tmp_path, base_url, setting)
    result = compile_config([config], [], Options(env=tmp_path / "env.yaml"))
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.plan is not None
    return result.plan


def test_compiled_into_the_plan_only_when_set(tmp_path: Path) -> None:
    assert "pass_threshold" not in compiled(tmp_path, "http://127.0.0.1:9/v1")["job"]
    plan = compiled(tmp_path, "http://127.0.0.1:9/v1", "pass_threshold: 0.5\n")
    assert plan["job"]["pass_threshold"] == 0.5


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high", "true"])
def test_a_value_outside_0_to_1_is_a_located_error(tmp_path: Path, value: str) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", f"pass_threshold: {value}\n")
    result = compile_config([config], [], Options(env=tmp_path / "env.yaml"))
    assert not result.ok
    errors = [d for d in result.diagnostics if "pass_threshold" in str(d)]
    assert errors, [str(d) for d in result.diagnostics]
    line = config.read_text().splitlines().index(f"pass_threshold: {value}") + 1
    assert errors[0].severity == "error" and errors[0].location is not None
    assert (errors[0].location.file, errors[0].location.line) == (str(config), line)


def test_explain_and_show_name_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", "pass_threshold: 0.5\n")
    runner = CliRunner()
    done = runner.invoke(gym_compile, ["explain", "pass_threshold", str(config)])
    assert done.exit_code == 0, done.output
    assert "pass_threshold = 0.5\n  from: qa.yaml:21:17" in done.output
    assert "warning" not in done.output  # a setting gym-compile knows
    unset = write_config(tmp_path, "http://127.0.0.1:9/v1")
    done = runner.invoke(gym_compile, ["explain", "pass_threshold", str(unset)])
    assert done.exit_code == 0, done.output
    assert "pass_threshold = 1.0" in done.output and "default" in done.output
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", "pass_threshold: 0.5\n")
    done = runner.invoke(
        gym_compile, [str(config), "--env", str(tmp_path / "env.yaml"), "-o", "plan.json"]
    )
    assert done.exit_code == 0, done.output
    shown = runner.invoke(gym_compile, ["show", "plan.json"])
    assert "passes      reward >= 0.5" in shown.output, shown.output


async def test_runs_report_and_junit_use_the_plans_threshold(tmp_path, aiohttp_server) -> None:
    _endpoint, url = await start_endpoint(aiohttp_server, paris)
    plan = compiled(tmp_path, url, "pass_threshold: 0.0\n")
    result = await run_job(plan, show_progress=False, junit_path=str(tmp_path / "junit.xml"))
    rewards = [r["reward"] for r in read_jsonl(tmp_path / "out.jsonl")]
    assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    aggregate = result.metrics["_gym"]["aggregate"]
    assert aggregate["pass_threshold"] == 0.0 and aggregate["outcome"]["passed"] == 6
    assert 'failures="0"' in (tmp_path / "junit.xml").read_text()

    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    report = CliRunner().invoke(gym_run, ["report", str(tmp_path / "out.jsonl"), "--text"])
    assert report.exit_code == 0, report.output
    assert "with reward >= 0)" in report.output, report.output
    report = CliRunner().invoke(
        gym_run, ["report", str(tmp_path / "out.jsonl"), "--text", "--pass-threshold", "1"]
    )
    assert "with reward >= 1)" in report.output, report.output


async def test_the_flag_overrides_the_plan(tmp_path, aiohttp_server) -> None:
    _endpoint, url = await start_endpoint(aiohttp_server, paris)
    plan = compiled(tmp_path, url, "pass_threshold: 0.0\n")
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    junit = tmp_path / "junit.xml"
    args = [str(tmp_path / "plan.json"), "-q", "--pass-threshold", "1", "--junit", str(junit)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gym_run.cli", *args, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    metrics = json.loads((tmp_path / "out.metrics.json").read_text())
    aggregate = metrics["_gym"]["aggregate"]
    assert aggregate["pass_threshold"] == 1.0 and aggregate["outcome"]["passed"] == 4
    assert 'failures="2"' in junit.read_text()


async def test_merged_shards_use_the_plans_threshold(tmp_path, aiohttp_server) -> None:
    _endpoint, url = await start_endpoint(aiohttp_server, paris)
    plan = compiled(tmp_path, url, "pass_threshold: 0.0\n")
    for k in (1, 2):
        await run_job(plan, part=Shard(k, 2).slice(plan["job"]), show_progress=False)
    merge_shards(plan)
    metrics = json.loads((tmp_path / "out.metrics.json").read_text())
    aggregate = metrics["_gym"]["aggregate"]
    assert aggregate["pass_threshold"] == 0.0 and aggregate["outcome"]["passed"] == 6
