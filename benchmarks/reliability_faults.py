"""2,000 rollouts against a stand-in that answers 30% 429, 5% 5xx and drops 2% of connections,
with the default retry settings: all must complete, none twice. (429s are retried by time, not
attempts; 5xx and drops by max_attempts 5: 0.07**5 * 4,000 calls, about a 0.7% chance that any
call runs out.)

    python benchmarks/reliability_faults.py [--rows 1000] [--repeats 2] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from reliability_common import StandIn, audit, compile_plan, emit, gym_run, now, wait


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    expected = args.rows * args.repeats
    faults = [
        "--rate-limit",
        "0.3",
        "--server-error",
        "0.05",
        "--drop",
        "0.02",
        "--retry-after-ms",
        "20",
        "--seed",
        "1",
    ]
    with tempfile.TemporaryDirectory() as tmp, StandIn(*faults) as standin:
        work = Path(tmp)
        plan = compile_plan(
            work,
            standin.url,
            args.rows,
            args.repeats,
            args.concurrency,
            "{}",  # the defaults
        )
        started = now()
        code, output = wait(gym_run(str(plan), "-q"), timeout=170)
        wall = now() - started
        found = audit(work / "rollouts.jsonl", expected)
        metrics = json.loads((work / "rollouts.metrics.json").read_text()) if code >= 0 else {}
    calls = metrics.get("_gym", {}).get("calls", {})
    counts = metrics.get("_gym", {}).get("counts", {})
    emit("rollouts", expected)
    emit("ok", counts.get("ok", found["ok_ids"]))
    emit("failed", counts.get("failed", -1))
    emit("duplicates", found["duplicate_ok_records"])
    emit("torn_lines", found["torn_last_line"] + found["unparsable_lines"])
    emit("model_calls", calls.get("calls", -1))
    emit("requests", calls.get("requests", -1))
    emit("retries", calls.get("retries", -1))
    emit("rate_limited_429", calls.get("rate_limited", -1))
    emit("max_attempts_seen", calls.get("max_attempts", -1))
    emit("wall_s", wall)
    emit("exit_code", code)
    good = code == 0 and found["ok_ids"] == expected and found["duplicate_ok_records"] == 0
    if not good:
        print(output[-2000:], file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
