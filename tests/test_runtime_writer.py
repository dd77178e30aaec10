"""gym_run.collect.writer / metrics / progress: whole lines, no silent appends, atomic metrics."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from gym_run.collect.metrics import Metrics
from gym_run.collect.progress import Live, Progress
from gym_run.collect.writer import RolloutWriter, encode_record, write_json_atomic
from gym_run.errors import GymRunError, OutputExistsError

from tests.runtime_helpers import read_jsonl


async def test_writes_whole_lines_and_creates_dirs(tmp_path):
    path = tmp_path / "a" / "b" / "rollouts.jsonl"
    durable = []
    writer = RolloutWriter(
        path, on_durable=lambda record, offset: durable.append((record["i"], offset))
    )
    for i in range(5):
        await writer.write({"i": i, "text": "é" * 10})
        text = path.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n")  # never half a line, whenever one looks
    await writer.aclose()
    assert [r["i"] for r in read_jsonl(path)] == list(range(5))
    data = path.read_bytes()
    assert [data[offset:].split(b"\n", 1)[0] for _, offset in durable] == data.splitlines()


async def test_write_waits_for_the_disk_only_under_back_pressure(tmp_path, monkeypatch):
    """Workers go on to their next rollout while the batch is fsync'ed; a full queue makes them wait."""
    import gym_run.collect.writer as writer_module

    path = tmp_path / "rollouts.jsonl"
    durable: list[int] = []
    writer = RolloutWriter(path, on_durable=lambda record, offset: durable.append(record["i"]))
    await writer.write({"i": 0})
    assert durable == []  # handed over, not yet on disk: the worker did not wait
    monkeypatch.setattr(writer_module, "MAX_WAITING", 1)
    await writer.write({"i": 1})
    assert durable == [0, 1]  # the queue was full: this write returned only once on disk
    await writer.aclose()
    assert [r["i"] for r in read_jsonl(path)] == [0, 1]


async def test_concurrent_writers_are_group_committed_in_order(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    order = []
    writer = RolloutWriter(path, on_durable=lambda record, offset: order.append(record["i"]))
    await asyncio.gather(*(writer.write({"i": i}) for i in range(200)))
    await writer.aclose()
    assert sorted(order) == list(range(200)) and [r["i"] for r in read_jsonl(path)] == order


async def test_a_cancelled_writer_still_gets_its_record_written(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    writer = RolloutWriter(path)
    task = asyncio.create_task(writer.write({"i": 1}))
    await asyncio.sleep(0)
    task.cancel()
    await writer.aclose()
    assert read_jsonl(path) == [{"i": 1}]


def test_lone_surrogates_round_trip(tmp_path):
    line = encode_record({"text": "a\ud800b"})
    assert json.loads(line) == {"text": "a\ud800b"}


def test_refuses_existing_output_naming_resume_and_overwrite(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text('{"old": 1}\n')
    with pytest.raises(OutputExistsError, match="pass --resume .* or --overwrite") as info:
        RolloutWriter(path)
    assert info.value.exit_code == 2
    assert path.read_text() == '{"old": 1}\n'


async def test_overwrite_truncates_append_keeps_and_empty_file_is_fine(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text('{"old": 1}\n' * 3)
    writer = RolloutWriter(path, existing="overwrite")
    await writer.write({"new": 1})
    await writer.aclose()
    assert read_jsonl(path) == [{"new": 1}]
    writer = RolloutWriter(path, existing="append")
    await writer.write({"new": 2})
    await writer.aclose()
    assert read_jsonl(path) == [{"new": 1}, {"new": 2}]
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    RolloutWriter(empty).close()


def test_a_second_writer_on_the_same_file_is_refused(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    first = RolloutWriter(path)
    try:
        with pytest.raises(OutputExistsError, match="another gym-run is writing"):
            RolloutWriter(path, existing="append")
    finally:
        first.close()
    RolloutWriter(path, existing="append").close()


def test_unwritable_output_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(GymRunError, match="cannot write rollouts to"):
        RolloutWriter(blocker / "rollouts.jsonl")


def test_metrics_written_atomically(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    write_json_atomic(path, {"reward": 1})
    write_json_atomic(path, {"reward": 0.5})
    assert json.loads(path.read_text()) == {"reward": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_metrics_means_of_numeric_fields_of_ok_rollouts():
    metrics = Metrics()
    usage = {
        "input_tokens": 3,
        "cached_input_tokens": 0,
        "output_tokens": 2,
        "reasoning_tokens": 0,
        "total_tokens": 5,
    }
    metrics.add(
        {
            "reward": 1.0,
            "accuracy": 1,
            "flag": True,
            "_ng_task_index": 0,
            "_gym": {"status": "ok", "usage": usage},
        }
    )
    metrics.add({"reward": 0.0, "_ng_task_index": 1, "_gym": {"status": "ok", "usage": usage}})
    metrics.add({"_ng_task_index": 2, "_gym": {"status": "failed"}})
    doc = metrics.document(wall_time_s=2.0, plan_hash="sha256:x")
    assert doc["reward"] == 0.5 and doc["accuracy"] == 1.0
    assert "flag" not in doc and "_ng_task_index" not in doc
    assert doc["_gym"]["counts"] == {
        "planned": 3,
        "rollouts": 3,
        "ok": 2,
        "failed": 1,
        "missing": 0,
    }
    assert doc["_gym"]["usage"]["total_tokens"] == 10
    assert doc["_gym"]["rollouts_per_s"] == 1.5


def test_progress_off_when_quiet_and_redrawn_on_a_terminal():
    quiet = io.StringIO()
    progress = Progress(3, stream=quiet, enabled=False)
    progress.record(True)
    progress.close()
    assert quiet.getvalue() == "" and not progress.enabled

    shown = io.StringIO()
    progress = Progress(3, stream=shown, enabled=True, min_interval_s=0)
    progress.record(True, reward=1.0)
    progress.record(False)
    assert "rollouts 2/3 (66.7%), 1 failed, mean reward 1.000" in shown.getvalue()
    progress.close()
    assert shown.getvalue().endswith("\r\x1b[2K")


def test_progress_prints_plain_periodic_lines_when_not_a_terminal():
    log = io.StringIO()  # not a terminal, like a CI log
    progress = Progress(100, stream=log, plain_interval_s=0.05)
    assert progress.mode == "plain"
    progress.record(True, reward=0.5)
    assert log.getvalue() == ""  # not before the first interval has passed
    time.sleep(0.06)
    progress.record(True, reward=1.0)
    time.sleep(0.06)
    progress.refresh()  # the ticker: lines keep coming while nothing finishes
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("gym-run: rollouts 2/100 (2.0%), mean reward 0.750, ")
    assert "ETA " in lines[0] and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    progress.close()
    assert len(log.getvalue().splitlines()) == 2


def test_progress_redraws_are_rate_limited():
    out = io.StringIO()
    progress = Progress(1000, stream=out, enabled=True, min_interval_s=60)
    for _ in range(999):
        progress.record(True)
    assert out.getvalue().count("rollouts ") == 1
    progress.record(True)  # the last one is always drawn
    assert "rollouts 1,000/1,000 (100.0%)" in out.getvalue()


def test_progress_shows_resumed_in_flight_retries_and_429s():
    progress = Progress(
        10,
        stream=io.StringIO(),
        enabled=True,
        min_interval_s=0,
        already_done=4,
        already_failed=1,
        live=lambda: Live(in_flight=3, retries=7, rate_limited=5),
    )
    progress.record(
        True, replaced_failed=True
    )  # a failed rollout re-run and now ok: not one more done
    progress.record(False)
    line = progress.line()
    assert line.startswith("rollouts 5/10 (50.0%) (4 from before), 1 failed, 3 in flight, ")
    assert line.endswith(", 7 retries (5 x 429)")


async def test_a_cancel_during_close_still_closes_the_file_and_releases_its_lock(tmp_path):
    """A second cancellation while aclose waits for the last group commit (the Python API's
    async-generator finalizer racing `async with`) must not leave the file open and locked."""
    import asyncio

    from gym_run.collect.writer import RolloutWriter

    path = str(tmp_path / "r.jsonl")
    writer = RolloutWriter(path, existing="refuse")
    for i in range(50):
        await writer.write({"i": i, "_gym": {"id": str(i)}})
    closing = asyncio.create_task(writer.aclose())
    await asyncio.sleep(0)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    again = RolloutWriter(path, existing="append")  # raises "another gym-run is writing" if leaked
    await again.aclose()
    assert len(read_jsonl(path)) == 50
