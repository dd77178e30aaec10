"""NeMo Gym's own servers under gym-run, proven with real NeMo Gym (nemo-gym==0.4.0 from PyPI in a
cached Python 3.12 virtualenv, tests/nemo_venv.py): NeMo Gym's configs compiled as a user would,
its servers started by gym-run, the rewards its verifiers compute, its pydantic models accepting
every record, the same environment by `url:`, and nothing left running after `kill -9`.

Environments: example_single_tool_call (resources + simple_agent as NeMo Gym processes);
example_multi_step and example_session_state_mgmt (which gym-run does not re-implement; their
resources servers as NeMo Gym processes, driven by gym-run's built-in simple_agent, so the session
cookies of the stateful one travel through gym-run's client). All on gym-run's stand-in model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gym_run.collect.runner import run_job
from gym_run.servers.nemo_config import config_yaml
from gym_run.servers.nemo_process import LAUNCHER, free_port
from gym_run.standin.server import respond, start_standin

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.nemo_venv import nemo_python
from tests.runtime_helpers import read_jsonl, seal
from tests.test_nemo_lifecycle import alive, wait_gone
from tests.test_run_cli import REPO, _env

STAND_IN = REPO / "examples" / "simple_weather" / "stand_in_model.yaml"
SINGLE = "resources_servers/example_single_tool_call"


@pytest.fixture(scope="module")
def nemo() -> tuple[str, Path]:
    """(NeMo Gym's python, the NeMo Gym tree its wheel installed)."""
    python = str(nemo_python())
    out = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('nemo_gym').origin)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return python, Path(out.stdout.strip()).parent.parent


def compile_nemo(nemo, tmp_path: Path, configs: list[Path], *overrides: str, processes="all"):
    python, root = nemo
    result = compile_config(
        configs,
        [
            f"+output_jsonl_fpath={tmp_path / 'out' / 'rollouts.jsonl'}",
            f"+nemo_gym={{python: {python}, processes: {processes}}}",
            *overrides,
        ],
        Options(default_env=False, nemo_gym_roots=(root,)),
    )
    assert result.ok, "\n".join(f"{d.code} {d.path}: {d.message}" for d in result.diagnostics)
    return result.plan


def single_tool_call_plan(nemo, tmp_path: Path, *overrides: str) -> dict:
    root = nemo[1]
    return compile_nemo(
        nemo,
        tmp_path,
        [root / SINGLE / "configs" / "example_single_tool_call.yaml", STAND_IN],
        "+agent_name=example_single_tool_call_simple_agent",
        f"+input_jsonl_fpath={root / SINGLE / 'data' / 'example.jsonl'}",
        *overrides,
    )


CHECK = """
import json, sys
from nemo_gym.base_resources_server import BaseVerifyResponse
from nemo_gym.openai_utils import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
n = 0
for line in open(sys.argv[1]):
    record = json.loads(line)
    BaseVerifyResponse.model_validate(record)
    NeMoGymResponse.model_validate(record["response"])
    NeMoGymResponseCreateParamsNonStreaming.model_validate(record["responses_create_params"])
    n += 1
print(n)
"""


async def test_single_tool_call_servers_run_under_gym_run(nemo, tmp_path):
    plan = single_tool_call_plan(nemo, tmp_path, "+num_repeats=4")
    kinds = {name: spec.get("run", "builtin") for name, spec in plan["servers"].items()}
    assert kinds == {
        "example_single_tool_call": "nemo",
        "example_single_tool_call_simple_agent": "nemo",
        "policy_model": "builtin",
    }
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 20, result.first_error
    records = read_jsonl(result.rollouts_path)
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in records) == [
        (t, k) for t in range(5) for k in range(4)
    ]
    for record in records:
        assert record["reward"] == 1.0  # NeMo Gym's verify
        assert "parallel_tool_calls" in record["responses_create_params"]  # NeMo Gym's dump
        gym = record["_gym"]
        # the NeMo Gym agent's model calls went through gym-run's loopback model, per rollout
        assert gym["model_calls"] == 2 and gym["tool_calls"] == 1
        assert gym["usage_by_server"]["policy_model"]["total_tokens"] > 0
        assert gym["usage"]["total_tokens"] == record["response"]["usage"]["total_tokens"]
    # (d) every record is what NeMo Gym's own pydantic models accept
    check = subprocess.run(
        [nemo[0], "-c", CHECK, result.rollouts_path], capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.strip() == "20"


async def test_multi_step_verifier_scores_as_nemo_gym_does(nemo, tmp_path):
    root = nemo[1]
    env = root / "resources_servers" / "example_multi_step"
    plan = compile_nemo(
        nemo,
        tmp_path,
        [env / "configs" / "example_multi_step.yaml", STAND_IN],
        "+agent_name=example_multi_step_simple_agent",
        f"+input_jsonl_fpath={env / 'data' / 'example.jsonl'}",
        # its train/validation sets are downloaded on demand; the input here is the example set
        "~example_multi_step_simple_agent.responses_api_agents.simple_agent.datasets",
        processes="auto",
    )
    assert plan["servers"]["example_multi_step_resources_server"]["run"] == "nemo"
    assert "run" not in plan["servers"]["example_multi_step_simple_agent"]  # gym-run's own
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 5, result.first_error
    for record in read_jsonl(result.rollouts_path):
        # the stand-in looks one synonym up and answers, extracting nothing: NeMo Gym's verifier
        # finds no extract_synonym_values call and says so in its own fields
        assert record["reward"] == 0.0
        assert record["parsed_synonym_values"] == [] and record["accuracy"] is False
        assert record["set_overlap"] == 0.0
        calls = [o for o in record["response"]["output"] if o.get("type") == "function_call"]
        assert [c["name"] for c in calls] == ["get_synonym_value"]
        output = json.loads(record["response"]["output"][1]["output"])
        assert isinstance(output["synonym_value"], int)  # NeMo Gym's tool answered


async def test_session_state_travels_in_cookies(nemo, tmp_path):
    root = nemo[1]
    env = root / "resources_servers" / "example_session_state_mgmt"
    rows = [json.loads(line) for line in (env / "data" / "example.jsonl").read_text().splitlines()]
    for index, row in enumerate(rows):
        (call,) = respond(row["responses_create_params"])["output"]  # what the stand-in will do
        added = json.loads(call["arguments"])["count"]
        # even rows: the count the rollout's session really reaches; odd rows: one off
        row["expected_count"] = row["initial_count"] + added + (index % 2)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = compile_nemo(
        nemo,
        tmp_path,
        [env / "configs" / "example_session_state_mgmt.yaml", STAND_IN],
        "+agent_name=example_session_state_mgmt_simple_agent",
        f"+input_jsonl_fpath={data}",
        "~example_session_state_mgmt_simple_agent.responses_api_agents.simple_agent.datasets",
        "+num_samples_in_parallel=5",
        processes="auto",
    )
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 5, result.first_error
    rewards = {r["_ng_task_index"]: r["reward"] for r in read_jsonl(result.rollouts_path)}
    # 1.0 only when seed_session, the tool call and verify all saw the same session cookie
    assert rewards == {0: 1.0, 1: 0.0, 2: 1.0, 3: 0.0, 4: 1.0}


async def test_url_instances_reach_servers_nemo_gym_runs(nemo, tmp_path):
    """NeMo Gym's servers started by this test (not by gym-run) on their own ports and config;
    gym-run's plan only names their URLs."""
    python, root = nemo
    stand_in = await start_standin()
    ports = {"resources": free_port(), "agent": free_port()}
    config = {
        "dry_run": False,
        "head_server": {"host": "127.0.0.1", "port": free_port()},
        "policy_model": {
            "responses_api_models": {
                "openai_model": {"entrypoint": "app.py", "host": "127.0.0.1", "port": stand_in.port}
            }
        },
        "example_single_tool_call": {
            "resources_servers": {
                "example_single_tool_call": {
                    "entrypoint": "app.py",
                    "domain": "agent",
                    "host": "127.0.0.1",
                    "port": ports["resources"],
                }
            }
        },
        "example_single_tool_call_simple_agent": {
            "responses_api_agents": {
                "simple_agent": {
                    "entrypoint": "app.py",
                    "host": "127.0.0.1",
                    "port": ports["agent"],
                    "resources_server": {
                        "type": "resources_servers",
                        "name": "example_single_tool_call",
                    },
                    "model_server": {"type": "responses_api_models", "name": "policy_model"},
                }
            }
        },
    }
    procs = []
    try:
        for name, folder in (
            ("example_single_tool_call", root / SINGLE),
            ("example_single_tool_call_simple_agent", root / "responses_api_agents/simple_agent"),
        ):
            env = {
                **os.environ,
                "NEMO_GYM_CONFIG_DICT": config_yaml(config),
                "NEMO_GYM_CONFIG_PATH": name,
                "GYM_RUN_LAZY_RAY": "1",  # one Ray cluster per server would take minutes here
            }
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [python, str(LAUNCHER), str(folder / "app.py")],
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
        plan = single_tool_call_plan(
            nemo,
            tmp_path,
            f"+example_single_tool_call.resources_servers.example_single_tool_call.url={urls['resources']}",
            "+example_single_tool_call_simple_agent.responses_api_agents.simple_agent.url="
            + urls["agent"],
        )
        assert {s.get("run") for s in plan["servers"].values()} == {"url", None}
        deadline = time.monotonic() + 120
        for url in urls.values():  # until NeMo Gym's servers listen
            while not _answers(url):
                assert all(p.poll() is None for p in procs), _logs(tmp_path)
                assert time.monotonic() < deadline, _logs(tmp_path)
                time.sleep(0.2)
        result = await run_job(plan, show_progress=False)
        assert result.counts["ok"] == 5, result.first_error
        records = read_jsonl(result.rollouts_path)
        assert [r["reward"] for r in records] == [1.0] * 5
        # the agent's model is not gym-run's here: usage as the agent reported it
        assert all(r["_gym"]["usage"]["total_tokens"] > 0 for r in records)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        await stand_in.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=2):
            return True
    except OSError:
        return False


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))


def test_no_nemo_gym_server_outlives_kill_9_of_gym_run(nemo, tmp_path):
    plan = single_tool_call_plan(nemo, tmp_path, "+num_repeats=200")
    plan["servers"]["policy_model"]["config"]["latency_ms"] = 200
    seal(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", str(path), "-q"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = Path(plan["job"]["output"]["path"])
    deadline = time.monotonic() + 180
    while not (out.exists() and out.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    logs = out.with_name("rollouts.logs")
    pids = [
        int(line.split("Started server process [")[1].split("]")[0])
        for log in logs.glob("*.log")
        for line in log.read_text().splitlines()
        if "Started server process [" in line
    ]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_gone(pids, 5) == [], "a NeMo Gym server outlived gym-run by more than 5 s"
