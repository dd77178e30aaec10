"""Issue 13.2: 2,000 simple_weather rollouts against a 200 ms endpoint, DEFAULT settings against
the same run tuned by hand (concurrency 256), and NeMo Gym's own default collector on the same
endpoint when a NeMo Gym venv is available (benchmarks/nemo_gym_driver.py).

    python benchmarks/bench_defaults_speed.py [--rollouts 2000] [--code PATH] [--no-nemo]

Figures: rollouts/s over the collection (metrics wall_time_s) and over the whole gym-run process
(start-up included), and defaults / tuned.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bounds_common import REPO, Code, StandIn, emit, write_rows

LATENCY_MS = "200"
TUNED = 256


def gym_run_case(code: Code, name: str, rollouts: int, tuned: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp, StandIn("--latency-ms", LATENCY_MS) as standin:
        work = Path(tmp)
        rows = write_rows(work / "rows.jsonl", rollouts)
        model_lines = f"      max_concurrent_requests: {TUNED}\n" if tuned else ""
        overrides = [f"+num_samples_in_parallel={TUNED}"] if tuned else []
        plan = code.compile(work, standin.url, rows, model_lines, *overrides)
        run = code.run(plan, "-q", timeout=900)
        metrics = run.metrics(work)
    gym = metrics["_gym"]
    if run.code != 0 or gym["counts"]["ok"] != rollouts:
        raise RuntimeError(f"{name}: exit {run.code}, {gym['counts']}\n{run.output[-2000:]}")
    rate = rollouts / gym["wall_time_s"]
    emit(f"{name}.rollouts_per_s", rate)
    emit(f"{name}.process_rollouts_per_s", rollouts / run.wall_s)
    emit(f"{name}.peak_rss_mb", run.max_rss_mb)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--no-nemo", action="store_true", help="skip NeMo Gym's collector")
    args = parser.parse_args()
    code = Code(args.code)
    emit("code", code.commit())
    default = gym_run_case(code, "gym_run_default", args.rollouts, tuned=False)
    tuned = gym_run_case(code, f"gym_run_tuned_c{TUNED}", args.rollouts, tuned=True)
    emit("default_over_tuned", default / tuned)
    if not args.no_nemo:
        from nemo_gym_driver import NemoGymUnavailable, nemo_gym_default_rate

        try:
            with StandIn("--latency-ms", LATENCY_MS) as standin:
                nemo = nemo_gym_default_rate(args.rollouts, standin.url)
        except NemoGymUnavailable as exc:
            emit("nemo_gym_default.rollouts_per_s", f"n/a ({exc})")
        else:
            emit("nemo_gym_default.rollouts_per_s", nemo)
            emit("default_over_nemo_gym_default", default / nemo)


if __name__ == "__main__":
    main()
