"""gym-run on a real local Ray cluster (`ray start --head` on 127.0.0.1, workers in processes of
their own): the complete set with 0 duplicates, a worker killed mid-run costs nothing, resume
and the command line behave as in a local run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gym_run.collect.runner import run_job
from gym_run.scale.ray_engine import RayEngine
from gym_run.scale.settings import RaySettings

from tests.ray_cluster import LOOPBACK_ENV, head_node
from tests.runtime_helpers import (
    openai_spec,
    read_jsonl,
    seal,
    stand_in_spec,
    weather_plan,
    weather_row,
    write_plan,
)

# before Ray's first import, as gym-run does: Ray reads them once (else 127.0.0.1 becomes eth0's IP)
os.environ.update(LOOPBACK_ENV)
ray = pytest.importorskip(
    "ray", reason="Ray is not installed (pip install 'ray>=2.10'; make test installs it)"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with head_node(num_cpus=2) as address:
        ray.init(address=address, log_to_driver=False)
        try:
            yield address
        finally:
            ray.shutdown()


def cpu_plan(tmp_path: Path, rows: int, repeats: int, verify_cpu_ms: float = 0) -> dict[str, Any]:
    """simple_weather rows on example_cpu_bound (verify burns CPU) against the stand-in."""
    plan = weather_plan(
        tmp_path, [weather_row(f"weather in city {i}?") for i in range(rows)], num_repeats=repeats
    )
    server = plan["servers"]["example_simple_weather"]
    server["implementation"] = "example_cpu_bound"
    server["config"]["verify_cpu_ms"] = verify_cpu_ms
    return seal(plan)


def assert_complete(path: str, total: int) -> list[dict[str, Any]]:
    records = read_jsonl(path)
    counts = Counter(r["_gym"]["id"] for r in records)
    assert len(counts) == total, f"{total - len(counts)} rollouts missing"
    assert max(counts.values()) == 1, "a rollout was written twice"
    assert all(r["_gym"]["status"] == "ok" for r in records)
    return records


async def test_complete_set_no_duplicates(cluster: str, tmp_path: Path) -> None:
    plan = cpu_plan(tmp_path, rows=40, repeats=5)
    engine = RayEngine(RaySettings(address=cluster, workers=2, concurrency_per_worker=8))
    result = await run_job(plan, engine=engine, show_progress=False)
    assert result.counts == {"planned": 200, "rollouts": 200, "ok": 200, "failed": 0, "missing": 0}
    records = assert_complete(plan["job"]["output"]["path"], 200)
    assert result.metrics["reward"] == 1.0
    assert result.metrics["_gym"]["calls"]["calls"] == 400  # counters came back from the workers
    assert {r["_gym"]["id"].split(":")[0] for r in records} == {plan["content_hash"][7:19]}


async def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    cluster: str, tmp_path: Path
) -> None:
    plan = cpu_plan(tmp_path, rows=30, repeats=10, verify_cpu_ms=10)  # 300 x 10 ms: a few seconds
    notices: list[str] = []
    engine = RayEngine(
        RaySettings(address=cluster, workers=2, concurrency_per_worker=16), notices.append
    )
    out = Path(plan["job"]["output"]["path"])

    async def kill_one_when_running() -> int:
        while not (out.exists() and out.stat().st_size > 0 and len(_running(engine)) == 2):
            await asyncio.sleep(0.05)
        pid = _running(engine)[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    killer = asyncio.create_task(kill_one_when_running())
    result = await run_job(plan, engine=engine, show_progress=False)
    killed = await asyncio.wait_for(killer, 1)
    assert result.counts["missing"] == 0 and result.counts["ok"] == 300
    assert_complete(str(out), 300)
    assert any(f"(pid {killed}) was lost" in n for n in notices), notices


def _running(engine: RayEngine) -> list[int]:
    run = engine.last_run
    return [w.pid for w in run.workers if w.pid is not None] if run is not None else []


async def test_resume_on_ray_runs_only_what_is_missing(cluster: str, tmp_path: Path) -> None:
    plan = cpu_plan(tmp_path, rows=12, repeats=2)
    settings = RaySettings(address=cluster, workers=2)
    await run_job(plan, engine=RayEngine(settings), show_progress=False)
    out = Path(plan["job"]["output"]["path"])
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:10]) + lines[10][:7])  # a kill mid-line after 10 rollouts
    result = await run_job(plan, engine=RayEngine(settings), existing="append", show_progress=False)
    assert (result.run["from_before"], result.run["new"]) == (10, 14)
    assert result.run["torn_bytes_removed"] == 7
    assert_complete(str(out), 24)


async def test_budget_stops_admitting_on_ray(cluster: str, tmp_path: Path) -> None:
    plan = cpu_plan(tmp_path, rows=50, repeats=4)
    engine = RayEngine(RaySettings(address=cluster, workers=2, concurrency_per_worker=2))
    result = await run_job(plan, engine=engine, max_tokens=2000, show_progress=False)
    assert result.budget.stopped
    records = read_jsonl(plan["job"]["output"]["path"])
    assert 0 < len(records) < 200  # the ones in flight finished, nothing new was admitted
    assert len({r["_gym"]["id"] for r in records}) == len(records)


async def test_the_budget_stops_a_runaway_rollout_on_ray(cluster: str, tmp_path: Path) -> None:
    """Rollouts that never end (always a tool call, no max_steps): each paid call reaches the
    driver's budget as it happens, the workers are halted, and the rollouts are abandoned, not
    recorded, as in a local run (before, spend was counted per record: this never stopped)."""
    plan = weather_plan(
        tmp_path,
        [weather_row(f"weather in city {i}?") for i in range(8)],
        model=stand_in_spec(faults={"always_call": True}),
    )
    engine = RayEngine(RaySettings(address=cluster, workers=2, concurrency_per_worker=2))
    result = await asyncio.wait_for(
        run_job(seal(plan), engine=engine, max_tokens=5000, show_progress=False), 120
    )
    budget = result.budget.as_dict()
    # over by what the other worker spent before it heard of this one's last calls: a few calls
    # of a long conversation on an idle machine (< 2,000), up to ~4,600 seen on a loaded one
    assert budget["stopped"] and 5000 <= budget["spent_tokens"] < 5000 + 6000, budget
    assert read_jsonl(plan["job"]["output"]["path"]) == []  # abandoned: a resume runs them
    assert result.counts["missing"] == 8


async def test_an_unreachable_endpoint_trips_the_breaker_on_ray(
    cluster: str, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    model = openai_spec(
        f"http://127.0.0.1:{port}/v1", retry={"initial_delay_s": 0.001, "max_delay_s": 0.005}
    )
    plan = weather_plan(
        tmp_path, [weather_row(f"weather in city {i}?") for i in range(60)], model=model
    )
    engine = RayEngine(RaySettings(address=cluster, workers=2, concurrency_per_worker=2))
    result = await asyncio.wait_for(run_job(seal(plan), engine=engine, show_progress=False), 120)
    assert result.endpoint_down and "could not reach the endpoint" in result.endpoint_down
    written = read_jsonl(plan["job"]["output"]["path"])
    assert 1 <= len(written) <= 2 * 5 + 4  # each worker's breaker, plus those in flight
    assert all(r["_gym"]["status"] == "failed" for r in written)


async def test_the_python_api_runs_on_ray(cluster: str, tmp_path: Path) -> None:
    from gym_run.api import run

    plan = cpu_plan(tmp_path, rows=10, repeats=3)
    result = await run(plan, ray=cluster, ray_workers=2, ray_worker_concurrency=4)
    assert result.counts["ok"] == 30 and result.exit_code == 0
    assert_complete(plan["job"]["output"]["path"], 30)


def test_cli_ray_address_and_exit_code(cluster: str, tmp_path: Path) -> None:
    plan = cpu_plan(tmp_path, rows=6, repeats=2)
    path = write_plan(tmp_path / "plan.json", plan)
    env = {**os.environ, **LOOPBACK_ENV}
    command = [sys.executable, "-m", "gym_run.cli", str(path), "--ray", cluster, "--ray-workers"]
    done = subprocess.run([*command, "2"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "12 ok, 0 failed (of 12)" in done.stdout
    assert "2 Ray workers" in done.stderr
    assert_complete(plan["job"]["output"]["path"], 12)
    again = subprocess.run([*command, "2"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_cli_unreachable_head_is_one_line(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", cpu_plan(tmp_path, rows=1, repeats=1))
    env = {**os.environ, **LOOPBACK_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "gym_run.cli", str(path), "--ray", "127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot connect to 127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_on_ray_keeps_what_finished_and_resume_completes(
    cluster: str, tmp_path: Path
) -> None:
    plan = cpu_plan(tmp_path, rows=20, repeats=20, verify_cpu_ms=5)
    path = write_plan(tmp_path / "plan.json", plan)
    out = Path(plan["job"]["output"]["path"])
    env = {**os.environ, **LOOPBACK_ENV}
    command = [sys.executable, "-m", "gym_run.cli", str(path), "--ray", cluster, "--grace-s", "20"]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and out.read_bytes().count(b"\n") >= 20):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"Resume with: gym-run {path} --resume --ray {cluster}" in stderr
    kept = read_jsonl(out)
    assert 20 <= len(kept) < 400 and len({r["_gym"]["id"] for r in kept}) == len(kept)
    done = subprocess.run(
        [*command[:4], "--resume", "--ray", cluster],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert_complete(str(out), 400)


async def test_more_workers_than_the_cluster_holds_go_on_with_those_that_fit(
    cluster: str, tmp_path: Path
) -> None:
    plan = cpu_plan(tmp_path, rows=10, repeats=4)
    notices: list[str] = []
    engine = RayEngine(RaySettings(address=cluster, workers=3), notices.append)
    result = await run_job(plan, engine=engine, show_progress=False)
    assert result.counts["ok"] == 40
    assert_complete(plan["job"]["output"]["path"], 40)
    assert any(
        "cannot hold 3 workers now (CPU: 1 x 3 wanted, 2 in the cluster)" in n for n in notices
    )
