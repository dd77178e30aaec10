"""Shared by the reliability benchmarks: a stand-in process with faults, a compiled plan, output checks.

Everything goes through the real commands: `gym-run stand-in` as its own process on a loopback
port, `gym-compile` for the plan, `gym-run` as a child process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {
    **os.environ,
    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    "GYM_BENCH_KEY": "bench",
}
ROW = {
    "responses_create_params": {
        "input": [
            {"role": "developer", "content": "You are a helpful personal assistant."},
            {"role": "user", "content": "what's it like in sf?"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "",
                "strict": True,
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "description": ""}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            }
        ],
    }
}


def emit(name: str, value: object) -> None:
    """`name=value` lines, as the other benchmarks print them."""
    print(f"{name}={round(value, 3) if isinstance(value, float) else value}", flush=True)


class StandIn:
    """`gym-run stand-in --port 0 ...` in its own process; `url` is read from its first line."""

    def __init__(self, *flags: str) -> None:
        cmd = [PY, "-m", "gym_run.cli", "stand-in", "--port", "0", *flags]
        self.proc = subprocess.Popen(
            cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.search(r"(http://\S+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"stand-in did not start: {line!r}")
        self.url = match.group(1)

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def compile_plan(
    work: Path, base_url: str, rows: int, repeats: int, concurrency: int, retry: str
) -> Path:
    """simple_weather against `base_url` through gym-compile, with the given `retry:` flow mapping."""
    data = work / "rows.jsonl"
    data.write_text((json.dumps(ROW) + "\n") * rows)
    model = work / "model.yaml"
    model.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        f"      base_url: {base_url}\n      api_key: ${{oc.env:GYM_BENCH_KEY}}\n      model: bench\n"
        f"      max_concurrent_requests: {concurrency}\n      retry: {retry}\n"
    )
    plan = work / "plan.json"
    proc = subprocess.run(
        [
            PY,
            "-m",
            "gym_compile.cli",
            str(REPO / "examples/simple_weather/simple_weather.yaml"),
            str(model),
            f"+input_jsonl_fpath={data}",
            f"+output_jsonl_fpath={work / 'rollouts.jsonl'}",
            f"+num_repeats={repeats}",
            f"+num_samples_in_parallel={concurrency}",
            "-o",
            str(plan),
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gym-compile failed:\n{proc.stdout}{proc.stderr}")
    return plan


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
