"""The Python API: compile to a plan object with diagnostics; run as an async iterator of
durable records or to the end, with the CLI's guarantees (resume, no duplicates, exit codes);
and the example script in examples/ runs as written."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from gym_run.api import Run, final_records, reverify, run, run_sync
from gym_run.collect.options import JobKeywords, JobOptions
from gym_run.errors import OutputExistsError

from gym_compile.api import PlanCompileError, compile_plan
from tests.conftest import EXAMPLES, REPO
from tests.runtime_helpers import read_jsonl

WEATHER = [
    EXAMPLES / "simple_weather" / "simple_weather.yaml",
    EXAMPLES / "simple_weather" / "stand_in_model.yaml",
]


def weather(tmp_path: Path, *overrides: str):
    compiled = compile_plan(
        WEATHER,
        [f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}", *overrides],
        env=_no_env(tmp_path),
    )
    return compiled.raise_for_errors()


def _no_env(tmp_path: Path) -> Path:
    env = tmp_path / "env.yaml"
    env.write_text("{}\n", encoding="utf-8")
    return env


def test_compile_returns_every_diagnostic_and_raises_only_when_asked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXAMPLES / "simple_weather" / "stand_in_model.yaml")
        .read_text()
        .replace("model: stand-in-1", "modle: stand-in-1"),
        encoding="utf-8",
    )
    compiled = compile_plan([WEATHER[0], bad], env=_no_env(tmp_path))
    assert not compiled.ok and compiled.plan is None
    assert [d.code for d in compiled.errors] == ["GYM030"]
    assert compiled.errors[0].location is not None and compiled.errors[0].location.line == 5
    with pytest.raises(PlanCompileError) as caught:
        compiled.raise_for_errors()
    assert f"{bad}:5:" in str(caught.value) and "did you mean 'model'" in str(caught.value)
    plan = weather(tmp_path, "+num_repeats=2")
    assert plan.content_hash.startswith("sha256:") and plan.job["num_repeats"] == 2
    written = plan.write(tmp_path / "plan.json")
    result = run_sync(str(written))  # a path: verified as gym-run verifies it
    assert result.exit_code == 0 and result.counts["ok"] == 10


async def test_records_arrive_on_disk_and_an_early_stop_resumes_without_duplicates(tmp_path):
    plan = weather(tmp_path, "+num_repeats=10", "+num_samples_in_parallel=2")
    seen = []
    async with Run(plan) as records:
        async for record in records:
            on_disk = read_jsonl(tmp_path / "out.jsonl")
            assert record in on_disk  # durable before it is handed out
            seen.append(record["_gym"]["id"])
            if len(seen) == 7:
                break
    assert records.result is None  # stopped early: no result
    kept = read_jsonl(tmp_path / "out.jsonl")
    assert 7 <= len(kept) < 50
    with pytest.raises(OutputExistsError) as refused:
        await run(plan)
    assert refused.value.exit_code == 2
    result = await run(plan, resume=True)
    assert result.exit_code == 0 and result.job.run["from_before"] == len(kept)
    ids = [r["_gym"]["id"] for r in read_jsonl(tmp_path / "out.jsonl")]
    assert len(ids) == 50 == len(set(ids))
    assert [r["_gym"]["id"] for r in result.records()] == sorted(
        ids, key=lambda i: tuple(int(p) for p in i.split(":")[1:])
    )
    assert result.aggregate["outcome"]["pass_rate"] == 1.0


async def test_a_slow_consumer_slows_the_run_instead_of_piling_records_up(tmp_path):
    plan = weather(tmp_path, "+num_repeats=10", "+num_samples_in_parallel=8")
    runner = Run(plan, max_pending=1)
    most_waiting = 0
    count = 0
    async with runner:
        async for _record in runner:
            most_waiting = max(most_waiting, len(runner._waiting))
            count += 1
            await asyncio.sleep(0.005)
    assert count == 50 and runner.result is not None
    # one record at a time is written or waiting for us; the others wait before the writer
    assert most_waiting <= 1


async def test_gates_give_the_cli_exit_code(tmp_path):
    plan = weather(tmp_path)
    passed = await run(plan, fail_under=["0.9", "pass_rate=1"])
    assert passed.exit_code == 0
    failed = await run(plan, overwrite=True, fail_under=["pass@2=0.5"])  # one rollout per task
    assert failed.exit_code == 6
    assert sum(1 for _ in final_records(failed.rollouts_path)) == 5
    with pytest.raises(ValueError, match="unknown metric"):
        Run(plan, fail_under=["accuracy=1"])


def test_the_example_script_runs_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "python_api.py"), str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "compiled without diagnostics" in out
    assert out.count("  task ") == 5
    assert "24 ok, 0 failed; exit code 0" in out
    assert "pass@k: {'1': 0.5, '2': 0.5, '4': 0.5}" in out
    assert "B better on 0 tasks, worse on 3, same on 3" in out
    assert len(read_jsonl(tmp_path / "out" / "rollouts.jsonl")) == 24


def test_the_keywords_run_and_reverify_take_are_the_shared_options_and_conflicts_are_refused(
    tmp_path,
):
    # JobKeywords types the API's **options; JobOptions holds the defaults: the two must agree
    names = [f.name for f in dataclasses.fields(JobOptions)]
    assert list(JobKeywords.__annotations__) == names
    assert typing.get_type_hints(JobOptions) == typing.get_type_hints(JobKeywords)
    params = inspect.signature(Run.__init__).parameters
    scale = ["ray", "ray_workers", "ray_worker_concurrency", "ray_worker_cpus", "shard"]
    assert list(params)[1:] == ["plan", "progress", "max_pending", *scale, "options"]
    plan = weather(tmp_path)
    with pytest.raises(ValueError, match="resume keeps the rollouts file and overwrite replaces"):
        Run(plan, resume=True, overwrite=True)
    with pytest.raises(ValueError, match="retry_failed only makes sense with resume=True"):
        asyncio.run(
            reverify(plan, tmp_path / "out.jsonl", tmp_path / "new.jsonl", retry_failed=True)
        )
    with pytest.raises(TypeError, match="resumed"):
        Run(plan, resumed=True)
