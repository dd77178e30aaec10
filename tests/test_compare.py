"""gym-run compare A B (and report A B): per-task deltas from two real runs' files, the overall
table, mismatched prompts flagged, HTML well-formed; report's aggregate section, gates and JUnit."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.report.compare import compare_files
from gym_run.report.compare_render import comparison_text, metric_rows

from tests.runtime_helpers import write_jsonl


def record(plan: str, task: int, rollout: int, reward: float | None, **gym: Any) -> dict[str, Any]:
    """A final record as gym-run writes it (reward None: a failed rollout)."""
    row = {"responses_create_params": {"input": f"question {task}"}, "expected_answer": "x"}
    if reward is None:
        body = {"status": "failed", "error": {"class": "ModelCallError", "message": "HTTP 429"}}
    else:
        body = {
            "status": "ok",
            "usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
            "latency_s": 0.5,
            "cost_usd": 0.001,
            **gym,
        }
        row["reward"] = reward
    return {
        **row,
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "_gym": {"id": f"{plan}:{task}:{rollout}", **body},
    }


def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    a = [record("aaaaaaaaaaaa", t, r, 1.0 if t % 2 else 0.0) for t in range(6) for r in range(2)]
    b = [record("bbbbbbbbbbbb", t, r, 1.0 if t < 4 else 0.0) for t in range(6) for r in range(2)]
    b[11] = record("bbbbbbbbbbbb", 5, 1, None)  # a failure in B
    b.append(record("bbbbbbbbbbbb", 6, 0, 1.0))  # a task only B has
    # B's file holds a superseded failure first: the final set takes the ok record
    b.insert(0, record("bbbbbbbbbbbb", 0, 0, None))
    return write_jsonl(tmp_path / "a.jsonl", a), write_jsonl(tmp_path / "b.jsonl", b)


def test_per_task_deltas_and_overall(tmp_path):
    a, b = two_runs(tmp_path)
    c = compare_files(str(a), str(b))
    assert (c.tasks, c.only_a, c.only_b) == (6, 0, 1)
    # A: odd tasks pass. B: tasks 0-3 pass. 0, 2 better; 5 worse; 1, 3, 4 same.
    assert (c.better, c.worse, c.same) == (2, 1, 3)
    assert [r.task for r in c.improvements] == [0, 2]
    assert [(r.task, r.a, r.b) for r in c.regressions] == [(5, 1.0, 0.0)]
    assert c.deltas.mean == pytest.approx((1 + 1 - 1) / 6)
    low, high = c.interval() or (0.0, 0.0)
    assert low < c.deltas.mean < high
    rows = {r.label: r for r in metric_rows(c)}
    assert rows["rollouts (failed)"].b == "13 (1)" and rows["rollouts (failed)"].verdict == "worse"
    assert rows["mean reward (failed as 0)"].a == "0.500"
    assert rows["mean reward (failed as 0)"].b == f"{9 / 13:.3f}"
    assert rows["tokens"].delta == "" and rows["tokens"].verdict == ""  # 12 ok rollouts each
    assert rows["latency p50"].b == "500.0 ms"
    assert rows["cost"].a == "$0.0120"
    text = comparison_text(c)
    assert "B better on 2, worse on 1, same on 3" in text
    assert "only in A: 0, only in B: 1" in text
    assert "failures: A none; B ModelCallError 1" in text


def test_different_prompts_are_flagged(tmp_path):
    a, b = two_runs(tmp_path)
    lines = b.read_text().splitlines()
    changed = [json.loads(line) for line in lines]
    for rec in changed:
        if rec["_ng_task_index"] == 3:
            rec["responses_create_params"]["input"] = "another question"
    write_jsonl(b, changed)
    c = compare_files(str(a), str(b))
    assert c.input_mismatch == 1
    assert "1 tasks were asked different prompts" in comparison_text(c)


class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def test_compare_cli_and_report_a_b(tmp_path):
    a, b = two_runs(tmp_path)
    runner = CliRunner()
    ran = runner.invoke(gym_run, ["compare", str(a), str(b), "-o", str(tmp_path / "c.html")])
    assert ran.exit_code == 0, ran.output
    html = (tmp_path / "c.html").read_text()
    checker = _Checker()
    checker.feed(html)
    assert not checker.stack and {"overall", "tasks"} <= checker.ids
    assert "question 5" in html
    assert not re.search(r"(?:src|href)\s*=|<script|url\(", html)  # self-contained
    also = runner.invoke(gym_run, ["report", str(a), str(b), "--text"])
    assert also.exit_code == 0 and "B better on 2, worse on 1, same on 3" in also.output
    refused = runner.invoke(gym_run, ["report", str(a), str(b), "--fail-under", "0.5"])
    assert refused.exit_code == 2 and "take one rollouts file" in refused.output


def test_report_shows_aggregates_gates_and_writes_junit(tmp_path):
    _a, b = two_runs(tmp_path)
    runner = CliRunner()
    junit = tmp_path / "b.xml"
    ran = runner.invoke(
        gym_run,
        [
            "report",
            str(b),
            "-o",
            str(tmp_path / "b.html"),
            "--junit",
            str(junit),
            "--fail-under",
            "pass@2=0.7",
        ],
    )
    assert ran.exit_code == 6, ran.output
    assert "gate: pass@2 0.6667 >= 0.7: FAILED" in ran.output
    html = (tmp_path / "b.html").read_text()
    assert 'id="aggregate"' in html and "pass@k (unbiased)" in html
    assert "mean reward (failed as 0)" in html and "ModelCallError 1" in html
    suite = ET.parse(junit).getroot()
    assert suite.attrib["tests"] == "13" and suite.attrib["errors"] == "1"
    assert suite.attrib["failures"] == "3"
    names = [case.attrib["name"] for case in suite.iter("testcase")]
    assert names[0] == "task 0 rollout 0: question 0"
    ok = runner.invoke(gym_run, ["report", str(b), "--text", "--fail-under", "pass_rate=0.6"])
    assert ok.exit_code == 0, ok.output
    assert "pass rate: 69.2% (9 of 13 with reward >= 1)" in ok.output


def test_junit_survives_hostile_model_output(tmp_path):
    from gym_run.report.junit import JUnitWriter

    rec = record("aaaaaaaaaaaa", 0, 0, 0.0)
    rec["response"] = {
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": "]]></failure>\x00\x1b<script>&amp;\ud800",
            }
        ]
    }
    writer = JUnitWriter(str(tmp_path / "j.xml"), suite='a"b<c')
    writer.add(rec)
    writer.close()
    root = ET.parse(tmp_path / "j.xml").getroot()
    failure = next(root.iter("failure"))
    assert "<script>&amp;" in (failure.text or "")
    assert next(root.iter("testsuite")).attrib["name"] == 'a"b<c'


def test_final_sets_read_records_whose_gym_block_is_not_last(tmp_path):
    from gym_run.collect.resume import FinalSet

    first = record("aaaaaaaaaaaa", 0, 0, 1.0)
    moved = {"_gym": first.pop("_gym"), **first}  # another tool's key order
    later = record("aaaaaaaaaaaa", 1, 0, 0.0)
    later["_gym"]["note"] = 'a "_gym": {"id": "zzz:9:9", "status": "ok"} look-alike'
    path = write_jsonl(tmp_path / "r.jsonl", [moved, later])
    final = FinalSet(str(path))
    assert (final.tasks, final.num_repeats) == (2, 1)
    assert [r["_gym"]["id"] for r in final] == ["aaaaaaaaaaaa:0:0", "aaaaaaaaaaaa:1:0"]
