"""gym-run's command line: exit codes, one-line errors, summary; CliRunner and real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner
from gym_run.cli import cli

from tests.runtime_helpers import (
    FAST_RETRY,
    openai_spec,
    read_jsonl,
    seal,
    weather_plan,
    weather_row,
    write_plan,
)

REPO = Path(__file__).resolve().parent.parent


def _invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), prog_name="gym-run", env=env)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bare_plan_argument_runs_the_job(tmp_path):
    plan = weather_plan(tmp_path, num_repeats=2)
    result = _invoke(str(write_plan(tmp_path / "plan.json", plan)))
    assert result.exit_code == 0, result.output
    assert "rollouts: 4 ok, 0 failed (of 4)" in result.output
    assert "mean reward: 1.0000" in result.output
    assert (
        plan["job"]["output"]["path"] in result.output
        and plan["job"]["output"]["metrics_path"] in result.output
    )
    assert len(read_jsonl(plan["job"]["output"]["path"])) == 4


def test_run_subcommand_quiet_and_overwrite(tmp_path):
    path = write_plan(tmp_path / "plan.json", weather_plan(tmp_path))
    assert _invoke("run", str(path), "-q").exit_code == 0

    again = _invoke(str(path))
    assert again.exit_code == 2
    assert again.output.startswith("gym-run: error: ") and "--overwrite" in again.output
    assert "Traceback" not in again.output

    quiet = _invoke(str(path), "--overwrite", "-q")
    assert quiet.exit_code == 0 and quiet.output == ""


def test_resume_export_and_flag_combinations(tmp_path):
    path = str(write_plan(tmp_path / "plan.json", weather_plan(tmp_path, num_repeats=2)))
    assert _invoke(path, "--resume", "--overwrite").exit_code == 2
    assert "--retry-failed only makes sense with --resume" in _invoke(path, "--retry-failed").output
    assert _invoke("export", path).exit_code == 1  # nothing to export yet
    assert _invoke(path, "--resume", "-q").exit_code == 0  # --resume with no file yet: a fresh run
    again = _invoke(path, "--resume", "--retry-failed")
    assert again.exit_code == 0 and "resumed: 4 from before, 0 written now" in again.output
    exported = _invoke("export", path)
    final = tmp_path / "results" / "rollouts.final.jsonl"
    assert (
        exported.exit_code == 0
        and exported.output == f"wrote 4 rollouts to {final} (4 ok, 0 failed)\n"
    )
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in read_jsonl(final)] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert _invoke("export", path).exit_code == 2  # the export exists: --overwrite to replace it
    assert _invoke("export", path, "--overwrite", "-o", str(tmp_path / "x.jsonl")).exit_code == 0


def test_stand_in_flags_are_checked():
    result = _invoke("stand-in", "--rate-limit", "0.8", "--server-error", "0.5")
    assert result.exit_code == 2 and "must not exceed 1" in result.output
    assert _invoke("stand-in", "--drop", "1.5").exit_code == 2


def test_failed_rollouts_exit_3(tmp_path):
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    plan = weather_plan(tmp_path, model=openai_spec(dead, retry=FAST_RETRY))
    result = _invoke(str(write_plan(tmp_path / "plan.json", plan)))
    assert result.exit_code == 3, result.output
    assert "rollouts: 0 ok, 2 failed" in result.output and "mean reward: n/a" in result.output
    assert f"first failure: ModelCallError: cannot reach {dead}" in result.output
    assert all(r["_gym"]["status"] == "failed" for r in read_jsonl(plan["job"]["output"]["path"]))


def test_stale_plan_exit_4(tmp_path):
    plan = weather_plan(tmp_path)
    plan["job"]["concurrency"] = 2
    result = _invoke(str(write_plan(tmp_path / "plan.json", plan)))
    assert result.exit_code == 4
    assert (
        result.output
        == "gym-run: error: plan.json was edited after compiling; recompile\n".replace(
            "plan.json", str(tmp_path / "plan.json"), 1
        )
    )


def test_missing_secret_exit_4_and_no_value_leaks(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_model_name: gpt\n")
    model = openai_spec("https://api.openai.com/v1", api_key={"$secret": "policy_api_key"})
    plan = weather_plan(
        tmp_path,
        model=model,
        env_file=str(env),
        secrets={"policy_api_key": {"source": "env_file", "key": "policy_api_key"}},
    )
    result = _invoke(str(write_plan(tmp_path / "plan.json", plan)), env={"POLICY_API_KEY": None})
    assert result.exit_code == 4
    assert "POLICY_API_KEY" in result.output and str(env) in result.output
    assert not Path(plan["job"]["output"]["path"]).exists()


def test_plan_without_job(tmp_path):
    result = _invoke(
        str(write_plan(tmp_path / "plan.json", weather_plan(tmp_path, with_job=False)))
    )
    assert result.exit_code == 4
    assert "this plan has no collection job: it describes servers only" in result.output


def test_usage_errors_exit_2():
    assert _invoke("run").exit_code == 2
    assert _invoke("run", "plan.json", "--bogus").exit_code == 2


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def test_subprocess_run(tmp_path):
    path = write_plan(tmp_path / "plan.json", weather_plan(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "gym_run.cli", str(path)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rollouts: 2 ok, 0 failed" in proc.stdout
    with open(tmp_path / "results" / "rollouts.metrics.json") as fh:
        assert json.load(fh)["reward"] == 1.0


def _post(url, body):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait_for_line(proc, prefix):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r}; stderr: {proc.stderr.read()}")


def test_subprocess_serve_and_stand_in(tmp_path):
    plan = weather_plan(tmp_path, with_job=False)
    agent_port = _free_port()
    plan["servers"]["simple_weather_simple_agent"]["config"]["port"] = agent_port
    path = write_plan(tmp_path / "plan.json", seal(plan))
    serve = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "serve", str(path), "--head-port", "0"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = _free_port()
    standin = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "stand-in", "--port", str(port)],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        header = _wait_for_line(serve, "NAME")
        assert header.split() == ["NAME", "TYPE", "IMPLEMENTATION", "URL"]
        _wait_for_line(serve, "serving")
        record = _post(f"http://127.0.0.1:{agent_port}/run", weather_row())
        assert record["reward"] == 1.0

        line = _wait_for_line(standin, "stand-in listening on")
        url = line.split()[-1]
        assert url == f"http://127.0.0.1:{port}/v1"
        assert _post(url + "/responses", {"model": "m", "input": "hi"})["object"] == "response"
    finally:
        serve.send_signal(signal.SIGINT)
        standin.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=10) == 0
        assert standin.wait(timeout=10) == 0
