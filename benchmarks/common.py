"""Shared pieces of the benchmarks: generated inputs, a stand-in process, a measured gym-run child."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

sys.path.insert(0, str(REPO))
from tests.runtime_helpers import weather_row  # noqa: E402

ROW = weather_row()  # one simple_weather row, as the tests build it


def write_rows(path: Path, n: int) -> Path:
    """n simple_weather rows, written in blocks so even 1,000,000 rows cost little memory here."""
    line = json.dumps(ROW) + "\n"
    with open(path, "w") as fh:
        for start in range(0, n, 10_000):
            fh.write(line * min(10_000, n - start))
    return path


class StandInProcess:
    """The stand-in served by its own process on a free loopback port, as a real endpoint would be."""

    def __init__(self, latency_ms: float = 0, extra: list[str] | None = None) -> None:
        self.start("--latency-ms", str(latency_ms), *(extra or []))

    def start(self, *flags: str, env: dict[str, str] | None = None) -> None:
        """`gym-run stand-in --port 0 FLAGS`; `url` is read from what it prints first."""
        cmd = [PY, "-m", "gym_run.cli", "stand-in", "--port", "0", *flags]
        self.proc = subprocess.Popen(
            cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"(http://\S+)", line)
            if m:
                self.url = m.group(1)
                return
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError("stand-in did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> StandInProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compile_weather(
    work: Path,
    base_url: str,
    rows: Path,
    model_lines: str = "",
    overrides: list[str] | None = None,
    *,
    python: str = PY,
    env: dict[str, str] | None = None,
) -> Path:
    """simple_weather whose model is an openai_model at base_url (key: $GYM_BENCH_KEY, `model_lines`
    added to its config), compiled by `python -m gym_compile.cli` into work/plan.json."""
    model = work / "model.yaml"
    model.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        f"      base_url: {base_url}\n      api_key: ${{oc.env:GYM_BENCH_KEY}}\n"
        f"      model: bench\n{model_lines}"
    )
    plan = work / "plan.json"
    proc = subprocess.run(
        [
            python,
            "-m",
            "gym_compile.cli",
            str(REPO / "examples/simple_weather/simple_weather.yaml"),
            str(model),
            f"+input_jsonl_fpath={rows}",
            f"+output_jsonl_fpath={work / 'rollouts.jsonl'}",
            *(overrides or []),
            "-o",
            str(plan),
        ],
        env={**(env or ENV), "GYM_BENCH_KEY": "bench"},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gym-compile failed:\n{proc.stdout}{proc.stderr}")
    return plan


def compile_plan(
    work: Path, base_url: str, rows: Path, concurrency: int, extra: list[str] | None = None
) -> Path:
    """A simple_weather plan whose model is an openai_model pointing at base_url."""
    return compile_weather(
        work,
        base_url,
        rows,
        f"      max_concurrent_requests: {concurrency}\n",
        [f"+num_samples_in_parallel={concurrency}", *(extra or [])],
    )


@dataclass
class ChildStats:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    returncode: int
    output: str


def measured(cmd: list[str], env: dict[str, str] | None = None) -> ChildStats:
    """Runs one child and reads its own CPU time and peak RSS from wait4 (not the whole process tree)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildStats(
        wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, output
    )


def gym_run(plan: Path) -> ChildStats:
    stats = measured(
        [PY, "-m", "gym_run.cli", str(plan), "--overwrite", "-q"], {**ENV, "GYM_BENCH_KEY": "bench"}
    )
    if stats.returncode != 0:
        raise RuntimeError(f"gym-run exited {stats.returncode}:\n{stats.output[-2000:]}")
    return stats


def emit(name: str, value: float | int | str) -> tuple[str, float | int | str]:
    """Benchmarks print `name=value` lines; run_all.py collects them."""
    if isinstance(value, float):
        value = round(value, 4)
    print(f"{name}={value}", flush=True)
    return name, value
