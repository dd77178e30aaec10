"""gym_run.collect.resume + run_job(existing="append"): the final set, torn tails, re-runs, export, deadlines."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from aiohttp import web
from gym_run.collect.metrics import Metrics
from gym_run.collect.record import failed_record, ok_record
from gym_run.collect.resume import FAILED, OK, Ledger, export_final, export_plan, scan
from gym_run.collect.runner import run_job
from gym_run.collect.writer import encode_record
from gym_run.errors import GymRunError, OutputExistsError
from jsonschema import Draft202012Validator

from gym_compile.assets import load_schema
from tests.runtime_helpers import (
    FAST_RETRY,
    ids,
    openai_spec,
    read_jsonl,
    recording_stand_in,
    start_endpoint,
    weather_plan,
    weather_row,
)

HASH = "sha256:" + "cd" * 32


def _ok(task, rollout=0, reward=1.0):
    return ok_record(
        {"n": task, "reward": reward, "_gym": {"usage": {"total_tokens": 2}}},
        plan_hash=HASH,
        task=task,
        rollout=rollout,
    )


def _failed(task, rollout=0, message="boom"):
    return failed_record(
        {"n": task}, RuntimeError(message), plan_hash=HASH, task=task, rollout=rollout
    )


def _write(path, records, tail=b""):
    path.write_bytes(b"".join(encode_record(r) for r in records) + tail)
    return str(path)


def test_scan_keeps_first_ok_else_last_failed_and_measures_a_torn_tail(tmp_path):
    records = [
        _ok(0),
        _failed(1),
        _failed(2, message="first"),
        _ok(1, reward=0.0),
        _failed(2, message="last"),
        _ok(0, reward=0.5),
    ]
    path = _write(tmp_path / "r.jsonl", records, tail=b'{"n": 3, "resp')
    ledger, metrics = Ledger(HASH, 1, 4), Metrics()
    report = scan(path, ledger, metrics)
    assert [ledger.state(i) for i in range(4)] == [OK, OK, FAILED, 0]
    assert (ledger.ok, ledger.failed, metrics.ok, metrics.failed) == (2, 1, 2, 1)
    assert metrics.means() == {
        "n": 0.5,
        "reward": 0.5,
    }  # the first ok of task 0 (1.0) and task 1's (0.0)
    assert report.records == 6 and report.not_final == 1 and report.torn_bytes == 14
    data = open(path, "rb").read()
    assert report.size == len(data) - 14
    line = data[ledger.offset(2) :].split(b"\n", 1)[0]
    assert json.loads(line)["_gym"]["error"]["message"] == "last"
    ledger.close()


def test_export_writes_the_final_set_in_input_order(tmp_path):
    path = _write(
        tmp_path / "r.jsonl", [_ok(2), _failed(0), _ok(1), _failed(0, message="again"), _ok(0)]
    )
    out = tmp_path / "final.jsonl"
    report = export_final(path, str(out), Ledger(HASH, 1, 4))
    final = read_jsonl(out)
    assert ids(final) == [(0, 0), (1, 0), (2, 0)] and all(
        r["_gym"]["status"] == "ok" for r in final
    )
    assert (report.ok, report.failed, report.missing, report.written) == (3, 0, 1, 3)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_final(path, str(out), Ledger(HASH, 1, 4))
    _write(tmp_path / "r.jsonl", [_ok(1), _failed(0)])
    report = export_final(path, str(out), Ledger(HASH, 1, 4), ok_only=True, overwrite=True)
    assert ids(read_jsonl(out)) == [(1, 0)] and report.failed == 1
    with pytest.raises(OutputExistsError, match="rollouts file itself"):
        export_final(path, path, Ledger(HASH, 1, 4), overwrite=True)


def test_another_plans_file_and_foreign_lines_are_refused(tmp_path):
    other = ok_record({"reward": 1}, plan_hash="sha256:" + "ee" * 32, task=0, rollout=0)
    path = _write(tmp_path / "r.jsonl", [_ok(0), other])
    with pytest.raises(
        OutputExistsError, match=r"r.jsonl:2: rollout id eeeeeeeeeeee:0:0 belongs to another plan"
    ):
        scan(path, Ledger(HASH, 1, 2), Metrics())
    path = _write(tmp_path / "r.jsonl", [_ok(0)], tail=b"not json\n" + encode_record(_ok(1)))
    with pytest.raises(
        GymRunError, match=r"r.jsonl:2: not a rollout record written by gym-run \(not JSON"
    ):
        scan(path, Ledger(HASH, 1, 2), Metrics())
    path = _write(tmp_path / "r.jsonl", [_ok(5)])
    with pytest.raises(OutputExistsError, match="outside this plan's 2 rollouts"):
        scan(path, Ledger(HASH, 1, 2), Metrics())


class _Flaky:
    """A stand-in behind a switch: rows about paris fail with a 500 while `broken`."""

    def __init__(self):
        self.broken = True
        self.calls = 0

    def __call__(self, body, index):
        self.calls += 1
        if self.broken and "paris" in json.dumps(body["input"]):
            return web.json_response(
                {"error": {"message": "down", "type": "server_error", "param": None, "code": None}},
                status=500,
            )
        return recording_stand_in(body, index)


async def test_resume_skips_done_and_retry_failed_supersedes(tmp_path, aiohttp_server):
    flaky = _Flaky()
    _endpoint, url = await start_endpoint(aiohttp_server, flaky)
    rows = [weather_row(), weather_row("is it sunny in paris?"), weather_row("in rome?")]
    plan = weather_plan(
        tmp_path, rows, model=openai_spec(url, retry=FAST_RETRY), num_repeats=2, concurrency=3
    )
    path = plan["job"]["output"]["path"]
    first = await run_job(plan, show_progress=False)
    assert first.counts == {"planned": 6, "rollouts": 6, "ok": 4, "failed": 2, "missing": 0}

    calls = flaky.calls
    again = await run_job(plan, existing="append", show_progress=False)
    assert flaky.calls == calls and len(read_jsonl(path)) == 6  # nothing done twice, failures kept
    assert again.counts == first.counts and again.run["from_before"] == 6 and again.run["new"] == 0

    flaky.broken = False
    fixed = await run_job(plan, existing="append", retry_failed=True, show_progress=False)
    assert fixed.counts == {"planned": 6, "rollouts": 6, "ok": 6, "failed": 0, "missing": 0}
    assert fixed.run["superseded"] == 2 and fixed.metrics["reward"] == 1.0
    raw = read_jsonl(path)
    assert len(raw) == 8 and Counter(r["_gym"]["status"] for r in raw) == {"ok": 6, "failed": 2}
    report = export_plan(plan, str(tmp_path / "final.jsonl"))
    final = read_jsonl(tmp_path / "final.jsonl")
    assert ids(final) == [(t, r) for t in range(3) for r in range(2)] and report.ok == 6
    with open(plan["job"]["output"]["metrics_path"]) as fh:
        assert json.load(fh)["_gym"]["counts"]["ok"] == 6


async def test_resume_after_a_kill_cuts_the_torn_line_and_finishes(tmp_path):
    rows = [weather_row(f"in city{i}?") for i in range(6)]
    plan = weather_plan(tmp_path, rows, concurrency=2)
    path = plan["job"]["output"]["path"]
    await run_job(plan, show_progress=False)
    lines = open(path, "rb").read().splitlines(keepends=True)
    with open(path, "wb") as fh:  # what kill -9 in the middle of the 4th write leaves
        fh.write(b"".join(lines[:3]) + lines[3][:40])
    notes = []
    result = await run_job(plan, existing="append", show_progress=False, notice=notes.append)
    assert notes == ["gym-run: removed a torn last line (40 bytes) left by an interrupted run"]
    records = read_jsonl(path)
    assert sorted(ids(records)) == [(t, 0) for t in range(6)]
    assert result.run == {
        "resumed": True,
        "from_before": 3,
        "new": 3,
        "superseded": 0,
        "torn_bytes_removed": 40,
        "interrupted": False,
        "endpoint_down": None,
    }
    assert result.counts["ok"] == 6


async def test_resume_refuses_a_file_of_another_plan(tmp_path):
    plan = weather_plan(tmp_path)
    await run_job(plan, show_progress=False)
    changed = weather_plan(tmp_path, num_repeats=2)
    with pytest.raises(OutputExistsError, match="belongs to another plan"):
        await run_job(changed, existing="append", show_progress=False)


async def test_a_rollout_past_its_deadline_is_a_failure_and_the_rest_go_on(
    tmp_path, aiohttp_server
):
    async def answer(body, index):
        if "slow" in json.dumps(body["input"]):
            await asyncio.sleep(5)
        return recording_stand_in(body, index)

    _endpoint, url = await start_endpoint(aiohttp_server, answer)
    rows = [weather_row("in oslo?"), weather_row("slow in lima?"), weather_row("in rome?")]
    plan = weather_plan(tmp_path, rows, model=openai_spec(url), rollout_timeout_s=0.3)
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 2 and result.counts["failed"] == 1
    (failed,) = [
        r for r in read_jsonl(plan["job"]["output"]["path"]) if r["_gym"]["status"] == "failed"
    ]
    assert failed["_ng_task_index"] == 1
    assert not list(Draft202012Validator(load_schema("rollout.schema.json")).iter_errors(failed))
    assert failed["_gym"]["error"] == {
        "class": "RolloutTimeout",
        "status": None,
        "attempts": None,
        "request_id": None,
        "message": "the rollout took longer than rollout_timeout_s=0.3",
    }
