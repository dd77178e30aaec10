"""A config that asks for no job compiles to a plan of servers only: `gym-run serve` serves it and
`gym-run PLAN` says plainly that there is nothing to collect."""

from __future__ import annotations

import json

import aiohttp
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.servers.serve import start_serving

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from gym_compile.plan import write_plan
from tests.conftest import EXAMPLES

WEATHER = EXAMPLES / "simple_weather"


def _servers_only(tmp_path):
    result = compile_config(
        [WEATHER / "simple_weather.yaml", WEATHER / "stand_in_model.yaml"],
        [],
        Options(env=tmp_path / "no-env.yaml"),
    )
    assert result.ok, result.diagnostics
    assert result.plan["job"] is None and len(result.plan["servers"]) == 3
    return result.plan


async def test_gym_run_serve_serves_a_servers_only_plan(tmp_path):
    served = await start_serving(_servers_only(tmp_path))
    try:
        url = served.url("example_simple_weather") + "/get_weather"
        async with aiohttp.ClientSession() as http, http.post(url, json={"city": "sf"}) as resp:
            body = await resp.json(content_type=None)
        assert resp.status == 200 and body["city"] == "sf"
    finally:
        await served.close()


def test_gym_run_on_a_servers_only_plan_says_there_is_no_job(tmp_path):
    plan = tmp_path / "plan.json"
    write_plan(_servers_only(tmp_path), plan)
    result = CliRunner().invoke(gym_run, [str(plan)])
    assert result.exit_code == 4
    assert "no collection job: it describes servers only" in result.output
    assert "gym-run serve" in result.output and "Traceback" not in result.output
    assert json.loads(plan.read_text())["job"] is None
