"""Issue 13.1: 1,000 rollouts with DEFAULT settings against an endpoint answering 30% / 50% of
requests 429, with and without Retry-After: how many complete, how long it takes, and whether an
exit 3 names the command that retries the failures.

    python benchmarks/bench_ratelimit.py [--rows 1000] [--code PATH] [--timeout 600]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bounds_common import REPO, Code, StandIn, audit, emit, write_rows

CASES = {
    "rl30_retry_after": ["--rate-limit", "0.3"],
    "rl30_no_retry_after": ["--rate-limit", "0.3", "--no-retry-after"],
    "rl50_retry_after": ["--rate-limit", "0.5"],
    "rl50_no_retry_after": ["--rate-limit", "0.5", "--no-retry-after"],
}


def case(code: Code, name: str, flags: list[str], rows: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, StandIn(*flags, "--seed", "1") as standin:
        work = Path(tmp)
        plan = code.compile(work, standin.url, write_rows(work / "rows.jsonl", rows))
        run = code.run(plan, "-q", timeout=timeout)
        found = audit(work / "rollouts.jsonl", rows)
    emit(f"{name}.ok", found["ok_ids"])
    emit(f"{name}.failed", rows - found["ok_ids"] - found["missing"])
    emit(f"{name}.missing", found["missing"])
    emit(f"{name}.exit_code", run.code)
    emit(f"{name}.wall_s", run.wall_s)
    emit(f"{name}.requests", standin.served.get("requests", -1))
    emit(f"{name}.rate_limited", standin.served.get("rate_limit", 0))
    if run.code == 3:
        emit(f"{name}.exit3_names_retry_command", int("--retry-failed" in run.output))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--timeout", type=float, default=600, help="per case, seconds")
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    args = parser.parse_args()
    code = Code(args.code)
    emit("code", code.commit())
    for name, flags in CASES.items():
        if not args.only or name in args.only:
            case(code, name, flags, args.rows, args.timeout)


if __name__ == "__main__":
    main()
