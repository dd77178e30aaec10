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
        self.scripts: list[dict[str, str | None]] = []
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.tbodies: list[dict[str, str | None]] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in ("script", "style"):
            self._in.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "tbody":
            self.tbodies.append(dict(attrs))
        for name, value in attrs:
            if name == "class":
                for cls in (value or "").split():
                    self.classes[cls] = self.classes.get(cls, 0) + 1
            if name == "id":
                self.ids.add(value)
                self.by_id[value] = dict(attrs)
            fetches = name in ("href", "src", "xlink:href", "action", "srcset", "poster", "data")
            if name != "xmlns" and (fetches or "url(" in (value or "") or "//" in (value or "")):
                self.urls.append(f"{tag}.{name}={value}")

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        if not self._in:
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
    # reward, latency, tokens over the run, tokens per rollout (no price: no cost chart), tasks
    assert doc.tags["svg"] == 5
    assert "Tokens per rollout (no cost: no price)" in html and "Tasks by rollouts passed" in html
    assert doc.classes["bar"] >= 10 + 1 + 1
    assert doc.classes["rollout"] == 10 and doc.tags["details"] == 10 + 1  # + metrics, collapsed
    assert doc.tags.get("link", 0) == 0 and doc.tags.get("img", 0) == 0
    assert doc.tags.get("script", 0) == 1 and doc.scripts == [{}]  # one inline script, no src
    external = [u for u in doc.urls if not u.split("=", 1)[1].startswith("#")]  # in-page links
    assert external == [] and "url(" not in html and "@import" not in html
    bare = html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, never fetched
    assert "https://" not in bare and "http://" not in bare
    text = " ".join(doc.text)
    assert "n/a (stand-in-1 has no price)" in text and "--prices" in text  # the card says how
    assert "The weather in sf is cold." in text and "tool call: get_weather" in text
    assert {"summary", "charts", "models", "metrics", "rollouts", "card-reward"} <= doc.ids
    assert {"show-all", "show-failed", "show-notpassed", "show-passed", "q", "sort"} <= doc.ids
    assert "_gym.counts.rollouts" in text and "_gym.aggregate" not in text  # shown above, once
    metric_values = _metrics_values(html)
    assert metric_values and not {"None", "False", "True"} & set(metric_values)
    assert "pass@2" in text  # num_repeats 2: the card and the pass@k table


def _metrics_values(html: str) -> list[str]:
    section = html[html.index('<details id="metrics">') :]
    section = section[: section.index("</details>")]
    return [m.split("</span>")[0] for m in section.split("<span>")[1:]]


def test_metrics_section_uses_json_spellings(weather_rollouts, tmp_path):
    out = tmp_path / "report.html"
    metrics = {
        "reward": 1.0,
        "_gym": {"budget": {"max_usd": None, "stopped": False}, "warnings": [], "ok": True},
        "aggregate": {"huge": list(range(5000))},
    }
    metrics["_gym"]["aggregate"] = metrics["aggregate"]
    render_html(str(weather_rollouts), str(out), metrics)
    flat = _metrics_values(out.read_text(encoding="utf-8"))
    values = dict(zip(flat[::2], flat[1::2], strict=True))
    assert values == {
        "reward": "1",
        "_gym.budget.max_usd": "null",
        "_gym.budget.stopped": "false",
        "_gym.warnings": "[]",
        "_gym.ok": "true",
    }


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
    assert doc.tags.get("script", 0) == 1 and "<b>paris</b>" not in html
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
    # each rollout shows what the judge compared: expected answer, the answer it was shown, verdict
    first = records[0]
    assert first["extracted_answer"] == "You said: Repeat after me: Paris"
    html = (tmp_path / "judged.html").read_text(encoding="utf-8")
    row = html[html.index('id="rollout-0"') : html.index('id="rollout-1"')]
    cells = [c.split("</td>")[0] for c in row.split('<td class="answer">')[1:3]]
    assert cells == ["Paris", "You said: Repeat after me: Paris"]
    verifier = row[row.index('<div class="check good">') :]
    assert '<span>expected answer</span><span class="v">Paris</span>' in verifier
    assert (
        "<span>extracted answer</span>" in verifier and "equal (labels read: [[A=B]])" in verifier
    )
    assert 'judge_unparseable</span><span class="v">false' in verifier  # JSON, not Python


def _variants(records, n, *, fail_every=0, prefix=None):
    """n records made from `records`: tasks 0..n-1, latencies and tokens all distinct, every
    `fail_every`-th one failed (in one of seven error classes), reward alternating 1/0."""
    head = prefix or records[0]["_gym"]["id"].split(":")[0]
    for i in range(n):
        record = dict(records[i % len(records)], _ng_task_index=i, _ng_rollout_index=0)
        gym = {**record["_gym"], "id": f"{head}:{i}:0", "latency_s": 0.01 + (i % 997) / 1000}
        gym["usage"] = {**gym["usage"], "input_tokens": 50 + i % 500, "total_tokens": 60 + i % 500}
        if fail_every and i % fail_every == fail_every - 1:
            gym = {"id": gym["id"], "status": "failed"}
            gym["error"] = {"class": f"Error{i % 7}", "message": f"broke in way {i % 7}"}
            record = {k: v for k, v in record.items() if k not in ("response", "reward")}
        else:
            record["reward"] = float(i % 2 == 0)
        yield {**record, "_gym": gym}


def test_table_is_capped_keeps_later_failures_and_aggregates_cover_everything(
    weather_rollouts, tmp_path
):
    records = read_jsonl(weather_rollouts)
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as fh:
        for record in _variants(records, 2500, fail_every=100):
            fh.write(json.dumps(record) + "\n")
        fh.write('{"truncated": \n')  # a crash can leave half a line behind
    out = tmp_path / "big.html"
    data = render_html(str(big), str(out), max_rows=2000)
    doc = outline(out.read_text(encoding="utf-8"))
    assert data.rollouts == 2500 and data.failed == 25 and data.bad_lines == 1
    # the first 1500, then 500 of the rest: its 10 failed and 490 reward-0 ones (odd positions)
    assert len(data.rows) == 2000 and data.shown.not_passed_after_head == 500
    positions = [row.position for row in data.table]
    assert positions[:1500] == list(range(1500))
    assert positions[1500:] == list(range(1501, 2500, 2))
    assert doc.classes["rollout"] == 2000
    text = " ".join(doc.text)
    assert "The table holds 2,000 of 2,500 rollouts: the first 1,500 in input order" in text
    assert "then 500 of the rest: failed ones first, then ok ones that did not pass" in text
    assert "(500 of the rest did not pass)" in text
    assert doc.classes["failed"] >= 2 * 25  # every failed rollout is in the table (row + badge)
    assert any("not JSON objects" in w for w in data.warnings)
    assert data.aggregate["rollouts"] == {"final": 2500, "ok": 2475, "failed": 25}


def test_charts_stay_bounded_at_20000_rollouts(weather_rollouts, tmp_path):
    """Every chart aggregates: the number of bars does not grow with the rollouts, nor the page."""
    records = read_jsonl(weather_rollouts)
    sizes, bars = {}, {}
    for n in (200, 20_000):
        path = tmp_path / f"r{n}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for record in _variants(records, n, fail_every=50):
                fh.write(json.dumps(record) + "\n")
        out = tmp_path / f"r{n}.html"
        data = render_html(str(path), str(out), max_rows=200)
        html = out.read_text(encoding="utf-8")
        charts_html = html[html.index('id="charts"') : html.index("<h2>Usage by model</h2>")]
        bars[n] = charts_html.count('class="bar"')
        sizes[n] = len(html.encode())
        assert data.rollouts == n and len(data.rows) == 200
    assert bars[20_000] <= 4 * 61 + 3 * 60  # histograms (12 bins + tail) and <= 60 series bins
    assert sizes[20_000] < 1.5 * sizes[200], sizes


def test_error_groups_say_how_many_are_not_listed(weather_rollouts, tmp_path):
    records = read_jsonl(weather_rollouts)
    path = tmp_path / "errors.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for record in _variants(records, 70, fail_every=2):
            fh.write(json.dumps(record) + "\n")
    text = render_text(str(path)).splitlines()
    listed = [line for line in text if line.startswith("error x")]
    assert len(listed) == 5  # seven classes of error, five lines
    assert "... 2 more error groups (10 rollouts); the HTML report lists up to 20" in text
    out = tmp_path / "errors.html"
    render_html(str(path), str(out))
    assert 'id="errors-more"' not in out.read_text(encoding="utf-8")  # all seven listed


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


class Browser:
    """Headless Chromium on a file:// page: its DOM after the page's script ran, or a screenshot."""

    def __init__(self, tmp_path: Path) -> None:
        self.base = [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            f"--user-data-dir={tmp_path / 'profile'}",
        ]

    def run(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args, url], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Uncaught" not in done.stderr, done.stderr[-2000:]  # the script threw
        return done

    def dom(self, url: str, *args: str) -> Outline:
        return outline(self.run(url, "--dump-dom", *args).stdout)

    def shot(self, url: str, png: Path, *args: str, height: int = 4200) -> Path:
        self.run(url, f"--window-size=1300,{height}", f"--screenshot={png}", *args)
        shots = os.environ.get("GYM_REPORT_SHOTS")  # a folder to keep them in, to look at
        if shots:
            shutil.copy(png, Path(shots) / png.name)
        return png


def _count(doc: Outline, html: str) -> str:
    """The text of the page's "N of M rows" counter, which the script fills in."""
    start = html.index('id="count"')
    return html[html.index(">", start) + 1 : html.index("</span>", start)]


def test_report_renders_and_filters_in_headless_chromium(weather_rollouts, tmp_path):
    """20 rollouts (4 failed, half the rest reward 0): the script's search, filter and sort read
    from the URL fragment, so each state is one page load; and the page without JavaScript."""
    browser = Browser(tmp_path)
    path = tmp_path / "twenty.jsonl"
    records = list(_variants(read_jsonl(weather_rollouts), 20, fail_every=5))
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "report.html"
    render_html(str(path), str(out))
    url = out.as_uri()

    plain = browser.run(url, "--dump-dom").stdout
    doc = outline(plain)
    assert doc.tags.get("svg") == 4 and doc.classes.get("bar", 0) >= 12
    assert doc.classes.get("rollout") == 20 and doc.tags.get("details") == 20
    assert "hidden" not in doc.by_id["js-controls"]  # the script ran and showed its controls
    assert _count(doc, plain) == "20 of 20 rows"

    failed = browser.run(url + "#show=failed", "--dump-dom").stdout
    assert _count(outline(failed), failed) == "4 of 20 rows"
    searched = browser.run(url + "#q=broke%20in%20way", "--dump-dom").stdout
    doc = outline(searched)
    assert _count(doc, searched) == "4 of 20 rows" and doc.classes.get("nomatch") == 16
    ordered = browser.dom(url + "#sort=-latency")
    latencies = [float(t["data-latency"] or 0) for t in ordered.tbodies if t.get("data-latency")]
    assert len(latencies) == 20 and latencies == sorted(latencies, reverse=True)

    # without the script: the filter is radio buttons and CSS; a probe counts the visible rows
    html = out.read_text(encoding="utf-8")
    script = html[html.index("<script>") : html.index("</script>") + len("</script>")]
    probe = (
        "<script>document.body.setAttribute('data-visible', Array.prototype.filter.call("
        "document.querySelectorAll('tbody.rollout'), function (b) "
        "{ return b.offsetParent !== null; }).length);</script>"
    )
    css_only = tmp_path / "css-only.html"
    css_only.write_text(
        html.replace(script, probe)
        .replace('id="show-all" value="all" checked', 'id="show-all" value="all"')
        .replace('id="show-failed" value="failed"', 'id="show-failed" value="failed" checked'),
        encoding="utf-8",
    )
    probed = browser.run(css_only.as_uri(), "--dump-dom").stdout
    assert 'data-visible="4"' in probed and 'id="js-controls" hidden' in probed
    without = tmp_path / "no-js.html"  # headless Chromium cannot dump or shoot with JS off
    without.write_text(html.replace(script, ""), encoding="utf-8")
    no_js = browser.shot(without.as_uri(), tmp_path / "report-20-no-js.png")
    assert no_js.stat().st_size > 20_000
    top = browser.shot(url, tmp_path / "report-20.png")
    only_failed = browser.shot(url + "#show=failed", tmp_path / "report-20-failed.png")
    assert top.stat().st_size > 20_000 and only_failed.stat().st_size > 20_000  # blank: a few KB


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
