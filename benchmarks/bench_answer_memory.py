"""Issue 13.8 (memory): gym-run's peak RSS when the endpoint answers 30 MB (16 rollouts in flight
at once), and what gym-compile says to num_samples_in_parallel=1e9.

    python benchmarks/bench_answer_memory.py [--code PATH] [--rows 16] [--pad-mb 30]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from bounds_common import REPO, Code, StandIn, audit, emit, write_rows


def big_answers(code: Code, rows: int, pad_mb: int) -> None:
    flags = ["--pad-bytes", str(pad_mb * 1_000_000)]
    with tempfile.TemporaryDirectory() as tmp, StandIn(*flags) as standin:
        work = Path(tmp)
        plan = code.compile(
            work,
            standin.url,
            write_rows(work / "rows.jsonl", rows),
            "",
            "+num_samples_in_parallel=16",
        )
        run = code.run(plan, "-q", timeout=600)
        found = audit(work / "rollouts.jsonl", rows)
    emit("big_answers.exit_code", run.code)
    emit("big_answers.ok", found["ok_ids"])
    emit("big_answers.wall_s", run.wall_s)
    emit("big_answers.peak_rss_mb", run.max_rss_mb)


def huge_concurrency(code: Code) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, value in {"int": "1000000000", "float": "1e9"}.items():
            proc = subprocess.run(
                [
                    code.python,
                    "-m",
                    "gym_compile.cli",
                    str(REPO / "examples/simple_weather/simple_weather.yaml"),
                    str(REPO / "examples/simple_weather/stand_in_model.yaml"),
                    f"+output_jsonl_fpath={work / 'out.jsonl'}",
                    f"+num_samples_in_parallel={value}",
                    "-o",
                    str(work / "plan.json"),
                ],
                env=code.env,
                capture_output=True,
                text=True,
            )
            first = (proc.stderr or proc.stdout).strip().splitlines()[:1]
            emit(f"concurrency_{name}.compile_exit_code", proc.returncode)
            emit(f"concurrency_{name}.says", first[0][:160] if first else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--pad-mb", type=int, default=30)
    args = parser.parse_args()
    code = Code(args.code)
    emit("code", code.commit())
    big_answers(code, args.rows, args.pad_mb)
    huge_concurrency(code)


if __name__ == "__main__":
    main()
