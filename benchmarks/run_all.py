"""Runs every benchmark several times, prints the median of each figure, saves them as JSON.

    python benchmarks/run_all.py [--runs 3] [--quick] [--compare benchmarks/results/OLD.json]

Results go to benchmarks/results/<git commit>.json so two commits can be compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = {  # script -> arguments (full size, quick)
    "bench_runtime.py": ([], ["--rollouts", "500"]),
    "bench_memory.py": ([], ["--large", "10000"]),
    "bench_compile.py": (["--repeats", "1"], ["--repeats", "1", "--rows", "10000"]),
    "bench_startup.py": (["--repeats", "3"], ["--repeats", "1"]),
    "bench_lint.py": ([], ["--files", "100"]),
    "bench_hostile.py": ([], ["--only", "unknown keys"]),
    "bench_fuzz.py": (["--examples", "1000"], ["--examples", "50"]),  # 10,000: run it alone
    "bench_report.py": ([], ["--sizes", "20", "10000", "--no-browser"]),
    # needs Ray (pip install 'gym-compile[ray]'); starts its own loopback cluster
    "bench_scale.py": (
        ["--repeats", "1"],
        ["--rollouts", "200", "--overhead-rollouts", "500", "--large", "5000"],
    ),
    "bench_nemo_collect.py": ([], ["--rollouts", "100"]),  # needs nemo-gym's venv (tests make it)
}


def run(script: str, args: list[str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, cwd=HERE
    )
    if proc.returncode != 0:
        print(f"{script} failed:\n{proc.stdout}{proc.stderr}", file=sys.stderr)
        return {}
    figures = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            try:
                figures[name] = float(value)
            except ValueError:
                pass
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--compare", type=Path, help="an earlier results JSON to compare with")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    for script, (full, quick) in SUITE.items():
        if not (HERE / script).exists():
            continue
        for _ in range(args.runs):
            for name, value in run(script, quick if args.quick else full).items():
                samples.setdefault(name, []).append(value)
    medians = {name: round(statistics.median(values), 4) for name, values in samples.items()}
    old = json.loads(args.compare.read_text())["figures"] if args.compare else {}
    for name, value in medians.items():
        delta = f"  (was {old[name]})" if name in old else ""
        print(f"{name}={value}{delta}")
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
        or "unknown"
    )
    out = HERE / "results" / f"{commit}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"commit": commit, "runs": args.runs, "quick": args.quick, "figures": medians}, indent=2
        )
        + "\n"
    )
    print(f"saved {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
