"""Shared by the reliability benchmarks: a stand-in process with faults, a compiled plan, output checks.

Everything goes through the real commands: `gym-run stand-in` as its own process on a loopback
port, `gym-compile` for the plan, `gym-run` as a child process.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import common
from common import PY, ROW, StandInProcess, compile_weather

ENV = {**common.ENV, "GYM_BENCH_KEY": "bench"}


def emit(name: str, value: object) -> None:
    """`name=value` lines, as the other benchmarks print them."""
    print(f"{name}={round(value, 3) if isinstance(value, float) else value}", flush=True)


class StandIn(StandInProcess):
    """`gym-run stand-in --port 0 ...` in its own process; `url` is read from its first line."""

    def __init__(self, *flags: str) -> None:
        self.start(*flags, env=ENV)


def compile_plan(
    work: Path, base_url: str, rows: int, repeats: int, concurrency: int, retry: str
) -> Path:
    """simple_weather against `base_url` through gym-compile, with the given `retry:` flow mapping."""
    data = work / "rows.jsonl"
    data.write_text((json.dumps(ROW) + "\n") * rows)
    return compile_weather(
        work,
        base_url,
        data,
        f"      max_concurrent_requests: {concurrency}\n      retry: {retry}\n",
        [f"+num_repeats={repeats}", f"+num_samples_in_parallel={concurrency}"],
        env=ENV,
    )


def gym_run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "gym_run.cli", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def audit(path: Path, expected: int) -> dict[str, int]:
    """What a reader of the raw rollouts file finds: whole lines, ids, duplicates, the final set."""
    data = path.read_bytes() if path.exists() else b""
    torn = 0 if data == b"" or data.endswith(b"\n") else 1
    lines = data.splitlines()
    bad = ok_ids = 0
    ok_counter: Counter[str] = Counter()
    failed_ids: set[str] = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        rid, status = record["_gym"]["id"], record["_gym"]["status"]
        if status == "ok":
            ok_counter[rid] += 1
        else:
            failed_ids.add(rid)
    ok_ids = len(ok_counter)
    return {
        "lines": len(lines),
        "torn_last_line": torn,
        "unparsable_lines": bad,
        "ok_ids": ok_ids,
        "duplicate_ok_records": sum(n - 1 for n in ok_counter.values()),
        "failed_superseded": len(failed_ids & set(ok_counter)),
        "missing": expected - ok_ids - len(failed_ids - set(ok_counter)),
    }


def wait(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return -9, out
    return proc.returncode, out


def now() -> float:
    return time.monotonic()
