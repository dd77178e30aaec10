"""Every path bounded by default, nothing lost to a rate limit: plans compiled by gym-compile with
the schemas' defaults, run by gym-run against the stand-in's faults on 127.0.0.1 (a wrong key, an
unknown model, a closed port, 429s, an endpoint that never stops calling tools or says nothing)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from gym_run.cli import cli as gym_run
from gym_run.errors import EXIT_BUDGET, EXIT_ENDPOINT_DOWN, EXIT_SOME_FAILED
from gym_run.standin.server import start_standin

from gym_compile.assets import load_schema
from gym_compile.cli import main as gym_compile
from tests.conftest import EXAMPLES, REPO
from tests.runtime_helpers import read_jsonl, weather_row, write_jsonl

FAST_RETRY = "retry: {initial_delay_s: 0.001, max_delay_s: 0.005}"


def compile_plan(tmp: Path, model_yaml: str, *overrides: str, rows: int = 6) -> Path:
    """simple_weather with `model_yaml` as policy_model; everything else the schemas' defaults."""
    data = write_jsonl(
        tmp / "rows.jsonl", [weather_row(f"weather in town {i}?") for i in range(rows)]
    )
    model = tmp / "model.yaml"
    model.write_text("policy_model:\n  responses_api_models:\n" + model_yaml, encoding="utf-8")
    (tmp / "env.yaml").write_text("{}\n", encoding="utf-8")
    plan = tmp / "plan.json"
    result = CliRunner().invoke(
        gym_compile,
        [
            str(EXAMPLES / "simple_weather" / "simple_weather.yaml"),
            str(model),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={tmp / 'out' / 'rollouts.jsonl'}",
            *overrides,
            "--env",
            str(tmp / "env.yaml"),
            "-o",
            str(plan),
        ],
        env={"BOUNDS_KEY": "compile-time-value"},
    )
    assert result.exit_code == 0, result.output
    return plan


def stand_in(faults: str = "{}", extra: str = "") -> str:
    return f"    stand_in_model:\n      faults: {faults}\n{extra}"


def openai(url: str, extra: str = "") -> str:
    return (
        f"    openai_model:\n      base_url: {url}\n      api_key: ${{oc.env:BOUNDS_KEY}}\n"
        f"      model: stand-in-1\n{extra}"
    )


def run(*args: str, key: str = "right-key") -> Result:
    return CliRunner().invoke(gym_run, list(args), prog_name="gym-run", env={"BOUNDS_KEY": key})


def records(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "out" / "rollouts.jsonl"
    return read_jsonl(path) if path.exists() else []


def metrics(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "out" / "rollouts.metrics.json").read_text())["_gym"]


# ---------------------------------------------------------------- defaults, where they live


def test_the_defaults_bound_every_path():
    """Stated in the schemas (and only there): nothing is unbounded unless a config says so."""
    model = load_schema("servers/responses_api_models/openai_model.schema.json")["properties"]
    agent = load_schema("servers/responses_api_agents/simple_agent.schema.json")["properties"]
    job = load_schema("globals.schema.json")["properties"]["num_samples_in_parallel"]
    assert model["timeouts"]["properties"]["total"]["default"] == 600
    assert model["retry"]["properties"]["max_rate_limited_s"]["default"] > 0
    assert model["throttle"]["properties"]["adaptive_concurrency"]["default"] is True
    assert model["circuit_breaker"]["properties"]["consecutive_failures"]["default"] == 5
    assert agent["max_steps"]["default"] == 50 and agent["rollout_timeout_s"]["default"] == 1800
    assert job["default"] == 256 and job["maximum"] == 4096


def test_the_runtime_restates_no_default():
    """A default written in runtime code would drift from the schema: the dataclasses read it."""
    from gym_run.endpoint.client import MAX_RESPONSE_BYTES
    from gym_run.endpoint.ratelimit import Gate
    from gym_run.endpoint.timeouts import Timeouts

    model = load_schema("servers/responses_api_models/openai_model.schema.json")["properties"]
    assert Timeouts() == Timeouts.from_config(None)
    assert Timeouts().total == model["timeouts"]["properties"]["total"]["default"]
    assert MAX_RESPONSE_BYTES == model["max_response_bytes"]["default"]
    assert Gate.from_config(None, None).adaptive is not None


def test_a_huge_concurrency_is_refused_where_it_is_written(tmp_path):
    data = write_jsonl(tmp_path / "rows.jsonl", [weather_row()])
    result = CliRunner().invoke(
        gym_compile,
        [
            str(EXAMPLES / "simple_weather" / "simple_weather.yaml"),
            str(EXAMPLES / "simple_weather" / "stand_in_model.yaml"),
            f"+input_jsonl_fpath={data}",
            "+num_samples_in_parallel=1000000000",
            "-o",
            str(tmp_path / "plan.json"),
        ],
    )
    assert result.exit_code == 1
    assert "+num_samples_in_parallel=1000000000: error[GYM034]" in result.output
    assert "greater than the maximum of 4096" in result.output


def test_more_rollouts_than_open_files_run_fewer_at_a_time():
    """ulimit -n too low for the concurrency: one line, and the run goes on with what fits."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300));"
        "from gym_run.collect.limits import fit_concurrency;"
        "print(fit_concurrency(4096, print)); print(fit_concurrency(64, print))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{REPO}:{REPO / 'runtime'}"},
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("gym-run: num_samples_in_parallel=4096 needs about 8256 open files")
    assert out[1:] == ["118", "64"]


# ---------------------------------------------------------------- rate limits lose nothing


@pytest.mark.parametrize("retry_after", ["5", "null"])
def test_rate_limits_lose_no_rollout_with_the_default_attempts(tmp_path, retry_after):
    """Half the requests answered 429: with max_attempts 5 counting them, ~3% of calls would
    run out (0.5**5); as back-pressure bounded by time, every rollout completes."""
    faults = f"{{rate_limit: 0.5, retry_after_ms: {retry_after}, seed: 3}}"
    plan = compile_plan(tmp_path, stand_in(faults, f"      {FAST_RETRY}\n"), rows=60)
    result = run(str(plan), "-q")
    assert result.exit_code == 0, result.output
    gym = metrics(tmp_path)
    assert gym["counts"]["ok"] == 60
    assert gym["calls"]["rate_limited"] > 60 and gym["calls"]["max_attempts"] > 5


def test_an_exit_3_prints_the_command_that_retries_the_failures(tmp_path):
    faults = "{server_error: 0.4, seed: 1}"
    retry = "      retry: {max_attempts: 1}\n"
    plan = compile_plan(tmp_path, stand_in(faults, retry), rows=8)
    result = run(str(plan), "-q")
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    failed = metrics(tmp_path)["counts"]["failed"]
    assert (
        f"gym-run: {failed} failed; run them again with: gym-run {plan} --resume --retry-failed"
        in (result.output)
    )
    again = CliRunner().invoke(gym_run, [str(plan), "--resume", "--retry-failed", "-q"])
    assert again.exit_code in (0, EXIT_SOME_FAILED)
    assert metrics(tmp_path)["counts"]["failed"] < failed or again.exit_code == 0


def test_waiting_on_rate_limits_does_not_count_against_the_rollout_deadline(tmp_path):
    """Every call answered 429 twice (retry-after 150 ms): 0.6 s of back-pressure per rollout,
    more than its 0.4 s deadline, yet none times out: a rate limit slows a rollout down."""
    faults = "{rate_limit: 0.67, retry_after_ms: 150, seed: 5}"
    agent = "+simple_weather_simple_agent.responses_api_agents.simple_agent.rollout_timeout_s=0.4"
    plan = compile_plan(tmp_path, stand_in(faults), agent, rows=4)
    result = run(str(plan), "-q")
    assert result.exit_code == 0, result.output
    assert metrics(tmp_path)["calls"]["rate_limited"] >= 8


# ---------------------------------------------------------------- steps, time, budget


@pytest.mark.parametrize("faults", ["{empty_output: 1}", "{always_call: true}"])
def test_a_model_that_never_finishes_stops_at_max_steps(tmp_path, faults):
    """NeMo Gym's max_steps: every model call is a step, an empty answer too; default 50."""
    plan = compile_plan(tmp_path, stand_in(faults), rows=2)
    result = run(str(plan), "-q")
    assert result.exit_code == 0, result.output
    assert [r["_gym"]["model_calls"] for r in records(tmp_path)] == [50, 50]


async def test_a_dripping_body_is_cut_by_the_total_timeout(tmp_path):
    """Headers at once, then a byte a second: the read timeout never fires, the total one does."""
    from gym_run.endpoint.client import OpenAIClient, make_session
    from gym_run.endpoint.retry import RetryPolicy
    from gym_run.endpoint.timeouts import Timeouts
    from gym_run.errors import ModelCallError
    from gym_run.standin.faults import Faults

    standin = await start_standin(faults=Faults(drip=1.0, drip_bytes_per_s=20))
    try:
        async with make_session(4) as session:
            client = OpenAIClient(
                session,
                base_url=standin.url,
                api_key="k",
                model="m",
                timeouts=Timeouts(connect=5, read=5, total=0.5),
                retry=RetryPolicy(max_attempts=1),
            )
            with pytest.raises(ModelCallError, match="timed out"):
                await client.create({"input": "hi"})
    finally:
        await standin.close()


def test_the_budget_stops_a_runaway_rollout_as_it_spends(tmp_path):
    """One rollout that never ends (always a tool call, no max_steps): spend counts per call, so
    it stops at the budget instead of never being counted; it is not recorded (a resume runs it)."""
    plan = compile_plan(
        tmp_path,
        stand_in("{always_call: true}"),
        "+budget.max_tokens=5000",
        "+simple_weather_simple_agent.responses_api_agents.simple_agent.max_steps=null",
        rows=1,
    )
    result = run(str(plan), "-q")
    assert result.exit_code == EXIT_BUDGET, result.output
    budget = metrics(tmp_path)["budget"]
    assert budget["stopped"] and 5000 <= budget["spent_tokens"] < 5000 + 2000
    assert records(tmp_path) == []  # abandoned, not failed
    assert "in flight stop at their next model call" in result.output


# ---------------------------------------------------------------- the circuit breaker


@pytest.fixture(scope="module")
def keyed_standin() -> Iterator[str]:
    """`gym-run stand-in` in its own process (the CLI runs gym-run's loop in this thread): it
    wants the key right-key and knows only the model stand-in-1."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "stand-in", "--port", "0", "--api-key", "right-key"]
        + ["--known-model", "stand-in-1"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'runtime'}"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    yield line.split()[-1]
    proc.terminate()
    served = proc.communicate(timeout=10)[0]
    proc.served = served  # type: ignore[attr-defined]


def test_a_wrong_key_stops_the_run_after_a_few_and_a_resume_goes_on(tmp_path, keyed_standin):
    plan = compile_plan(tmp_path, openai(keyed_standin), rows=40)
    result = run(str(plan), "-q", key="wrong-key")
    assert result.exit_code == EXIT_ENDPOINT_DOWN, result.output
    why = [line for line in result.output.splitlines() if line.startswith("gym-run: stopped:")]
    assert len(why) == 1 and "answered HTTP 401 invalid_api_key to 5 model calls in a row" in why[0]
    assert "wrong-key" not in result.output
    assert f"go on with: gym-run {plan} --resume --retry-failed" in result.output
    written = records(tmp_path)
    assert 1 <= len(written) <= 5 and all(r["_gym"]["status"] == "failed" for r in written)
    fixed = run(str(plan), "--resume", "--retry-failed", "-q", key="right-key")
    assert fixed.exit_code == 0, fixed.output
    assert metrics(tmp_path)["counts"]["ok"] == 40


def test_an_unknown_model_stops_the_run(tmp_path, keyed_standin):
    model = openai(keyed_standin).replace("model: stand-in-1", "model: gpt-nope")
    plan = compile_plan(tmp_path, model, rows=40)
    result = run(str(plan), "-q")
    assert result.exit_code == EXIT_ENDPOINT_DOWN, result.output
    assert "answered HTTP 404 model_not_found to 5 model calls in a row" in result.output
    assert len(records(tmp_path)) <= 5


def test_an_endpoint_that_cannot_be_reached_stops_the_run(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    model = openai(f"http://127.0.0.1:{port}/v1", f"      {FAST_RETRY}\n")
    plan = compile_plan(tmp_path, model, rows=40)
    result = run(str(plan), "-q")
    assert result.exit_code == EXIT_ENDPOINT_DOWN, result.output
    assert "model calls in a row could not reach the endpoint" in result.output
    assert len(records(tmp_path)) <= 5


def test_failures_of_single_rows_do_not_stop_the_run(tmp_path):
    """5xx that outlive their retries say nothing about the endpoint as a whole: recorded, and
    the run goes on (exit 3, not 7)."""
    plan = compile_plan(
        tmp_path, stand_in("{server_error: 1.0}", "      retry: {max_attempts: 1}\n"), rows=12
    )
    result = run(str(plan), "-q")
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert metrics(tmp_path)["counts"]["failed"] == 12
