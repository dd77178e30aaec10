"""NeMo Gym's own collector (`ng_collect_rollouts` of nemo-gym 0.4.0) against `gym-run serve`:
nothing but the head server's address on its command line, real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.nemo_venv import nemo_python
from tests.runtime_helpers import (
    read_jsonl,
    stand_in_spec,
    weather_plan,
    weather_row,
    write_jsonl,
    write_plan,
)

REPO = Path(__file__).resolve().parent.parent
AGENT = "simple_weather_simple_agent"
NEMO_AGENT = "example_single_tool_call_simple_agent"
ROWS = [weather_row(f"what's it like in city {i}?", expected_answer="cold") for i in range(8)]
REPEATS = 2
TOTAL = len(ROWS) * REPEATS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "XDG_CACHE_HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "runtime")])
    return env


class Serve:
    """`gym-run serve PLAN --head-port P` as a process; stopped with Ctrl-C."""

    def __init__(self, plan: Path, head_port: int) -> None:
        self.head_port = head_port
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gym_run.cli",
                "serve",
                str(plan),
                "--head-port",
                str(head_port),
            ],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.printed: list[str] = []
        while not self.printed or not self.printed[-1].startswith("serving"):
            line = self.proc.stdout.readline()
            assert line, "".join(self.printed) + (
                self.proc.stderr.read() if self.proc.stderr else ""
            )
            self.printed.append(line)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def ng_collect() -> Path:
    script = nemo_python().parent / "ng_collect_rollouts"
    assert script.is_file(), f"nemo-gym's venv has no {script}"
    return script


def _serve(tmp_path: Path, model: dict[str, Any] | None = None) -> Serve:
    plan = weather_plan(tmp_path, ROWS, model=model, with_job=False)
    return Serve(write_plan(tmp_path / "plan.json", plan), _free_port())


def _nemo_plan(tmp_path: Path, python: Path) -> Path:
    """NeMo Gym's own example_single_tool_call config (resources server and simple_agent as NeMo
    Gym processes: `nemo_gym.processes: all`) with gym-run's stand-in model, compiled."""
    where = subprocess.run(
        [str(python), "-c", "import nemo_gym, os; print(os.path.dirname(nemo_gym.__path__[0]))"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = Path(where.stdout.strip()) / "resources_servers/example_single_tool_call/configs"
    plan = tmp_path / "plan.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gym_compile.cli",
            f"+config_paths=[{config / 'example_single_tool_call.yaml'},"
            f"{REPO / 'examples/simple_weather/stand_in_model.yaml'}]",
            f"+nemo_gym.python={python}",
            "+nemo_gym.processes=all",
            f"+agent_name={NEMO_AGENT}",
            f"+input_jsonl_fpath={tmp_path / 'data' / 'input.jsonl'}",
            f"+output_jsonl_fpath={tmp_path / 'unused' / 'rollouts.jsonl'}",
            "-o",
            str(plan),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return plan


def _collect(
    ng_collect: Path, serve: Serve, tmp_path: Path, *extra: str, agent: str = AGENT
) -> subprocess.CompletedProcess[str]:
    """NeMo Gym's collector with its defaults: only the head's address, agent and files."""
    (tmp_path / "out").mkdir(exist_ok=True)  # NeMo Gym writes its materialized inputs there first
    return subprocess.run(
        [
            str(ng_collect),
            "+head_server.host=127.0.0.1",
            f"+head_server.port={serve.head_port}",
            f"+agent_name={agent}",
            f"+input_jsonl_fpath={tmp_path / 'data' / 'input.jsonl'}",
            f"+output_jsonl_fpath={tmp_path / 'out' / 'rollouts.jsonl'}",
            f"+num_repeats={REPEATS}",
            *extra,
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


VALIDATE = """
import json, sys
from nemo_gym.openai_utils import NeMoGymResponse
for response in json.load(sys.stdin):
    NeMoGymResponse.model_validate(response)
"""


def _nemo_accepts(responses: list[dict[str, Any]]) -> None:
    """Each response passes NeMo Gym's own pydantic model (what its trainers and tools load)."""
    done = subprocess.run(
        [str(nemo_python()), "-c", VALIDATE],
        input=json.dumps(responses),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _api_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "input_tokens": usage["input_tokens"],
        "input_tokens_details": {"cached_tokens": usage["cached_input_tokens"]},
        "output_tokens": usage["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
        "total_tokens": usage["total_tokens"],
    }


def test_collector_defaults_complete_output_and_aggregate_metrics(ng_collect, tmp_path):
    serve = _serve(tmp_path)
    try:
        assert any(line.startswith("head_server") for line in serve.printed)
        done = _collect(ng_collect, serve, tmp_path)
    finally:
        serve.stop()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    keys = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in records)
    assert keys == [(t, r) for t in range(len(ROWS)) for r in range(REPEATS)]
    assert not (tmp_path / "out" / "rollouts_failures.jsonl").read_text()
    for record in records:
        gym = record["_gym"]
        assert record["reward"] == 1.0 and gym["status"] == "ok" and gym["model_calls"] == 2
        assert record["agent_ref"] == {"name": AGENT} and record["expected_answer"] == "cold"
        # the final response's usage is the sum of the rollout's two model calls
        assert record["response"]["usage"] == _api_usage(gym["usage_by_server"]["policy_model"])
        assert record["response"]["usage"]["total_tokens"] == gym["usage"]["total_tokens"] > 0
        assert gym["id"].endswith(f":{record['_ng_task_index']}:{record['_ng_rollout_index']}")
        assert "cost_by_server" in gym and gym["retries"] == 0  # priced like a collected record

    [entry] = json.loads((tmp_path / "out" / "rollouts_aggregate_metrics.json").read_text())
    assert entry["agent_ref"] == {"name": AGENT}
    tokens = [r["response"]["usage"]["total_tokens"] for r in records]
    assert entry["key_metrics"]["mean/reward"] == 1.0
    assert entry["key_metrics"]["mean/total_tokens"] == pytest.approx(sum(tokens) / TOTAL)
    assert entry["agent_metrics"]["_gym"]["counts"]["ok"] == TOTAL
    assert entry["agent_metrics"]["_gym"]["usage"]["total_tokens"] == sum(tokens)
    assert len(entry["group_level_metrics"]) == len(ROWS)
    assert all(g["num_rollouts"] == REPEATS for g in entry["group_level_metrics"])


def test_failed_rollouts_routed_to_failures_and_retried_on_resume(ng_collect, tmp_path):
    # a quarter of the model requests answer 500 and none is retried: about half of the
    # rollouts (two calls each) fail; the seed makes the draws the same on every run
    faults = {"server_error": 0.25, "seed": 7}
    model = stand_in_spec(faults=faults, retry={"max_attempts": 1})
    serve = _serve(tmp_path, model)
    try:
        first = _collect(ng_collect, serve, tmp_path)
        out = tmp_path / "out"
        ok_first = read_jsonl(out / "rollouts.jsonl")
        failed_first = read_jsonl(out / "rollouts_failures.jsonl")
        [entry] = json.loads((out / "rollouts_aggregate_metrics.json").read_text())
        second = _collect(ng_collect, serve, tmp_path, "+resume_from_cache=true")
    finally:
        serve.stop()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert 0 < len(failed_first) < TOTAL and len(ok_first) + len(failed_first) == TOTAL
    assert all(r["_gym"]["status"] == "ok" and r["reward"] == 1.0 for r in ok_first)
    for record in failed_first:
        assert record["_ng_failure_class"] == "agent_run_error" and record["reward"] == 0.0
        assert record["_gym"]["status"] == "failed" and record["_gym"]["error"]["status"] in (
            500,
            503,
        )
        assert (
            record["error"].startswith("ModelCallError: HTTP 50")
            and "_ng_failure_terminal" not in record
        )
        assert record["response"]["output"][0]["role"] == "assistant"
    _nemo_accepts([r["response"] for r in ok_first + failed_first])
    counts = entry["agent_metrics"]["_gym"]["counts"]
    assert (counts["ok"], counts["failed"]) == (len(ok_first), len(failed_first))
    # a failed rollout is counted, not scored (NeMo Gym 0.4.0 sends it to /aggregate_metrics too)
    assert entry["agent_metrics"]["failed_rollouts"] == len(failed_first)
    assert entry["key_metrics"]["mean/reward"] == 1.0

    # NeMo Gym's resume re-dispatches exactly the failed ones; each is now ok or failed twice
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    ok_keys = [
        (r["_ng_task_index"], r["_ng_rollout_index"]) for r in read_jsonl(out / "rollouts.jsonl")
    ]
    attempts: dict[tuple[int, int], int] = {}
    for record in read_jsonl(out / "rollouts_failures.jsonl"):
        key = (record["_ng_task_index"], record["_ng_rollout_index"])
        attempts[key] = attempts.get(key, 0) + 1
    assert len(ok_keys) == len(set(ok_keys)) > len(ok_first)
    ok_before = {(r["_ng_task_index"], r["_ng_rollout_index"]) for r in ok_first}
    for key in [(t, r) for t in range(len(ROWS)) for r in range(REPEATS)]:
        if key in ok_before:
            assert key in ok_keys and key not in attempts, key
        else:  # one failed attempt, then ok; or two failed attempts
            assert (attempts[key], key in ok_keys) in ((1, True), (2, False)), key


def test_collector_against_nemo_gyms_own_servers_under_gym_run_serve(ng_collect, tmp_path):
    """gym-run serve as ng_run's stand-in: NeMo Gym's servers as processes, no Ray, its head."""
    write_jsonl(tmp_path / "data" / "input.jsonl", ROWS)
    serve = Serve(_nemo_plan(tmp_path, nemo_python()), _free_port())
    try:
        table = "".join(serve.printed)
        assert NEMO_AGENT in table and "example_single_tool_call" in table
        url = f"http://127.0.0.1:{serve.head_port}/server_instances"
        with urllib.request.urlopen(url, timeout=30) as resp:
            pids = [i["pid"] for i in json.load(resp) if i["pid"] is not None]
        assert len(pids) == 2
        done = _collect(ng_collect, serve, tmp_path, agent=NEMO_AGENT)
    finally:
        serve.stop()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "a NeMo Gym server outlived gym-run serve"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert serve.proc.returncode == 0, serve.proc.stderr.read() if serve.proc.stderr else ""
    records = read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    assert len(records) == TOTAL and all(r["reward"] == 1.0 for r in records)
    # NeMo Gym's own agent, over gym-run's stand-in model (served by gym-run, called over HTTP)
    assert all(r["response"]["usage"]["total_tokens"] > 0 and "_gym" not in r for r in records)
    [entry] = json.loads((tmp_path / "out" / "rollouts_aggregate_metrics.json").read_text())
    assert entry["key_metrics"]["mean/reward"] == 1.0
    logs = tmp_path / "plan.logs"
    assert {p.name for p in logs.iterdir()} >= {f"{NEMO_AGENT}.log", "example_single_tool_call.log"}
