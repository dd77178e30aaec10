"""`gym-run merge` reads shard files someone else may have written: a FIFO, a huge line, deep
nesting, a torn last line each get one located line (never a traceback, never a hang).

The FIFO cases run gym-run in a subprocess with a deadline: a merge that hangs fails the test
instead of hanging it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gym_run.cli import cli
from gym_run.collect.runner import run_job
from gym_run.scale.shard import Shard, shard_paths

from tests.runtime_helpers import read_jsonl, weather_plan, weather_row, write_plan

DEEP = b"[" * 100_000 + b"]" * 100_000


async def sharded(tmp_path: Path, rows: int = 4) -> tuple[dict[str, Any], str]:
    """A plan whose two shards have run, and the plan file's path."""
    plan = weather_plan(tmp_path, [weather_row(f"weather in city {i}?") for i in range(rows)])
    for k in (1, 2):
        await run_job(plan, part=Shard(k, 2).slice(plan["job"]), show_progress=False)
    return plan, str(write_plan(tmp_path / "plan.json", plan))


def paths(plan: dict[str, Any], k: int) -> tuple[str, str]:
    return shard_paths(plan["job"]["output"]["path"], k, 2)


def merge_in_subprocess(plan_path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gym_run.cli", "merge", plan_path],
        capture_output=True,
        text=True,
        timeout=60,
    )


def merge(plan_path: str) -> Any:
    done = CliRunner().invoke(cli, ["merge", plan_path])
    assert not isinstance(done.exception, Exception) or isinstance(done.exception, SystemExit), (
        done.exception
    )
    return done


def fifo_in_place_of(path: str) -> None:
    os.unlink(path)
    os.mkfifo(path)


@pytest.mark.parametrize("which", [0, 1], ids=["rollouts", "metrics"])
async def test_a_fifo_is_refused_at_once(tmp_path: Path, which: int) -> None:
    plan, plan_path = await sharded(tmp_path)
    target = paths(plan, 2)[which]
    fifo_in_place_of(target)
    done = merge_in_subprocess(plan_path)  # a hang raises TimeoutExpired
    assert "Traceback" not in done.stderr
    assert done.returncode not in (0, 3), done.stderr
    assert f"{target}: is a FIFO (named pipe), not a regular file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


async def test_a_line_over_the_record_limit_is_located(tmp_path, monkeypatch) -> None:
    plan, plan_path = await sharded(tmp_path)
    monkeypatch.setattr("gym_compile.files.RECORD_BYTES", 4096)
    monkeypatch.setattr("gym_run.collect.resume.RECORD_BYTES", 4096)
    rollouts = paths(plan, 1)[0]
    with open(rollouts, "ab") as fh:
        fh.write(b'{"x": "' + b"a" * 10_000 + b'"}\n')
    done = merge(plan_path)
    assert done.exit_code == 1
    assert f"{rollouts}:3: not a rollout record written by gym-run" in done.output
    assert "longer than 4096 bytes" in done.output


async def test_a_huge_metrics_file_is_refused_by_its_size(tmp_path: Path) -> None:
    plan, plan_path = await sharded(tmp_path)
    metrics = paths(plan, 1)[1]
    with open(metrics, "wb") as fh:
        fh.write(b'{"_gym": {"x": "' + b"a" * (21 * 1024 * 1024) + b'"}}')
    done = merge(plan_path)
    assert done.exit_code == 1
    assert f"{metrics}: is " in done.output and "over the" in done.output


@pytest.mark.parametrize("which", [0, 1], ids=["rollouts", "metrics"])
async def test_deep_nesting_is_located(tmp_path: Path, which: int) -> None:
    plan, plan_path = await sharded(tmp_path)
    target = paths(plan, 2)[which]
    if which == 0:
        with open(target, "ab") as fh:
            fh.write(DEEP + b"\n")
    else:
        Path(target).write_bytes(b'{"_gym": ' + DEEP + b"}")
    done = merge(plan_path)
    assert done.exit_code == 1, done.output
    where = f"{target}:3:" if which == 0 else f"{target}:"
    assert where in done.output and "nested deeper than 200 levels" in done.output


async def test_a_torn_last_line_is_named_and_its_rollout_counted_missing(tmp_path: Path) -> None:
    """A shard killed mid-write: the merge goes on without that rollout and says which line."""
    plan, plan_path = await sharded(tmp_path)
    rollouts = paths(plan, 1)[0]
    lines = Path(rollouts).read_bytes().splitlines(keepends=True)
    Path(rollouts).write_bytes(lines[0] + lines[1][:25])
    done = merge(plan_path)
    assert done.exit_code == 3, done.output
    assert "3 rollouts" in done.output and "1 missing" in done.output
    assert f"{rollouts}:2: a torn last line (25 bytes" in done.output
    assert len(read_jsonl(plan["job"]["output"]["path"])) == 3


async def test_a_shard_still_being_written_is_refused_and_left_alone(tmp_path: Path) -> None:
    """The shard's gym-run holds its file's exclusive lock (collect/writer.py) until it ends."""
    import fcntl

    from gym_run.collect.writer import RolloutWriter

    plan, plan_path = await sharded(tmp_path)
    rollouts = paths(plan, 2)[0]
    before = Path(rollouts).read_bytes()
    writer = RolloutWriter(rollouts, existing="append")  # a shard's run, still going
    try:
        done = merge(plan_path)
        assert done.exit_code == 1, done.output
        assert f"{rollouts} is still being written by a gym-run" in done.output
        assert not Path(plan["job"]["output"]["path"]).exists()  # nothing half-merged
    finally:
        await writer.aclose()
    assert Path(rollouts).read_bytes() == before
    assert merge(plan_path).exit_code == 0  # once it has finished
    with open(rollouts, "rb") as fh:  # and the merge let go of its lock
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
