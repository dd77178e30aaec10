"""The ray: config block (validated at compile time, carried into the plan), the flags that
override it, the message without Ray installed, and the worker's protocol run in this process."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from gym_run.cli import cli
from gym_run.collect.budget import Budget
from gym_run.endpoint.pricing import CostMeter, PriceTable
from gym_run.scale.settings import RaySettings
from gym_run.scale.worker import RolloutWorker, WorkerJob
from gym_run.secrets import server_specs
from gym_run.servers.builtin.cpu_bound import CpuBound

from gym_compile.cli import main as compile_cli
from tests.runtime_helpers import seal, stand_in_spec, weather_plan, weather_row, write_plan

REPO = Path(__file__).resolve().parent.parent
WEATHER = REPO / "examples" / "simple_weather"


def compile_with(tmp_path: Path, block: str) -> tuple[int, str, Path]:
    extra = tmp_path / "ray.yaml"
    extra.write_text(block)
    out = tmp_path / "plan.json"
    done = CliRunner().invoke(
        compile_cli,
        [
            str(WEATHER / "simple_weather.yaml"),
            str(WEATHER / "stand_in_model.yaml"),
            str(extra),
            f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}",
            "-o",
            str(out),
        ],
    )
    return done.exit_code, done.output, out


def test_ray_block_goes_into_the_plan(tmp_path: Path) -> None:
    code, output, out = compile_with(
        tmp_path, "ray:\n  address: 127.0.0.1:6379\n  workers: 3\n  concurrency_per_worker: 8\n"
    )
    assert code == 0, output
    block = json.loads(out.read_text())["job"]["ray"]
    assert block == {
        "address": "127.0.0.1:6379",
        "workers": 3,
        "resources_per_worker": {"CPU": 1},
        "concurrency_per_worker": 8,
    }
    settings = RaySettings.from_plan(json.loads(out.read_text())["job"])
    assert settings == RaySettings("127.0.0.1:6379", 3, {"CPU": 1.0}, 8)


def test_no_ray_block_no_key_so_plans_keep_their_hash(tmp_path: Path) -> None:
    code, output, out = compile_with(tmp_path, "limit: 2\n")
    assert code == 0, output
    assert "ray" not in json.loads(out.read_text())["job"]


def test_a_bad_ray_block_is_located(tmp_path: Path) -> None:
    code, output, _ = compile_with(
        tmp_path, "ray:\n  workerz: 2\n  resources_per_worker: {CPU: -1}\n"
    )
    assert code == 1
    assert "ray.yaml:2:3: error[GYM030] $.ray.workerz: unknown key 'workerz'" in output
    assert "did you mean 'workers'?" in output
    assert "ray.yaml:3:" in output and "$.ray.resources_per_worker.CPU" in output


def test_flags_override_the_block_key_by_key() -> None:
    block = RaySettings("10.0.0.1:6379", 4, {"CPU": 2.0, "GPU": 1.0, "sandbox": 1.0}, 8)
    out = block.override(workers=2, cpus_per_worker=0.5)
    assert (out.address, out.workers, out.concurrency_per_worker) == ("10.0.0.1:6379", 2, 8)
    assert out.actor_options() == {"num_cpus": 0.5, "num_gpus": 1.0, "resources": {"sandbox": 1.0}}
    assert block.override(address="local").address is None
    assert not block.loopback
    assert RaySettings().loopback and RaySettings("127.0.0.1:1").loopback
    assert RaySettings("localhost:1").loopback and not RaySettings("auto").loopback


@pytest.fixture
def plan_path(tmp_path: Path) -> str:
    return str(write_plan(tmp_path / "plan.json", weather_plan(tmp_path)))


def test_ray_missing_says_how_to_install(plan_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray fails
    done = CliRunner().invoke(cli, [plan_path, "--ray"])
    assert done.exit_code == 1
    assert "--ray needs Ray, which is not installed: pip install 'ray>=2.10'" in done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-ray", "--ray"], "--no-ray runs in this process"),
        (["--ray-workers", "2"], "need --ray (or a ray: block"),
        (["--ray-workers", "0", "--ray"], "0 is not in the range"),
        (["--shard", "x"], "expected K/N"),
    ],
)
def test_flag_mistakes_are_usage_errors(plan_path: str, args: list[str], message: str) -> None:
    done = CliRunner().invoke(cli, [plan_path, *args])
    assert done.exit_code == 2 and message in done.output, done.output


def worker_job(plan: dict[str, object], budget: Budget | None = None) -> WorkerJob:
    job = plan["job"]
    assert isinstance(job, dict)
    return WorkerJob(
        plan=plan,
        plan_hash=str(plan["content_hash"]),
        specs=server_specs(plan),
        agent=job["agent"],
        params_override={},
        rollout_timeout_s=None,
        cache_spec=None,
        concurrency=4,
        budget=budget or Budget(),
        meter=CostMeter(PriceTable.load(None), {}),
    )


async def test_worker_runs_what_it_is_handed_and_reports_calls(tmp_path: Path) -> None:
    plan = weather_plan(tmp_path, [weather_row(f"city {i}") for i in range(3)])
    worker = RolloutWorker(worker_job(plan))
    started = await worker.start()
    assert isinstance(started["pid"], int)
    try:
        await worker.submit([(t, 0, weather_row(f"city {t}")) for t in range(3)])
        records: list[dict[str, object]] = []
        calls = 0
        while len(records) < 3:
            done, stats = await worker.results(5.0)
            records += done
            calls += stats["calls"]
        assert sorted(r["_ng_task_index"] for r in records) == [0, 1, 2]  # type: ignore[type-var]
        assert calls == 6
        assert await worker.results(0.01) == ([], {**stats, "calls": 0, "requests": 0})
    finally:
        await worker.close()


async def test_a_worker_stops_itself_at_the_budget_and_reports_what_it_abandoned(
    tmp_path: Path,
) -> None:
    """Rollouts that never end: the worker's own view (the driver's spend, which started at 900
    tokens, plus its calls since) reaches max_tokens without the driver's halt; every paid call
    is reported, and the rollouts come back as abandoned, with no record."""
    plan = weather_plan(
        tmp_path,
        [weather_row(f"city {i}") for i in range(2)],
        model=stand_in_spec(faults={"always_call": True}),
    )
    worker = RolloutWorker(worker_job(seal(plan), Budget(max_tokens=1500)))
    assert "pid" in await worker.start()
    try:
        await worker.submit([(t, 0, weather_row(f"city {t}")) for t in range(2)])
        tokens = 0  # what the worker reported: the driver's spend is 900 + this
        abandoned: list[object] = []
        for _ in range(200):
            done, stats = await worker.results(1.0, (0.0, 900 + tokens))
            assert done == []
            tokens += sum(usage["total_tokens"] for _server, usage in stats.get("spent", []))
            abandoned += stats.get("abandoned", [])
            if len(abandoned) == 2:
                break
        assert sorted(abandoned) == [(0, 0), (1, 0)]  # type: ignore[type-var]
        assert 600 <= tokens < 600 + 2 * 400  # stopped at the run's limit, within a call each
        assert worker.watch.stopped is not None and "budget reached" in worker.watch.stopped
    finally:
        await worker.close()


async def test_worker_start_failure_comes_back_as_an_error_not_a_raise(tmp_path: Path) -> None:
    plan = weather_plan(tmp_path)
    plan["servers"]["example_simple_weather"]["implementation"] = "nope"
    answer = await RolloutWorker(worker_job(seal(plan))).start()
    assert answer["exit_code"] == 4 and "'nope' is not built into this gym-run" in answer["error"]


async def test_cpu_bound_verify_burns_the_cpu_it_is_told() -> None:
    server = CpuBound("cpu", {"verify_cpu_ms": 15})
    before = time.thread_time()
    answer = await server.verify({"x": 1})
    assert time.thread_time() - before >= 0.015
    assert answer == {"x": 1, "reward": 1.0}


def test_the_cpu_bound_example_compiles(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    done = CliRunner().invoke(
        compile_cli, [str(REPO / "examples/cpu_bound/cpu_bound.yaml"), "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    servers = json.loads(out.read_text())["servers"]
    assert servers["example_cpu_bound"]["config"]["verify_cpu_ms"] == 20
