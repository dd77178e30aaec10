"""`gym-compile lint`: file-vs-set semantics, env handling, formats, exit codes, and the pre-commit hook."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gym_compile.cli import main

REPO = Path(__file__).resolve().parent.parent
MODEL = """\
policy_model:
  responses_api_models:
    openai_model:
      base_url: ${policy_base_url}
      api_key: ${policy_api_key}
      model: ${policy_model_name}
"""
WEATHER = """\
example_simple_weather:
  resources_servers:
    example_simple_weather: {domain: agent}
"""
AGENT = """\
simple_weather_simple_agent:
  responses_api_agents:
    simple_agent:
      resources_server: {type: resources_servers, name: example_simple_weather}
      model_server: {type: responses_api_models, name: policy_model}
      datasets: [{name: example, type: example, jsonl_fpath: data/example.jsonl}]
"""
ROW = '{"responses_create_params": {"input": "what is it like in sf?"}}\n'


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "model.yaml").write_text(MODEL)
    (tmp_path / "configs" / "weather.yaml").write_text(WEATHER)
    (tmp_path / "configs" / "agent.yaml").write_text(AGENT)
    (tmp_path / "configs" / "data").mkdir()
    (tmp_path / "configs" / "data" / "example.jsonl").write_text(ROW)
    (tmp_path / "configs" / "env.example.yaml").write_text(
        "policy_base_url: https://api.openai.com/v1\n"
    )
    return tmp_path


def lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["lint", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_files_alone_resolve_references_across_the_linted_files(repo):
    assert lint("configs") == (0, "checked 4 files: no problems\n")


def test_reference_to_an_instance_in_no_linted_file_is_a_warning_then_fails_with_strict(repo):
    code, out = lint("configs/agent.yaml")
    assert code == 0 and "warning[GYM040]" in out and "not defined in any linted file" in out
    assert "add its config file to the lint, or lint with --set" in out
    code, out = lint("--strict", "configs/agent.yaml")
    assert code == 1


def test_set_compiles_the_files_together_so_a_missing_instance_is_an_error(repo):
    code, out = lint("--set", "configs/agent.yaml", "configs/weather.yaml")
    assert code == 1 and "error[GYM040]" in out and "'policy_model', which is not defined" in out
    assert lint("--set", "configs")[0] == 0


def test_env_variables_are_assumed_unless_an_env_file_is_named(repo):
    assert lint("configs/model.yaml")[0] == 0
    code, out = lint("--env", "configs/env.example.yaml", "configs/model.yaml")
    assert code == 1
    assert (
        out.count("error[GYM020]") == 2
        and "${policy_api_key}" in out
        and "${policy_base_url}" not in out
    )


def test_mandatory_values_are_fine_alone_but_not_in_a_set(repo):
    (repo / "configs" / "model.yaml").write_text(MODEL.replace("${policy_model_name}", "???"))
    assert lint("configs")[0] == 0
    code, out = lint("--set", "configs")
    assert code == 1 and "error[GYM022]" in out
    assert (
        lint("--set", "configs", "+policy_model.responses_api_models.openai_model.model=gpt-4.1")[0]
        == 0
    )


def test_overrides_need_set(repo):
    code, out = lint("configs", "+limit=1")
    assert code == 2 and "add --set" in out


def test_other_yaml_is_only_parsed_and_broken_yaml_is_always_reported(repo):
    (repo / ".github").mkdir()
    (repo / ".github" / "ci.yml").write_text("on: [push]\njobs: {}\n")
    (repo / "list.yaml").write_text("- a\n- b\n")
    assert lint(".github/ci.yml", "list.yaml")[0] == 0
    (repo / "configs" / "broken.yaml").write_text("x: [1,\n")
    code, out = lint("configs")
    assert (
        code == 1
        and "configs/broken.yaml:1:7: error[GYM001]" in out
        and "at the end of the file" in out
    )


def test_globs_are_expanded_and_one_that_matches_nothing_is_an_error(repo):
    assert lint("configs/*.yaml")[1].startswith("checked 4 files")
    code, out = lint("nowhere/**/*.yaml")
    assert code == 1 and "no YAML or JSONL file matches 'nowhere/**/*.yaml'" in out


def test_input_jsonl_files_are_checked_when_named(repo):
    (repo / "rows.jsonl").write_text('{"responses_create_params": {"input": "hi"}}\n{"oops"\n')
    code, out = lint("rows.jsonl")
    assert code == 1 and "rows.jsonl:2:" in out and "error[GYM051]" in out


def test_github_format_is_chosen_on_github_actions(repo, monkeypatch):
    (repo / "configs" / "weather.yaml").write_text(WEATHER.replace("agent", "agnet"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out = lint("configs")
    assert code == 1
    assert out.splitlines()[0].startswith(
        "::error file=configs/weather.yaml,line=3,col=38,title=GYM033::"
    )
    assert lint("--format", "text", "configs")[1].startswith(
        "configs/weather.yaml:3:38: error[GYM033]"
    )


def test_machine_formats(repo):
    (repo / "configs" / "weather.yaml").write_text(WEATHER.replace("agent", "agnet"))
    code, out = lint("--format", "json", "configs")
    assert code == 1 and json.loads(out)[0]["code"] == "GYM033"
    code, out = lint("--format", "sarif", "configs")
    log = json.loads(out)
    assert code == 1 and log["version"] == "2.1.0"
    assert log["runs"][0]["invocations"][0]["exitCode"] == 1
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["GYM033"]


def test_the_examples_lint_clean(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    code, out = lint("examples")
    assert code == 0, out


def test_pre_commit_hook_runs_as_pre_commit_would(repo):
    """pre-commit runs `entry` with the staged file names appended, in the repository root."""
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "gym-compile-lint")
    assert hook["language"] == "python" and hook["types"] == ["yaml"] and hook["name"]
    entry = shlex.split(hook["entry"])
    assert entry[:2] == ["gym-compile", "lint"]
    command = [sys.executable, "-m", "gym_compile.cli", *entry[1:]]
    env = {**os.environ, "PYTHONPATH": str(REPO), "GITHUB_ACTIONS": "false"}
    files = ["configs/model.yaml", "configs/weather.yaml", "configs/agent.yaml"]
    ok = subprocess.run(
        command + files, cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == "checked 3 files: no problems\n"
    (repo / "configs" / "weather.yaml").write_text(
        WEATHER.replace("{domain: agent}", "{domain: agent, verifed: true}")
    )
    bad = subprocess.run(
        command + files, cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert (
        "configs/weather.yaml:3:45: error[GYM030]" in bad.stdout
        and "did you mean 'verified'?" in bad.stdout
    )
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_directive_taking_an_instance_of_another_linted_file(repo):
    """`judge_model: {_copy: policy_model}` alone: policy_model is in another file, as NeMo Gym's
    configs do it; lint checks the file alone without a false error, --set applies the copy."""
    (repo / "configs" / "judge.yaml").write_text(
        "judge_model:\n  _copy: policy_model\n"
        "judging_agent:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: example_simple_weather}\n"
        "      model_server: {type: responses_api_models, name: judge_model}\n"
    )
    code, out = lint("configs/judge.yaml", "configs/model.yaml", "configs/weather.yaml")
    assert code == 0 and "no problems" in out, out
    code, out = lint("configs/judge.yaml", "configs/weather.yaml")
    assert code == 0 and "warning[GYM025]" in out and "lint checks each file alone" in out
    assert (
        "GYM040" in out
    )  # judge_model's type is unknown without the file that defines policy_model
    code, out = lint("--set", "configs/judge.yaml", "configs/weather.yaml")
    assert code == 1 and "error[GYM025]" in out
