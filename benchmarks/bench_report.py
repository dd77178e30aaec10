"""The HTML report at 20 and at 100,000 rollouts: time to write it, its size, the chart elements,
peak memory, and how long headless Chromium takes to load and paint it (with a screenshot each).

python benchmarks/bench_report.py [--sizes 20 2000 100000] [--shots DIR] [--no-browser]

Rollouts come from benchmarks/synthetic_rollouts.py (simple_weather, answer_match and judged tasks,
4 repeats, ~4% failed in six error classes, priced). `gym-run report` runs as a child process,
measured from outside (wall, CPU, peak RSS); the page must stay bounded however many rollouts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import ENV, PY, emit, measured
from synthetic_rollouts import write_rollouts

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def browser_seconds(html: Path, png: Path, profile: Path) -> float:
    """Load, lay out and paint the page to a PNG; the figure includes Chromium's own start-up."""
    started = time.perf_counter()
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1300,2300",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100_000])
    parser.add_argument(
        "--shots", type=Path, help="keep the screenshots here (default: a temp dir)"
    )
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shots = args.shots or work
        shots.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            rollouts = write_rollouts(work / f"r{n}.jsonl", n)
            html = work / f"report-{n}.html"
            stats = measured(
                [PY, "-m", "gym_run.cli", "report", str(rollouts), "-o", str(html)], ENV
            )
            if stats.returncode != 0:
                raise RuntimeError(stats.output[-2000:])
            page = html.read_text(encoding="utf-8")
            charts = page[page.index('id="charts"') : page.index("<h2>Usage by model</h2>")]
            emit(f"report.rollouts_{n}.write_s", stats.wall_s)
            emit(f"report.rollouts_{n}.cpu_s", stats.cpu_s)
            emit(f"report.rollouts_{n}.peak_rss_mb", stats.max_rss_mb)
            emit(f"report.rollouts_{n}.html_mb", os.path.getsize(html) / 1e6)
            emit(f"report.rollouts_{n}.chart_bars", len(re.findall(r'class="bar"', charts)))
            emit(f"report.rollouts_{n}.table_rows", page.count('<tbody class="rollout'))
            if not args.no_browser and os.path.exists(CHROMIUM):
                png = shots / f"report-{n}.png"
                seconds = browser_seconds(html, png, work / "profile")
                emit(f"report.rollouts_{n}.chromium_load_s", seconds)
                print(f"screenshot: {png} ({os.path.getsize(png):,} bytes)", flush=True)


if __name__ == "__main__":
    main()
