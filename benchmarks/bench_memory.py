"""Peak RSS of gym-run at 1,000 and 100,000 input rows: memory must stay flat as the input grows.

python benchmarks/bench_memory.py [--small 1000] [--large 100000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import StandInProcess, compile_plan, emit, gym_run, write_rows


def peak_rss(standin_url: str, rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = compile_plan(work, standin_url, write_rows(work / "rows.jsonl", rows), 64)
        return gym_run(plan).max_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    with StandInProcess(0) as standin:
        small = peak_rss(standin.url, args.small)
        large = peak_rss(standin.url, args.large)
    emit(f"memory.rows_{args.small}.peak_rss_mb", small)
    emit(f"memory.rows_{args.large}.peak_rss_mb", large)
    emit("memory.growth_ratio", large / small)


if __name__ == "__main__":
    main()
