"""Runtime throughput, CPU per rollout, peak RSS and the latency-bound ratio against a stand-in process.

python benchmarks/bench_runtime.py [--rollouts 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import StandInProcess, compile_plan, emit, gym_run, write_rows

CALLS_PER_ROLLOUT = 2  # simple_weather: tool call, then the answer


def case(name: str, rollouts: int, latency_ms: float, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, StandInProcess(latency_ms) as standin:
        work = Path(tmp)
        plan = compile_plan(
            work, standin.url, write_rows(work / "rows.jsonl", rollouts), concurrency
        )
        stats = gym_run(plan)
        metrics = json.loads((work / "rollouts.metrics.json").read_text())
        counts = metrics["_gym"]["counts"]
        assert counts["ok"] == rollouts, counts
    run_s = metrics["_gym"]["wall_time_s"]
    out = dict(
        [
            emit(f"{name}.rollouts_per_s", rollouts / run_s),
            emit(
                f"{name}.cpu_ms_per_rollout", stats.cpu_s * 1000 / rollouts
            ),  # = CPU s per 1,000 rollouts
            emit(f"{name}.peak_rss_mb", stats.max_rss_mb),
            emit(f"{name}.process_wall_s", stats.wall_s),
        ]
    )
    if latency_ms:
        ideal = concurrency / (CALLS_PER_ROLLOUT * latency_ms / 1000)
        out.update(
            [
                emit(f"{name}.ideal_rollouts_per_s", ideal),
                emit(f"{name}.ratio_of_ideal", rollouts / run_s / ideal),
            ]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=2000)
    args = parser.parse_args()
    case("latency0_c64", args.rollouts, 0, 64)
    case("latency200_c256", args.rollouts, 200, 256)


if __name__ == "__main__":
    main()
