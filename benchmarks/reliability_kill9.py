"""kill -9 `gym-run` 10 times at random moments, resuming each time, then let it finish: the rollouts
file must hold the complete set, no rollout twice, and no torn line.

    python benchmarks/reliability_kill9.py [--kills 10] [--rows 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from reliability_common import StandIn, audit, compile_plan, emit, gym_run, now, wait


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    expected = args.rows * args.repeats
    # A little latency so a run lasts long enough to be killed, and some faults so retries are in flight too.
    flags = [
        "--latency-ms",
        "20",
        "--rate-limit",
        "0.1",
        "--server-error",
        "0.02",
        "--retry-after-ms",
        "5",
    ]
    torn_after_kill = killed_mid_run = 0
    started = now()
    with tempfile.TemporaryDirectory() as tmp, StandIn(*flags) as standin:
        work = Path(tmp)
        out = work / "rollouts.jsonl"
        plan = compile_plan(
            work,
            standin.url,
            args.rows,
            args.repeats,
            32,
            "{max_attempts: 20, initial_delay_s: 0.05}",
        )
        for _ in range(args.kills):
            proc = gym_run(str(plan), "--resume", "--retry-failed", "-q")
            time.sleep(rng.uniform(0.4, 1.2))  # interpreter start-up is part of the window
            killed_mid_run += proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            wait(proc, timeout=30)
            data = out.read_bytes() if out.exists() else b""
            torn_after_kill += bool(data) and not data.endswith(b"\n")
        before_final = audit(out, expected)
        code, output = wait(gym_run(str(plan), "--resume", "--retry-failed", "-q"), timeout=150)
        found = audit(out, expected)
        export_code, export_out = wait(
            gym_run("export", str(plan), "-o", str(work / "final.jsonl")), timeout=60
        )
        final = audit(work / "final.jsonl", expected) if export_code == 0 else {}
        counts = json.loads((work / "rollouts.metrics.json").read_text())["_gym"]["counts"]
    emit("rollouts", expected)
    emit("kills", args.kills)
    emit("killed_mid_run", killed_mid_run)
    emit("torn_last_line_after_kill", torn_after_kill)
    emit("done_before_final_resume", before_final["ok_ids"])
    emit("final_exit_code", code)
    emit("ok", counts["ok"])
    emit("failed", counts["failed"])
    emit("missing", found["missing"])
    emit("duplicates", found["duplicate_ok_records"])
    emit("torn_lines", found["torn_last_line"] + found["unparsable_lines"])
    emit("failed_superseded_in_raw_file", found["failed_superseded"])
    emit("export_records", final.get("lines", -1))
    emit("export_duplicates", final.get("duplicate_ok_records", -1))
    emit("wall_s", now() - started)
    good = (
        code == 0
        and found["ok_ids"] == expected
        and found["duplicate_ok_records"] == 0
        and found["torn_last_line"] + found["unparsable_lines"] == 0
        and final.get("lines") == expected
    )
    if not good:
        print(output[-2000:], export_out[-500:], file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
