"""`gym-run report` given what people give it: the metrics file gym-run printed last, a file of
something else, an empty file: a report of the right rollouts or one clear line (exit 2)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.collect.runner import run_job

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> Path:
    """examples/judge_example on the stand-in: rollouts and metrics beside them."""
    tmp = tmp_path_factory.mktemp("judged")
    result = compile_config(
        sorted((EXAMPLES / "judge_example").glob("*.yaml")),
        [f"+output_jsonl_fpath={tmp / 'judged.jsonl'}"],
        Options(env=tmp / "none"),
    )
    asyncio.run(run_job(result.plan, show_progress=False))
    return tmp / "judged.jsonl"


def report(*args: str):
    return CliRunner().invoke(gym_run, ["report", *args], prog_name="gym-run")


def test_a_metrics_file_reports_the_rollouts_beside_it(judged, tmp_path):
    out = tmp_path / "from-metrics.html"
    done = report(str(judged.with_suffix(".metrics.json")), "-o", str(out))
    assert done.exit_code == 0, done.output
    assert f"is a metrics file; reporting on {judged}" in done.output
    assert "rollouts: 6 (6 ok, 0 failed)" in done.output and "wall time:" in done.output
    assert 'class="rollout' in out.read_text(encoding="utf-8")


def test_a_metrics_file_alone_is_a_clear_error(judged, tmp_path):
    lone = tmp_path / "lone.metrics.json"
    lone.write_text(judged.with_suffix(".metrics.json").read_text(), encoding="utf-8")
    done = report(str(lone), "-o", str(tmp_path / "x.html"))
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert done.output.startswith(f"gym-run: error: {lone} is a metrics file, not rollouts")
    assert "lone.jsonl, which does not exist" in done.output
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "is empty: there are no rollouts to report"),
        ('{"task": 0, "rollouts": 4}\n{"task": 1, "rollouts": 4}\n', "holds no rollout records (2"),
        ("not json at all\n", "holds no rollout records (1 line(s)"),
    ],
)
def test_a_file_without_rollout_records_writes_no_report(tmp_path, content, says):
    path = tmp_path / "other.jsonl"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "other.html"
    done = report(str(path), "-o", str(out))
    assert done.exit_code == 2 and says in done.output, done.output
    assert not out.exists()


def test_a_pretty_printed_record_file_is_not_mistaken_for_metrics(judged, tmp_path):
    """Only gym-run's metrics shape (an object with _gym.counts) is taken for a metrics file."""
    other = tmp_path / "doc.json"
    other.write_text(json.dumps({"_gym": {"plan": "x"}}, indent=2), encoding="utf-8")
    done = report(str(other), "--text")
    assert done.exit_code == 2 and "holds no rollout records" in done.output
