"""--shard K/N and gym-run merge, on real runs against the stand-in: shards own disjoint rows,
resume on their own, and merged they equal one run's final set, in input order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gym_run.cli import cli
from gym_run.collect.resume import final_records
from gym_run.collect.runner import run_job
from gym_run.errors import GymRunError
from gym_run.scale.merge import merge_shards
from gym_run.scale.shard import Shard, ShardError, find_shard_count, parse_shard, shard_paths

from tests.runtime_helpers import read_jsonl, stand_in_spec, weather_plan, weather_row, write_plan

VOLATILE = ("latency_s",)


def stable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two runs of the same plan: timings, and what a
    model endpoint makes fresh for every answer (response and item ids, timestamps; the stand-in
    does so too, as OpenAI does). The content, call ids included, must be equal."""
    gym = {k: v for k, v in record["_gym"].items() if k not in VOLATILE}
    response = {
        k: v for k, v in record["response"].items() if k not in ("id", "created_at", "completed_at")
    }
    response["output"] = [{k: v for k, v in o.items() if k != "id"} for o in response["output"]]
    return {**record, "_gym": gym, "response": response}


#: Some answers late, so rollouts finish out of input order as on a busy machine: a run's file is
#: in completion order, and only its final set (export, merge) is in input order.
OUT_OF_ORDER = {"slow": 0.3, "slow_ms": 40, "seed": 7}


def plan_of(tmp_path: Path, rows: int = 7, repeats: int = 2) -> dict[str, Any]:
    return weather_plan(
        tmp_path,
        [weather_row(f"weather in city {i}?") for i in range(rows)],
        num_repeats=repeats,
        model=stand_in_spec(faults=OUT_OF_ORDER),
    )


def in_input_order(path: str | Path) -> list[dict[str, Any]]:
    """A run's final set as merge and export write it: one record per id, in input order."""
    return list(final_records(str(path)))


@pytest.mark.parametrize(
    ("spec", "expected"), [("1/1", Shard(1, 1)), ("3/8", Shard(3, 8)), (" 2 / 2 ", Shard(2, 2))]
)
def test_parse_shard(spec: str, expected: Shard) -> None:
    assert parse_shard(spec) == expected


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "a/b", "2", "1/4/2", "-1/4"])
def test_parse_shard_refuses_with_the_form(spec: str) -> None:
    with pytest.raises(ShardError, match="K/N|between|counts from"):
        parse_shard(spec)


def test_slurm_array_gives_k_and_n() -> None:
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "10"}
    assert parse_shard("slurm", env) == Shard(3, 8)
    with pytest.raises(ShardError, match="array job"):
        parse_shard("slurm", {})


@pytest.mark.parametrize("rows", [0, 1, 5, 16, 17])
@pytest.mark.parametrize("n", [1, 3, 4])
def test_shards_partition_the_rows(rows: int, n: int) -> None:
    owners = [[k for k in range(1, n + 1) if Shard(k, n).owns(t)] for t in range(rows)]
    assert all(len(o) == 1 for o in owners)
    assert sum(Shard(k, n).rows(rows, None) for k in range(1, n + 1)) == rows
    for k in range(1, n + 1):
        assert Shard(k, n).rows(rows, None) == sum(1 for o in owners if o == [k])
        if rows:  # limit 0 means all rows, as in the plan
            assert Shard(k, n).rows(rows + 10, rows) == Shard(k, n).rows(rows, None)


async def run_shards(plan: dict[str, Any], n: int) -> list[Any]:
    results = []
    for k in range(1, n + 1):
        part = Shard(k, n).slice(plan["job"])
        results.append(await run_job(plan, part=part, show_progress=False))
    return results


async def test_merged_shards_equal_one_runs_final_set(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    await run_job(plan, show_progress=False)
    single = in_input_order(plan["job"]["output"]["path"])
    results = await run_shards(plan, 3)
    assert [r.counts["planned"] for r in results] == [6, 4, 4]  # rows 0,3,6 / 1,4 / 2,5 x 2
    assert all(r.counts["missing"] == 0 for r in results)

    report = merge_shards(plan, dest=str(tmp_path / "merged.jsonl"))
    assert (report.shards, report.written, report.missing, report.ok) == (3, 14, 0, 14)
    merged = read_jsonl(tmp_path / "merged.jsonl")
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in merged] == [
        (t, k) for t in range(7) for k in range(2)
    ]
    assert [stable(r) for r in merged] == [stable(r) for r in single]
    assert len({r["_gym"]["id"] for r in merged}) == 14
    metrics = json.loads((tmp_path / "merged.metrics.json").read_text())
    assert metrics["reward"] == 1.0
    assert metrics["_gym"]["counts"] == {
        "planned": 14,
        "rollouts": 14,
        "ok": 14,
        "failed": 0,
        "missing": 0,
    }
    assert [s["shard"] for s in metrics["_gym"]["shards"]] == ["1/3", "2/3", "3/3"]
    single_metrics = json.loads(Path(plan["job"]["output"]["metrics_path"]).read_text())
    aggregate = metrics["_gym"]["aggregate"]
    assert aggregate["outcome"] == single_metrics["_gym"]["aggregate"]["outcome"]
    assert Path(aggregate["tasks"]["file"]).name == "merged.tasks.jsonl"
    assert metrics["_gym"]["calls"]["calls"] == 28  # two model calls per rollout, all shards


async def test_a_shard_resumes_on_its_own(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, rows=6, repeats=1)
    part = Shard(2, 2).slice(plan["job"])
    await run_job(plan, part=part, show_progress=False)
    lines = Path(part.output).read_bytes().splitlines(keepends=True)
    Path(part.output).write_bytes(b"".join(lines[:1]) + lines[1][:10])  # a kill mid-line
    result = await run_job(plan, part=part, existing="append", show_progress=False)
    assert result.run["from_before"] == 1 and result.run["torn_bytes_removed"] == 10
    assert sorted(r["_ng_task_index"] for r in read_jsonl(part.output)) == [1, 3, 5]
    assert result.counts == {"planned": 3, "rollouts": 3, "ok": 3, "failed": 0, "missing": 0}
    assert not Path(plan["job"]["output"]["path"]).exists()  # the plan's own file is untouched


async def test_merge_reports_a_missing_shard_and_resume_finishes_it(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, rows=5, repeats=1)
    await run_job(plan, part=Shard(1, 2).slice(plan["job"]), show_progress=False)
    assert find_shard_count(plan["job"]["output"]["path"]) == 2
    report = merge_shards(plan, shards=2)
    assert (report.absent, report.written, report.missing) == ([2], 3, 2)
    result = await run_job(plan, existing="append", show_progress=False)  # on the merged file
    assert result.run["from_before"] == 3 and result.run["new"] == 2
    tasks = [r["_ng_task_index"] for r in read_jsonl(plan["job"]["output"]["path"])]
    assert tasks[:3] == [0, 2, 4]  # the merged set first, as merged
    assert sorted(tasks[3:]) == [1, 3]  # then the resumed ones, in the order they finished


async def test_merge_refuses_a_record_in_the_wrong_shard(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, rows=4, repeats=1)
    await run_shards(plan, 2)
    first, second = (shard_paths(plan["job"]["output"]["path"], k, 2)[0] for k in (1, 2))
    with open(first, "ab") as fh:
        fh.write(Path(second).read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(GymRunError, match="belongs to shard 2/2, not 1/2"):
        merge_shards(plan)


def test_cli_shard_and_merge(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, rows=5, repeats=1)
    path = str(write_plan(tmp_path / "plan.json", plan))
    runner = CliRunner()
    for k in (1, 2):
        done = runner.invoke(cli, [path, "--shard", f"{k}/2", "-q"])
        assert done.exit_code == 0, done.output
    again = runner.invoke(cli, [path, "--shard", "1/2", "-q"])
    assert again.exit_code == 2 and "--resume" in again.output
    bad = runner.invoke(cli, [path, "--shard", "3/2"])
    assert bad.exit_code == 2 and "K counts from 1 to N" in bad.output
    merged = runner.invoke(cli, ["merge", path])
    assert merged.exit_code == 0, merged.output
    assert "merged 2 shards: 5 rollouts" in merged.output
    assert [r["_ng_task_index"] for r in read_jsonl(plan["job"]["output"]["path"])] == list(
        range(5)
    )
    refused = runner.invoke(cli, ["merge", path])
    assert refused.exit_code == 2 and "--overwrite" in refused.output


async def test_the_python_api_runs_shards_that_merge_into_one_runs_set(tmp_path: Path) -> None:
    from gym_run.api import run

    plan = weather_plan(tmp_path, [weather_row(f"city {i}") for i in range(7)], num_repeats=2)
    results = [await run(plan, shard=f"{k}/3") for k in (1, 2, 3)]
    assert [r.counts["rollouts"] for r in results] == [6, 4, 4]  # rows 0,3,6 / 1,4 / 2,5
    assert results[0].rollouts_path.endswith(".shard-1-of-3.jsonl")
    report = merge_shards(plan)
    assert (report.shards, report.written, report.missing) == (3, 14, 0)
    ids = [r["_gym"]["id"] for r in read_jsonl(plan["job"]["output"]["path"])]
    assert len(ids) == len(set(ids)) == 14


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"shard": "4/3"}, "--shard"),
        ({"ray": False, "ray_workers": 2}, "--no-ray runs in this process"),
        ({"ray_workers": 2}, "need --ray (or a ray: block"),
    ],
)
def test_the_python_api_refuses_contradicting_scale_choices(
    tmp_path: Path, keywords: dict[str, Any], message: str
) -> None:
    from gym_run.api import Run

    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Run(weather_plan(tmp_path), **keywords)
