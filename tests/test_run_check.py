"""`gym-run check PLAN`: one line per model endpoint, against a stand-in process and a closed port."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from gym_run.cli import cli

from tests.runtime_helpers import openai_spec, seal, weather_plan, write_plan
from tests.test_run_cli import REPO, _env

KEY = "sk-right-key-123"


@pytest.fixture(scope="module")
def standin_url():
    """`gym-run stand-in` with a key and one known model, as a separate process on a free port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gym_run.cli",
            "stand-in",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--known-model",
            "good-model",
        ],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("stand-in listening on"), proc.stderr.read()
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _plan(tmp_path, base_url, model="good-model", key="from-env"):
    env = tmp_path / "env.yaml"
    env.write_text(f"policy_api_key: {key}\n")
    spec = openai_spec(base_url, api_key={"$secret": "policy_api_key"})
    spec["config"]["model"] = model
    plan = weather_plan(
        tmp_path,
        model=spec,
        env_file=str(env),
        secrets={"policy_api_key": {"source": "env_file", "key": "policy_api_key"}},
    )
    return str(write_plan(tmp_path / "plan.json", seal(plan))), str(env)


def _check(path):
    return CliRunner().invoke(cli, ["check", path], env={"POLICY_API_KEY": None})


def test_ok_with_latency(tmp_path, standin_url):
    path, _env_file = _plan(tmp_path, standin_url, key=KEY)
    result = _check(path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"policy_model: OK: model 'good-model' at {standin_url} answered in "
    )
    assert result.output.endswith(" ms\n") and result.output.count("\n") == 1


def test_key_rejected_names_where_the_key_comes_from(tmp_path, standin_url):
    path, env_file = _plan(tmp_path, standin_url, key="sk-wrong-key-456")
    result = _check(path)
    assert result.exit_code == 1
    assert (
        f"policy_model: FAILED: key rejected by {standin_url} (HTTP 401: Incorrect API key provided"
        in result.output
    )
    assert result.output.rstrip().endswith(
        f"check policy_api_key in {env_file} (or the POLICY_API_KEY environment variable, which wins)"
    )
    assert "sk-wrong-key-456" not in result.output


def test_model_not_found_names_the_model(tmp_path, standin_url):
    path, _env_file = _plan(tmp_path, standin_url, model="gpt-typo", key=KEY)
    result = _check(path)
    assert result.exit_code == 1
    assert (
        f"policy_model: FAILED: model 'gpt-typo' not found at {standin_url} (HTTP 404: "
        in result.output
    )
    assert result.output.rstrip().endswith("check the model name")


def test_wrong_path_is_not_mistaken_for_a_missing_model(tmp_path, standin_url):
    path, _env_file = _plan(tmp_path, standin_url.removesuffix("/v1") + "/api", key=KEY)
    result = _check(path)
    assert (
        result.exit_code == 1
        and "no Responses API at" in result.output
        and "check base_url" in result.output
    )


def test_connection_refused_names_the_base_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    path, _env_file = _plan(tmp_path, url)
    result = _check(path)
    assert result.exit_code == 1
    assert result.output.startswith(f"policy_model: FAILED: cannot reach {url}: ")
    assert result.output.rstrip().endswith("(check base_url)")


def test_the_built_in_stand_in_checks_ok(tmp_path):
    result = _check(str(write_plan(tmp_path / "plan.json", weather_plan(tmp_path))))
    assert result.exit_code == 0 and result.output.startswith(
        "policy_model: OK: model 'stand-in-1' at http://127.0.0.1:"
    )
