"""Ctrl-C on a real `gym-run` process: the first stops cleanly and says how to resume, the second quits
at once; either way every line on disk is whole and a resume completes the set without duplicates."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from gym_run.cli import cli
from gym_run.collect.runner import run_job

from tests.runtime_helpers import (
    ids,
    openai_spec,
    recording_stand_in,
    stand_in_spec,
    start_endpoint,
    weather_plan,
    weather_row,
    write_plan,
)
from tests.test_run_cli import REPO, _env

ROWS = 24


def _start(tmp_path, latency_ms, *args):
    rows = [weather_row(f"in city{i}?") for i in range(ROWS)]
    plan = weather_plan(tmp_path, rows, model=stand_in_spec(latency_ms=latency_ms), concurrency=4)
    path = write_plan(tmp_path / "plan.json", plan)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", str(path), "-q", *args],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, path, Path(plan["job"]["output"]["path"])


def _wait_for_lines(out: Path, n: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} rollouts written in {timeout} s")


def _whole_lines(out: Path) -> list[dict]:
    data = out.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "torn last line"
    return [json.loads(line) for line in data.splitlines()]


def _resume_completes(plan_path: Path, out: Path, before: int) -> None:
    result = CliRunner().invoke(cli, [str(plan_path), "--resume", "-q"])
    assert result.exit_code == 0, result.output
    records = _whole_lines(out)
    assert sorted(ids(records)) == [(t, 0) for t in range(ROWS)]
    assert max(Counter(ids(records)).values()) == 1 and len(records) == ROWS
    assert before < ROWS


def test_first_ctrl_c_drains_in_flight_and_prints_the_resume_command(tmp_path):
    proc, plan_path, out = _start(tmp_path, 150)
    _wait_for_lines(out, 4, proc)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "stopping: no new rollouts; waiting up to 30 s for" in stderr
    assert f"Resume with: gym-run {plan_path} --resume" in stderr
    assert "Traceback" not in stderr
    before = _whole_lines(out)
    with open(out.with_name("rollouts.metrics.json")) as fh:
        gym = json.load(fh)["_gym"]
    assert gym["run"]["interrupted"] is True and gym["counts"]["ok"] == len(before)
    assert gym["counts"]["missing"] == ROWS - len(before)
    _resume_completes(plan_path, out, len(before))


async def test_grace_period_cancels_stuck_rollouts_which_a_resume_runs_again(
    tmp_path, aiohttp_server
):
    """In process, with a real SIGINT: a rollout stuck on a hung endpoint is cancelled, not recorded."""
    hang = asyncio.Event()

    async def answer(body, index):
        if "stuck" in json.dumps(body["input"]) and not hang.is_set():
            await hang.wait()
        return recording_stand_in(body, index)

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    rows = [weather_row("in oslo?"), weather_row("stuck in lima?"), weather_row("in rome?")]
    plan = weather_plan(tmp_path, rows, model=openai_spec(url), concurrency=3)
    out = Path(plan["job"]["output"]["path"])

    async def interrupt_when_two_are_written():
        while not out.exists() or out.read_bytes().count(b"\n") < 2:
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    notes = []
    interrupter = asyncio.create_task(interrupt_when_two_are_written())
    result = await run_job(
        plan, show_progress=False, handle_signals=True, grace_s=0.1, notice=notes.append
    )
    await interrupter
    assert result.interrupted and result.counts == {
        "planned": 3,
        "rollouts": 2,
        "ok": 2,
        "failed": 0,
        "missing": 1,
    }
    assert sorted(ids(_whole_lines(out))) == [(0, 0), (2, 0)]
    assert "waiting up to 0.1 s for 1 in flight" in notes[0]
    hang.set()
    resumed = await run_job(plan, existing="append", show_progress=False)
    assert (
        sorted(ids(_whole_lines(out))) == [(0, 0), (1, 0), (2, 0)]
        and resumed.counts["missing"] == 0
    )


def test_second_ctrl_c_quits_at_once_without_a_torn_line(tmp_path):
    proc, plan_path, out = _start(tmp_path, 150)
    _wait_for_lines(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert "quit; finished rollouts are kept. Resume with:" in stderr
    _resume_completes(plan_path, out, len(_whole_lines(out)))
