"""Cost and budget end to end: a price override makes the stand-in cost something; gym-compile
estimates, gym-run prices every rollout, stops at the budget (exit 5) and resumes past it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.errors import EXIT_BUDGET

from gym_compile.cli import main as gym_compile
from tests.conftest import EXAMPLES
from tests.runtime_helpers import read_jsonl, weather_row, write_jsonl

PRICE = "+prices={models: {stand-in-1: {input: 1000, output: 2000}}}"  # USD per 1M: 0.001 per input token


def compile_weather(tmp: Path, *overrides: str, rows: int = 12) -> tuple[Path, str]:
    data = write_jsonl(
        tmp / "rows.jsonl", [weather_row(f"weather in city {i}?") for i in range(rows)]
    )
    example = EXAMPLES / "simple_weather"
    plan = tmp / "plan.json"
    result = CliRunner().invoke(
        gym_compile,
        [
            str(example / "simple_weather.yaml"),
            str(example / "stand_in_model.yaml"),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={tmp / 'out' / 'rollouts.jsonl'}",
            "+num_samples_in_parallel=2",
            *overrides,
            "--env",
            str(tmp / "none.yaml") if (tmp / "none.yaml").exists() else str(_empty_env(tmp)),
            "-o",
            str(plan),
        ],
    )
    assert result.exit_code == 0, result.output
    return plan, result.output


def _empty_env(tmp: Path) -> Path:
    (tmp / "none.yaml").write_text("{}\n", encoding="utf-8")
    return tmp / "none.yaml"


def gym_run_cli(*args: str):
    return CliRunner().invoke(gym_run, list(args), prog_name="gym-run")


def metrics_of(tmp: Path) -> dict:
    return json.loads((tmp / "out" / "rollouts.metrics.json").read_text())


def test_prices_give_every_rollout_a_cost_and_the_estimate_says_so(tmp_path):
    plan, compiled = compile_weather(tmp_path, PRICE, rows=3)
    estimate = json.loads(plan.read_text())["job"]["estimate"]
    assert (
        estimate["model"] == "stand-in-1"
        and estimate["method"] == "chars/4"
        and estimate["rollouts"] == 3
    )
    assert 0 < estimate["usd_low"] < estimate["usd_high"]
    assert (
        f"${estimate['usd_low']:,.4f} to ${estimate['usd_high']:,.4f}" in compiled.splitlines()[-1]
    )
    result = gym_run_cli(str(plan))
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    for record in records:
        gym = record["_gym"]
        usage = gym["usage_by_server"]["policy_model"]
        assert gym["cost_usd"] == pytest.approx(
            (usage["input_tokens"] * 1000 + usage["output_tokens"] * 2000) / 1e6
        )
        assert gym["cost_by_server"] == {"policy_model": gym["cost_usd"]}
        assert (
            gym["model_by_server"] == {"policy_model": "stand-in-1"} and list(record)[-1] == "_gym"
        )
    cost = metrics_of(tmp_path)["_gym"]["cost"]
    assert (
        cost["total_usd"] == pytest.approx(sum(r["_gym"]["cost_usd"] for r in records))
        and cost["warnings"] == []
    )
    assert cost["mean_usd"] == pytest.approx(cost["total_usd"] / 3)
    assert f"cost: ${cost['total_usd']:,.4f}" in result.output and "n/a" not in result.output


def test_an_unpriced_model_costs_null_with_one_warning(tmp_path):
    plan, compiled = compile_weather(tmp_path, rows=4)
    assert compiled.splitlines()[-1].endswith("; cost n/a (stand-in-1 has no price)")
    result = gym_run_cli(str(plan))
    assert result.exit_code == 0, result.output
    assert result.output.count("stand-in-1 has no price") == 1
    assert all(
        r["_gym"]["cost_usd"] is None for r in read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    )
    cost = metrics_of(tmp_path)["_gym"]["cost"]
    assert cost["total_usd"] is None and cost["unpriced_rollouts"] == 4  # null, never 0
    assert cost["warnings"] == ["cost: n/a (stand-in-1 has no price)"]


def test_budget_stops_admitting_rows_and_a_higher_budget_resumes(tmp_path):
    plan, _ = compile_weather(
        tmp_path, PRICE, "+budget={max_usd: 1000}"
    )  # the plan's budget passes compile
    stopped = gym_run_cli(str(plan), "--max-usd", "0.5")  # this run's budget is lower
    assert stopped.exit_code == EXIT_BUDGET, stopped.output
    assert "budget: stopped, spent $" in stopped.output and "of max_usd 0.5" in stopped.output
    assert f"Resume with a higher budget: gym-run {plan} --resume --max-usd 1" in stopped.output
    budget = metrics_of(tmp_path)["_gym"]["budget"]
    counts = metrics_of(tmp_path)["_gym"]["counts"]
    written = read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    per_rollout = written[0]["_gym"]["cost_usd"]
    assert budget["stopped"] is True and budget["max_usd"] == 0.5 and budget["spent_usd"] >= 0.5
    # rows stop being admitted at the budget; only the ones in flight (concurrency 2) may finish
    assert budget["spent_usd"] < 0.5 + 2 * per_rollout + 1e-9
    assert 0 < counts["ok"] < 12 and counts["missing"] == 12 - counts["ok"]
    # spend counts every call as it is answered: the records, and the first calls of the rollouts
    # that were in flight when the budget was reached (abandoned, so they are missing, not failed)
    assert budget["spent_usd"] >= sum(r["_gym"]["cost_usd"] for r in written) - 1e-9
    assert counts["failed"] == 0

    again = gym_run_cli(
        str(plan), "--resume", "--max-usd", "0.5"
    )  # still over: nothing new is started
    assert again.exit_code == EXIT_BUDGET and len(
        read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    ) == len(written)

    resumed = gym_run_cli(str(plan), "--resume", "--max-usd", "100")
    assert resumed.exit_code == 0, resumed.output
    final = metrics_of(tmp_path)["_gym"]
    assert final["counts"] == {"planned": 12, "rollouts": 12, "ok": 12, "failed": 0, "missing": 0}
    assert final["budget"]["stopped"] is False and final["budget"]["max_usd"] == 100
    assert final["budget"]["spent_usd"] == pytest.approx(
        final["cost"]["total_usd"]
    )  # counts the first run too


def test_token_budget_of_the_plan_stops_the_run(tmp_path):
    plan, _ = compile_weather(tmp_path, rows=6)
    result = gym_run_cli(str(plan), "--max-tokens", "200")
    assert result.exit_code == EXIT_BUDGET, result.output
    budget = metrics_of(tmp_path)["_gym"]["budget"]
    assert budget["stopped"] and budget["spent_tokens"] >= 200 and budget["max_usd"] is None
    assert "--resume --max-tokens 400" in result.output


def test_a_usd_budget_over_an_unpriced_model_says_it_cannot_stop_the_run(tmp_path):
    plan, _ = compile_weather(tmp_path, rows=2)
    result = gym_run_cli(str(plan), "--max-usd", "0.01")
    assert result.exit_code == 0, (
        result.output
    )  # nothing priced, so nothing spent: the run completes
    assert "max_usd counts priced models only; no price for stand-in-1" in result.output
