"""The response cache wired end to end: a config opts in, gym-compile puts it in the plan, gym-run
answers a second run from it (no request reaches the endpoint, cost 0), --no-cache bypasses it,
and `gym-run cache stats|clear` read and empty it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.collect.runner import run_job
from gym_run.standin.server import start_standin
from jsonschema import Draft202012Validator

from gym_compile.assets import load_schema
from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.conftest import EXAMPLES
from tests.runtime_helpers import read_jsonl, weather_row, write_jsonl

API_KEY = "sk-cache-test-0123456789abcdefghij"
ROWS = 4
REPEATS = 2


@pytest.fixture
async def standin():
    server = await start_standin("127.0.0.1", 0, api_key=API_KEY)
    yield server
    await server.close()


def compile_cached(tmp: Path, base_url: str, cache: str = "{path: cache/responses.sqlite}"):
    """simple_weather with an openai_model pointed at a stand-in the test started (so its request
    count outlives each run), priced, with the response cache on."""
    conf = tmp / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "model.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        f"      base_url: {base_url}\n      api_key: ${{policy_api_key}}\n      model: stand-in-1\n"
        f"response_cache: {cache}\n"
        "prices: {models: {stand-in-1: {input: 1000, output: 2000}}}\n",
        encoding="utf-8",
    )
    (tmp / "env.yaml").write_text(f"policy_api_key: {API_KEY}\n", encoding="utf-8")
    rows = write_jsonl(
        tmp / "rows.jsonl", [weather_row(f"weather in town {i}?") for i in range(ROWS)]
    )
    result = compile_config(
        [EXAMPLES / "simple_weather" / "simple_weather.yaml", conf / "model.yaml"],
        [
            f"+input_jsonl_fpath={rows}",
            f"+output_jsonl_fpath={tmp / 'out' / 'rollouts.jsonl'}",
            f"+num_repeats={REPEATS}",
        ],
        Options(env=tmp / "env.yaml"),
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    return result.plan


def metrics(job) -> dict:
    return json.loads(Path(job.metrics_path).read_text())


async def test_second_run_is_all_cache_hits_no_requests_and_free(tmp_path, standin):
    plan = compile_cached(tmp_path, standin.url)
    cache_file = tmp_path / "conf" / "cache" / "responses.sqlite"  # relative to the file naming it
    assert plan["job"]["response_cache"] == {"path": str(cache_file), "stand_in": False}

    first = await run_job(plan, show_progress=False)
    sent = standin.app["stats"]["ok"]
    assert (
        sent == ROWS * REPEATS * 2
    )  # a tool call and an answer per rollout: repeats are separate samples
    first_records = read_jsonl(first.rollouts_path)
    assert not any(r["_gym"]["cache_hit"] for r in first_records)
    assert all(r["_gym"]["cost_usd"] > 0 for r in first_records)

    second = await run_job(plan, existing="overwrite", show_progress=False)
    assert standin.app["stats"]["ok"] == sent  # zero requests reached the endpoint
    records = read_jsonl(second.rollouts_path)
    assert len(records) == ROWS * REPEATS
    by_id = {r["_gym"]["id"]: r for r in first_records}  # file order is completion order
    validator = Draft202012Validator(load_schema("rollout.schema.json"))
    for new in records:
        assert not list(validator.iter_errors(new))
        old = by_id[new["_gym"]["id"]]
        assert new["_gym"]["cache_hit"] is True and new["_gym"]["cache"]["misses"] == 0
        assert new["_gym"]["cost_usd"] == 0.0 and new["_gym"]["cost_by_server"] == {
            "policy_model": 0.0
        }
        assert new["response"] == old["response"] and new["_gym"]["usage"] == old["_gym"]["usage"]
    gym = metrics(second)["_gym"]
    assert gym["cost"]["total_usd"] == 0.0 and gym["calls"]["requests"] == 0
    assert gym["cache"] == {
        "rollouts_replayed": ROWS * REPEATS,
        "hits": ROWS * REPEATS * 2,
        "misses": 0,
    }
    assert (
        gym["budget"]["spent_tokens"] == 0 and gym["usage"]["total_tokens"] > 0
    )  # replayed, not billed
    assert API_KEY.encode() not in b"".join(p.read_bytes() for p in cache_file.parent.iterdir())

    third = await run_job(
        plan, existing="overwrite", show_progress=False, use_cache=False
    )  # --no-cache
    assert standin.app["stats"]["ok"] == 2 * sent
    assert not any("cache_hit" in r["_gym"] for r in read_jsonl(third.rollouts_path))


async def test_cache_commands_and_no_cache_flag(tmp_path, standin):
    plan = compile_cached(tmp_path, standin.url, cache="true")
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    cache_file = tmp_path / "out" / "responses.sqlite"  # the default: beside the rollouts

    def invoke(*args: str):
        return CliRunner().invoke(gym_run, list(args), prog_name="gym-run")

    assert (
        invoke("cache", "stats", str(plan_path)).output
        == f"{cache_file}: no cache yet (it is made by the first run)\n"
    )
    await run_job(plan, show_progress=False)
    stats = invoke("cache", "stats", str(plan_path))
    assert stats.exit_code == 0 and stats.output.startswith(
        f"{cache_file}: {ROWS * REPEATS * 2} responses (stand-in-1 "
    )
    assert (
        invoke("cache", "stats", str(cache_file)).output == stats.output
    )  # the file itself works too
    sent = standin.app["stats"]["ok"]
    await run_job(plan, existing="overwrite", show_progress=False, use_cache=False)
    assert standin.app["stats"]["ok"] == 2 * sent
    cleared = invoke("cache", "clear", str(plan_path))
    assert (
        cleared.exit_code == 0
        and cleared.output == f"{cache_file}: removed {ROWS * REPEATS * 2} responses\n"
    )
    assert invoke("cache", "stats", str(cache_file)).output.startswith(
        f"{cache_file}: 0 responses (none)"
    )
    no_cache = tmp_path / "plain.json"
    no_cache.write_text(json.dumps({**plan, "job": {**plan["job"], "response_cache": None}}))
    refused = invoke("cache", "stats", str(no_cache))
    assert refused.exit_code != 0 and "gym-run: error:" in refused.output


def test_the_stand_in_is_cached_only_when_asked(tmp_path):
    """`stand_in: true` (demos): the key ignores the stand-in's per-run port, so a re-run replays."""
    example = EXAMPLES / "simple_weather"
    out = tmp_path / "rollouts.jsonl"
    for setting, hits in (("{}", False), ("{stand_in: true}", True)):
        result = compile_config(
            [example / "simple_weather.yaml", example / "stand_in_model.yaml"],
            [f"+output_jsonl_fpath={out}", f"+response_cache={setting}", "+limit=2"],
            Options(env=tmp_path / "none.yaml"),
        )
        assert result.ok, [str(d) for d in result.diagnostics]
        plan_path = tmp_path / "plan.json"
        plan_path.write_text(json.dumps(result.plan), encoding="utf-8")
        for _ in range(2):
            run = CliRunner().invoke(
                gym_run, [str(plan_path), "--overwrite", "-q"], prog_name="gym-run"
            )
            assert run.exit_code == 0, run.output
        records = read_jsonl(out)
        assert all(r["_gym"].get("cache_hit", False) is hits for r in records)
