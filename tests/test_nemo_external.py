"""`url:` servers and mixed plans: compile checks the address and keeps everything else checked;
gym-run starts nothing for such a server and speaks NeMo Gym's protocol to it.

The servers behind the URLs here are another gym-run's (`gym-run serve`): real HTTP on loopback,
NeMo Gym's routes, no NeMo Gym install needed (tests/test_nemo_run.py does the same against
NeMo Gym's own servers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from gym_run.collect.runner import run_job
from gym_run.servers.serve import start_serving

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from gym_compile.run_mode import BUILT_IN
from tests.runtime_helpers import read_jsonl, seal, weather_plan, weather_row

ROWS = [weather_row(f"what's it like in city{i}?", expected_answer="cold") for i in range(6)]


def _config(tmp_path: Path, *, resources: dict, agent: dict, extra: str = "") -> Path:
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    text = f"""
policy_model:
  responses_api_models:
    stand_in_model: {{model: stand-in-1}}
example_simple_weather:
  resources_servers:
    example_simple_weather: {json.dumps({"domain": "agent", **resources})}
simple_weather_simple_agent:
  responses_api_agents:
    simple_agent: {
        json.dumps(
            {
                "resources_server": {
                    "type": "resources_servers",
                    "name": "example_simple_weather",
                },
                "model_server": {"type": "responses_api_models", "name": "policy_model"},
                "datasets": [{"name": "example", "type": "example", "jsonl_fpath": "data.jsonl"}],
                **agent,
            }
        )
    }
output_jsonl_fpath: out/rollouts.jsonl
{extra}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _compile(path: Path, *overrides: str):
    return compile_config([path], list(overrides), Options(default_env=False))


@pytest.fixture
async def served(tmp_path):
    """Another gym-run serving simple_weather: the servers the url: instances point at."""
    served = await start_serving(seal(weather_plan(tmp_path / "other", with_job=False)))
    try:
        yield served
    finally:
        await served.close()


async def test_built_in_agent_with_a_url_resources_server(tmp_path, served):
    url = served.url("example_simple_weather")
    result = _compile(_config(tmp_path, resources={"url": url}, agent={}))
    assert result.ok, result.diagnostics
    spec = result.plan["servers"]["example_simple_weather"]
    assert (spec["run"], spec["url"]) == ("url", url)
    assert "url" not in spec["config"]
    assert "run" not in result.plan["servers"]["simple_weather_simple_agent"]  # built in
    job = await run_job(result.plan, show_progress=False)
    assert job.counts["ok"] == 6, job.first_error
    for record in read_jsonl(job.rollouts_path):
        assert record["reward"] == 1.0 and record["_gym"]["tool_calls"] == 1
        tool_output = json.loads(record["response"]["output"][1]["output"])
        assert tool_output["weather_description"].startswith("The weather in city")


async def test_a_url_agent_runs_every_rollout_by_post_run(tmp_path, served):
    url = served.url("simple_weather_simple_agent")
    result = _compile(_config(tmp_path, resources={}, agent={"url": url}))
    assert result.ok, result.diagnostics
    job = await run_job(result.plan, show_progress=False)
    assert job.counts["ok"] == 6, job.first_error
    records = read_jsonl(job.rollouts_path)
    assert sorted(r["_ng_task_index"] for r in records) == list(range(6))
    for record in records:
        gym = record["_gym"]
        assert gym["status"] == "ok" and gym["model_calls"] == 2 and gym["tool_calls"] == 1
        # the other gym-run's model is not ours: usage is what the agent reported
        assert gym["usage"]["total_tokens"] == record["response"]["usage"]["total_tokens"] > 0
        assert gym["id"].startswith(result.plan["content_hash"][7:19])
        assert "metadata" not in record["responses_create_params"]  # our tag never shows


async def test_a_url_server_that_is_down_fails_rollouts_as_data(tmp_path):
    result = _compile(_config(tmp_path, resources={"url": "http://127.0.0.1:9"}, agent={}))
    job = await run_job(result.plan, show_progress=False)
    assert job.counts["failed"] == 6
    record = read_jsonl(job.rollouts_path)[0]
    assert record["_gym"]["error"]["class"] == "RemoteCallError"
    assert "cannot reach http://127.0.0.1:9/seed_session" in record["_gym"]["error"]["message"]


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://h:1", "not an http:// or https:// address"),
        ("http://h:1/api", "has a path"),
        ("http://h:99999", "invalid port"),
        (7, "must be a string"),
    ],
)
def test_compile_checks_the_url(tmp_path, url, message):
    result = _compile(_config(tmp_path, resources={"url": url}, agent={}))
    assert not result.ok
    (diag,) = [d for d in result.diagnostics if d.code == "GYM080"]
    assert message in diag.message
    assert diag.location is not None and diag.location.file.endswith("config.yaml")
    assert diag.path == "$.example_simple_weather.resources_servers.example_simple_weather.url"


def test_a_url_instance_is_still_validated_like_its_implementation(tmp_path):
    result = _compile(
        _config(tmp_path, resources={"url": "http://127.0.0.1:8000", "domian": "agent"}, agent={})
    )
    assert [d.code for d in result.diagnostics if d.severity == "error"] == ["GYM030"]


def test_nemo_gym_settings_are_checked(tmp_path):
    extra = "nemo_gym: {python: no/such/python, processes: [example_simple_wether]}"
    result = _compile(_config(tmp_path, resources={}, agent={}, extra=extra))
    messages = sorted(d.message for d in result.diagnostics if d.code == "GYM082")
    assert len(messages) == 2
    assert "nemo_gym.processes names 'example_simple_wether'" in messages[0]
    assert "nemo_gym.python 'no/such/python' is not an executable file" in messages[1]


def test_asking_for_nemo_gym_code_without_its_source_is_located(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEMO_GYM_EXTRA_ROOTS", raising=False)
    extra = f"nemo_gym: {{python: {sys.executable}, processes: [simple_weather_simple_agent]}}"
    result = _compile(_config(tmp_path, resources={}, agent={}, extra=extra))
    (diag,) = [d for d in result.diagnostics if d.code == "GYM081"]
    assert "NeMo Gym's own responses_api_agents/simple_agent" in diag.message
    assert any(h.startswith("looked in: ") for h in diag.hints)


def test_a_nemo_gym_tree_gives_the_source_and_nemo_gym_the_config_as_written(tmp_path):
    tree = tmp_path / "Gym"
    agent_dir = tree / "responses_api_agents" / "simple_agent"
    agent_dir.mkdir(parents=True)
    (agent_dir / "app.py").write_text("# NeMo Gym's simple agent would be here\n")
    (tree / "resources_servers").mkdir()
    extra = (
        f"nemo_gym: {{python: {sys.executable}, processes: all}}\n"
        "policy_model_name: stand-in-1\nhf_token: hf_abcdefghijklmnop\nlimit: 2"
    )
    path = _config(tmp_path, resources={}, agent={"entrypoint": "app.py"}, extra=extra)
    result = compile_config([path], [], Options(default_env=False, nemo_gym_roots=(tree,)))
    assert result.ok, result.diagnostics
    spec = result.plan["servers"]["simple_weather_simple_agent"]
    assert spec["run"] == "nemo"
    assert spec["source"] == {"dir": str(agent_dir), "entrypoint": "app.py"}
    assert "max_steps" not in spec["config"]  # our default; NeMo Gym's own applies
    assert spec["config"]["entrypoint"] == "app.py"
    # no NeMo Gym source for these two: gym-run's own (models always are, under "all")
    assert "run" not in result.plan["servers"]["example_simple_weather"]
    assert "run" not in result.plan["servers"]["policy_model"]
    assert result.plan["nemo_gym"] == {
        "python": sys.executable,
        "startup_timeout_s": None,
        "globals": {"policy_model_name": "stand-in-1"},  # no secret, no setting of ours
    }


def test_the_compiler_and_the_runtime_agree_on_what_is_built_in():
    from gym_run.servers.registry import FACTORIES

    assert set(FACTORIES) == set(BUILT_IN)


async def test_check_probes_a_url_model_and_skips_a_nemo_gym_one(tmp_path, served):
    from gym_run.endpoint.check import check_plan

    plan = weather_plan(tmp_path, with_job=False)
    plan["servers"]["policy_model"].update(run="url", url=served.url("policy_model"))
    plan["servers"]["judge_model"] = {
        "type": "responses_api_models",
        "implementation": "vllm_model",
        "config": {"entrypoint": "app.py"},
        "run": "nemo",
        "source": {"dir": str(tmp_path), "entrypoint": "app.py"},
    }
    lines = await check_plan(seal(plan))
    assert [(line.name, line.ok) for line in lines] == [
        ("judge_model", True),
        ("policy_model", True),
    ]
    assert "not probed" in lines[0].text
    assert served.url("policy_model") in lines[1].text
