"""Server processes a plan starts (`run: nemo`): up before the run, one clear line when one fails,
nothing left behind, not even after `kill -9` of gym-run.

The server here is tests/fake_nemo/.../fake_weather/app.py, a real process that speaks NeMo Gym's
protocol and reads NeMo Gym's environment, run through gym-run's launcher in this interpreter, so
these tests need no NeMo Gym install (tests/test_nemo_run.py runs NeMo Gym's own servers).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gym_run.collect.runner import run_job
from gym_run.errors import ServerStartError
from gym_run.servers import nemo_process

from tests.runtime_helpers import read_jsonl, seal, stand_in_spec, weather_plan, weather_row
from tests.test_run_cli import REPO, _env

FAKE = Path(__file__).parent / "fake_nemo" / "resources_servers" / "fake_weather"


def fake_plan(tmp_path: Path, rows: int = 4, *, latency_ms: float = 0, **config):
    """simple_weather with its resources server as a process (the fake), the rest built in."""
    plan = weather_plan(
        tmp_path,
        [weather_row(f"in city{i}?", initial=i) for i in range(rows)],
        model=stand_in_spec(latency_ms=latency_ms),
        concurrency=4,
    )
    plan["servers"]["example_simple_weather"] = {
        "type": "resources_servers",
        "implementation": "fake_weather",
        "config": {"entrypoint": "app.py", "pid_file": str(tmp_path / "pids"), **config},
        "run": "nemo",
        "source": {"dir": str(FAKE), "entrypoint": "app.py"},
    }
    plan["nemo_gym"] = {"python": sys.executable, "startup_timeout_s": 30}
    return seal(plan)


def pids(tmp_path: Path) -> list[int]:
    path = tmp_path / "pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_gone(pid_list: list[int], timeout: float = 8.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pid_list if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pid_list if alive(p)]


async def test_a_process_server_serves_the_built_in_agent_with_cookies_per_rollout(tmp_path):
    plan = fake_plan(tmp_path, rows=8, child=True)
    plan["nemo_gym"]["globals"] = {"policy_model_name": "m1", "dry_run": True}
    result = await run_job(seal(plan), show_progress=False)
    assert result.counts["ok"] == 8, result.first_error
    records = read_jsonl(result.rollouts_path)
    # each rollout's session cookie went from its seed_session to its tool call and verify
    for record in records:
        assert record["session_at_verify"] == f"s{record['initial']}"
        assert record["global_seen"] == "m1"
        tool_output = record["response"]["output"][1]["output"]
        assert f"(s{record['initial']})" in tool_output
    log = Path(result.rollouts_path).with_name("rollouts.logs") / "example_simple_weather.log"
    assert "fake_weather example_simple_weather starting in mode ok" in log.read_text()
    started = pids(tmp_path)
    assert len(started) == 2  # the server and the child it started
    assert wait_gone(started, 5) == []  # stopped at the end of the run, child included


async def test_a_server_that_crashes_at_start_is_one_line_with_its_log(tmp_path):
    plan = fake_plan(tmp_path, mode="crash")
    with pytest.raises(ServerStartError) as caught:
        await run_job(plan, show_progress=False)
    message = caught.value.message
    assert "\n" not in message
    assert (
        "server 'example_simple_weather' (resources_servers/fake_weather) exited with code 1"
        in (message)
    )
    assert "RuntimeError: boom: the fake server refuses to start" in message
    assert "rollouts.logs/example_simple_weather.log" in message
    assert wait_gone(pids(tmp_path), 5) == []


async def test_a_server_missing_a_module_its_requirements_list_says_where_to_install_it(tmp_path):
    """NeMo Gym's ng_run installs each server's requirements.txt into a virtualenv of its own;
    gym-run runs all in one Python: the most common reason a NeMo Gym server does not start."""
    folder = tmp_path / "fake_weather"
    shutil.copytree(FAKE, folder)
    (folder / "requirements.txt").write_text("gym-run-test-no-such-module==1.0\n")
    plan = fake_plan(tmp_path, mode="missing_module")
    plan["servers"]["example_simple_weather"]["source"]["dir"] = str(folder)
    with pytest.raises(ServerStartError) as caught:
        await run_job(seal(plan), show_progress=False)
    message = caught.value.message
    assert "No module named 'gym_run_test_no_such_module'" in message
    assert f"install {folder / 'requirements.txt'} into a virtualenv" in message
    assert f"install the packages it lists into {sys.executable}" in message
    (folder / "requirements.txt").unlink()  # no requirements.txt: no such hint
    with pytest.raises(ServerStartError) as caught:
        await run_job(seal(plan), show_progress=False, existing="overwrite")
    assert "requirements.txt" not in caught.value.message


async def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path):
    plan = fake_plan(tmp_path, mode="hang")
    plan["nemo_gym"]["startup_timeout_s"] = 2
    seal(plan)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        await run_job(plan, show_progress=False)
    assert time.monotonic() - started < 15
    assert "did not answer on http://127.0.0.1:" in caught.value.message
    assert "within 2 s" in caught.value.message
    assert "starting in mode hang" in caught.value.message  # the log's tail
    (pid,) = pids(tmp_path)
    assert wait_gone([pid], 5) == []


async def test_a_server_dying_mid_run_stops_the_run_with_one_line(tmp_path):
    plan = fake_plan(tmp_path, rows=40, latency_ms=100, mode="die_after", after=3)
    notices: list[str] = []
    with pytest.raises(ServerStartError) as caught:
        await run_job(plan, show_progress=False, notice=notices.append)
    assert "was killed by signal" not in caught.value.message
    assert "exited with code 3 during the run" in caught.value.message
    assert "--retry-failed" in caught.value.message
    records = read_jsonl(plan["job"]["output"]["path"])
    failed = [r for r in records if r["_gym"]["status"] == "failed"]
    assert failed and len(records) < 40  # in flight ones recorded, no new ones admitted
    assert any("exited with code 3" in n for n in notices)  # said when it happened


async def test_what_a_server_started_in_a_group_of_its_own_goes_down_with_it(tmp_path):
    """Ray's workers (NeMo Gym's longmt_eval, code_gen) leave the server's process group but
    not its session: they outlived the run before (idle, until Ray noticed)."""
    plan = fake_plan(tmp_path, rows=2, child="own_group")
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 2, result.first_error
    started = pids(tmp_path)
    assert len(started) == 2
    assert wait_gone(started, 1) == []


@pytest.mark.parametrize("linger_s", [0.5, 2.0])
async def test_a_server_unreachable_before_it_exits_stops_the_run_too(tmp_path, linger_s):
    """A server shutting down refuses connections before its process exits: the rows that follow
    fail at once, faster than the exit shows (a loaded machine widens that window). None of them
    is admitted before gym-run knows whether the server is going away."""
    plan = fake_plan(
        tmp_path, rows=40, latency_ms=100, mode="die_after", after=3, linger_s=linger_s
    )
    with pytest.raises(ServerStartError) as caught:
        await run_job(plan, show_progress=False, notice=lambda line: None)
    assert "exited with code 3 during the run" in caught.value.message
    assert len(read_jsonl(plan["job"]["output"]["path"])) < 12


async def test_a_server_that_stays_unreachable_counts_as_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(nemo_process, "DYING_WAIT_S", 1.0)
    plan = fake_plan(tmp_path, rows=40, latency_ms=100, mode="die_after", after=3, linger_s=60)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        await run_job(plan, show_progress=False, notice=lambda line: None)
    assert "stopped answering on http://127.0.0.1:" in caught.value.message
    assert "during the run (its process" in caught.value.message
    assert len(read_jsonl(plan["job"]["output"]["path"])) < 12
    assert time.monotonic() - started < 45  # not the 60 s it would take to exit
    assert wait_gone(pids(tmp_path), 8) == []  # stopped with the run


@pytest.mark.parametrize("child", [True, "own_group"])
def test_no_server_outlives_kill_9_of_gym_run(tmp_path, child):
    plan = fake_plan(tmp_path, rows=400, latency_ms=200, child=child)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", str(path), "-q"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = Path(plan["job"]["output"]["path"])
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_bytes().count(b"\n") >= 2):  # servers up, rollouts going
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    started = pids(tmp_path)
    assert len(started) == 2 and all(alive(p) for p in started)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_gone(started, 5) == [], "a server outlived gym-run by more than 5 s"


def test_ctrl_c_stops_the_servers_with_the_run(tmp_path):
    plan = fake_plan(tmp_path, rows=400, latency_ms=200, child=True)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", str(path), "-q", "--grace-s", "2"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Path(plan["job"]["output"]["path"])
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_bytes().count(b"\n") >= 2):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    started = pids(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    assert [p for p in started if alive(p)] == []  # gone by the time gym-run has exited


def test_which_python_runs_nemo_gym(tmp_path):
    from gym_run.servers import nemo_process

    other = tmp_path / "python"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    env = {"NEMO_GYM_PYTHON": str(other)}
    assert nemo_process.nemo_python(sys.executable, env) == sys.executable  # the plan's first
    assert nemo_process.nemo_python(None, env) == str(other)  # then the environment
    if importlib.util.find_spec("nemo_gym") is not None:  # then this interpreter
        assert nemo_process.nemo_python(None, {}) == sys.executable
    else:
        with pytest.raises(ServerStartError) as caught:
            nemo_process.nemo_python(None, {})
        message = caught.value.message
        assert "nemo_gym: {python:" in message and "NEMO_GYM_PYTHON" in message
    with pytest.raises(ServerStartError, match="not an executable Python"):
        nemo_process.nemo_python(str(tmp_path), {})


def test_servers_of_one_plan_never_share_a_port() -> None:
    """Ports are picked while the others are still held (a closed port can come back at once)."""
    from gym_run.servers.nemo_process import addresses_for

    names = [f"server_{i}" for i in range(200)]
    ports = {name: None for name in names} | {"fixed": 18123}
    hosts = dict.fromkeys([*names, "fixed"], "127.0.0.1")
    addresses = addresses_for(hosts, ports)
    assert addresses["fixed"] == ("127.0.0.1", 18123)
    picked = [addresses[name][1] for name in names]
    assert len(set(picked)) == 200 and 18123 not in picked
