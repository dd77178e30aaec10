"""gym_run.report.render: HTML and text reports from rollouts made by running the stand-in pipeline,
checked with html.parser and rendered in headless Chromium; the report CLI command."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from gym_run.cli.report import report_command
from gym_run.collect.runner import run_job
from gym_run.report.render import render_html, render_text

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.conftest import EXAMPLES
from tests.runtime_helpers import read_jsonl, stand_in_spec, weather_plan, weather_row

CHROMIUM = "/usr/bin/chromium"


class Outline(HTMLParser):
    """Counts tags and classes, collects URLs, and keeps the text of <script>/<style> apart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.classes: dict[str, int] = {}
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name == "class":
                for cls in (value or "").split():
                    self.classes[cls] = self.classes.get(cls, 0) + 1
            if name == "id":
                self.ids.add(value)
            fetches = name in ("href", "src", "xlink:href", "action", "srcset", "poster", "data")
            if name != "xmlns" and (fetches or "url(" in (value or "") or "//" in (value or "")):
                self.urls.append(f"{tag}.{name}={value}")

    def handle_data(self, data):
        self.text.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def weather_rollouts(tmp_path_factory) -> Path:
    """examples/simple_weather on the stand-in, compiled and run like `make demo`."""
    tmp = tmp_path_factory.mktemp("weather")
    example = EXAMPLES / "simple_weather"
    result = compile_config(
        [example / "simple_weather.yaml", example / "stand_in_model.yaml"],
        [f"+output_jsonl_fpath={tmp / 'rollouts.jsonl'}", "+num_repeats=2"],
        Options(env=tmp / "no-env.yaml"),
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    asyncio.run(run_job(result.plan, show_progress=False))
    return tmp / "rollouts.jsonl"


def test_html_report_structure(weather_rollouts, tmp_path):
    metrics = json.loads(weather_rollouts.with_suffix(".metrics.json").read_text())
    out = tmp_path / "report.html"
    data = render_html(str(weather_rollouts), str(out), metrics)
    html = out.read_text(encoding="utf-8")
    doc = outline(html)
    assert (data.rollouts, data.ok, data.failed) == (10, 10, 0)
    assert (
        doc.tags["svg"] == 3
    )  # reward, latency, tokens; cost has no chart: stand-in-1 has no price
    assert doc.classes["bar"] >= 10 + 1 + 1
    assert (
        doc.classes["rollout"] == 10 and doc.tags["details"] == 10 + 1
    )  # + metrics.json, collapsed
    assert (
        doc.tags.get("script", 0) == 0
        and doc.tags.get("link", 0) == 0
        and doc.tags.get("img", 0) == 0
    )
    assert (
        doc.urls == [] and "url(" not in html and "@import" not in html and "https://" not in html
    )
    text = " ".join(doc.text)
    assert "n/a (stand-in-1 has no price)" in text
    assert "The weather in sf is cold." in text and "tool call: get_weather" in text
    assert {"summary", "charts", "models", "metrics", "rollouts"} <= doc.ids
    assert "_gym.counts.rollouts" in text


def test_text_report(weather_rollouts):
    metrics = json.loads(weather_rollouts.with_suffix(".metrics.json").read_text())
    text = render_text(str(weather_rollouts), metrics)
    lines = text.splitlines()
    assert lines[0] == f"rollouts: 10 (10 ok, 0 failed) in {weather_rollouts}"
    assert lines[1] == "reward: mean 1.000 (min 1, max 1); 1 x10"
    assert "cost: n/a (stand-in-1 has no price)" in lines
    assert any(line.startswith("latency: p50 ") for line in lines)
    assert any(line.startswith("wall time: ") for line in lines)


async def test_failures_judge_pricing_and_escaping(tmp_path):
    """A priced model name, a failing row and hostile text, through the real runtime."""
    hostile = "what's it like in <script>alert(1)</script> & <b>paris</b>?"
    rows = [weather_row(), {"no_params": True}, weather_row(hostile)]
    plan = weather_plan(tmp_path, rows, model=stand_in_spec(model="gpt-4.1-2025-04-14"))
    job = await run_job(plan, show_progress=False)
    out = tmp_path / "report.html"
    data = render_html(job.rollouts_path, str(out))
    html = out.read_text(encoding="utf-8")
    doc = outline(html)
    assert (data.ok, data.failed) == (2, 1)
    assert doc.tags.get("script", 0) == 0 and "<b>paris</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert doc.classes["failed"] >= 2  # the failed rollout's row and its badge
    assert "ValueError" in " ".join(doc.text) and doc.ids >= {"errors"}
    # the stand-in reported gpt-4.1-2025-04-14, which has a price: 2 USD in / 8 USD out per 1M
    usage = data.usage
    expected = (usage["input_tokens"] * 2.0 + usage["output_tokens"] * 8.0) / 1e6
    assert data.cost_usd == pytest.approx(expected) and data.cost_usd > 0
    assert doc.tags["svg"] == 4  # now with a cost chart
    assert f"${expected:,.4f}" in html
    text = render_text(job.rollouts_path)
    assert f"cost: ${expected:,.4f}" in text and "error x1: ValueError" in text


async def test_judge_verdicts_and_separate_usage_in_report(tmp_path):
    configs = sorted((EXAMPLES / "judge_example").glob("*.yaml"))
    result = compile_config(
        configs,
        [f"+output_jsonl_fpath={tmp_path / 'judged.jsonl'}"],
        Options(env=tmp_path / "none"),
    )
    job = await run_job(result.plan, show_progress=False)
    data = render_html(job.rollouts_path, str(tmp_path / "judged.html"))
    assert dict(data.verdicts) == {"equal": 3, "not_equal": 3}
    records = read_jsonl(job.rollouts_path)
    judge_tokens = sum(r["_gym"]["usage_by_server"]["judge_model"]["total_tokens"] for r in records)
    policy_tokens = sum(
        r["_gym"]["usage_by_server"]["policy_model"]["total_tokens"] for r in records
    )
    assert data.usage["total_tokens"] == judge_tokens + policy_tokens
    assert "judge: equal 3, not_equal 3" in render_text(job.rollouts_path)


def test_table_is_capped_but_aggregates_cover_everything(weather_rollouts, tmp_path):
    records = read_jsonl(weather_rollouts)
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as fh:
        for i in range(2500):
            record = dict(records[i % len(records)], _ng_task_index=i, _ng_rollout_index=0)
            record["_gym"] = {**record["_gym"], "id": f"{record['_gym']['id'].split(':')[0]}:{i}:0"}
            fh.write(json.dumps(record) + "\n")
        fh.write('{"truncated": \n')  # a crash can leave half a line behind
    out = tmp_path / "big.html"
    data = render_html(str(big), str(out), max_rows=2000)
    doc = outline(out.read_text(encoding="utf-8"))
    assert data.rollouts == 2500 and len(data.rows) == 2000 and data.bad_lines == 1
    assert doc.classes["rollout"] == 2000
    assert "first 2000 of 2500" in " ".join(doc.text)
    assert any("not JSON objects" in w for w in data.warnings)


def test_report_command(weather_rollouts, tmp_path):
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(report_command, [str(weather_rollouts), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "rollouts: 10 (10 ok, 0 failed)" in result.output and f"report: {out}" in result.output
    assert "wall time:" in result.output  # metrics found beside the rollouts
    assert out.is_file() and "<svg" in out.read_text(encoding="utf-8")
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  stand-in-1: {input: 1000000, output: 0}\n", encoding="utf-8")
    priced = CliRunner().invoke(
        report_command, [str(weather_rollouts), "--text", "--prices", str(prices)]
    )
    assert priced.exit_code == 0 and "cost: $" in priced.output and "n/a" not in priced.output
    prices.write_text("models:\n  stand-in-1: {input: -1}\n", encoding="utf-8")
    bad = CliRunner().invoke(
        report_command, [str(weather_rollouts), "--text", "--prices", str(prices)]
    )
    assert bad.exit_code == 1 and "'output' is a required property" in bad.output


def _chromium() -> str:
    """The browser, installed with apt when missing and we are root; skips when impossible."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "headless Chromium check: /usr/bin/chromium is absent and we cannot apt-get install it"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"headless Chromium check: {' '.join(cmd)} did not finish in 900 s")
        if done.returncode != 0:
            pytest.skip(
                f"headless Chromium check: {' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
            )
    if not os.path.exists(CHROMIUM):
        pytest.skip("headless Chromium check: apt-get installed no /usr/bin/chromium")
    return CHROMIUM


def test_report_renders_in_headless_chromium(weather_rollouts, tmp_path):
    browser = _chromium()
    out = tmp_path / "report.html"
    render_html(str(weather_rollouts), str(out))
    base = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = outline(dom.stdout)
    assert parsed.tags.get("svg") == 3 and parsed.classes.get("bar", 0) >= 12
    assert parsed.classes.get("rollout") == 10 and parsed.tags.get("details") == 10
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, "--window-size=1300,1800", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000  # a blank page is a few KB


def test_report_takes_the_final_record_of_each_id_like_resume(weather_rollouts, tmp_path):
    """An id's first ok record, else its last failed one (runtime/gym_run/collect/resume.py), in input order."""
    records = read_jsonl(weather_rollouts)
    ok0, ok1 = sorted(records, key=lambda r: (r["_ng_task_index"], r["_ng_rollout_index"]))[:2]
    failed = {
        **{k: v for k, v in ok1.items() if k not in ("response", "reward")},
        "_gym": {
            "id": ok1["_gym"]["id"],
            "status": "failed",
            "error": {
                "class": "ModelCallError",
                "status": 500,
                "message": "boom",
                "attempts": 5,
                "request_id": None,
            },
        },
    }
    later_ok = {**ok1, "reward": 0.0}  # a second ok record of an id is never final
    path = tmp_path / "retried.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in (failed, ok1, ok0, later_ok)), encoding="utf-8"
    )
    data = render_html(str(path), str(tmp_path / "retried.html"))
    assert (data.rollouts, data.ok, data.failed) == (2, 2, 0) and data.reward_mean == 1.0
    assert [r["_gym"]["id"] for r in data.rows] == [
        ok0["_gym"]["id"],
        ok1["_gym"]["id"],
    ]  # input order
    only_failed = tmp_path / "failed.jsonl"
    only_failed.write_text(json.dumps(ok0) + "\n" + json.dumps(failed) + "\n", encoding="utf-8")
    assert (
        render_text(str(only_failed)).splitlines()[0]
        == f"rollouts: 2 (1 ok, 1 failed) in {only_failed}"
    )


def test_gym_run_report_and_text(weather_rollouts, tmp_path):
    from gym_run.cli import cli as gym_run

    out = tmp_path / "wired.html"
    html = CliRunner().invoke(
        gym_run, ["report", str(weather_rollouts), "-o", str(out)], prog_name="gym-run"
    )
    assert html.exit_code == 0, html.output
    assert out.is_file() and html.output.splitlines()[-1] == f"report: {out}"
    text = CliRunner().invoke(
        gym_run, ["report", str(weather_rollouts), "--text"], prog_name="gym-run"
    )
    assert text.exit_code == 0 and "cost: n/a (stand-in-1 has no price)" in text.output
    assert "report:" not in text.output
