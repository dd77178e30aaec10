"""Fuzz gym-compile with what users type and count internal errors (issue 13: 0 of 10,000).

    python benchmarks/bench_fuzz.py [--examples 10000] [--seed 0]

Three properties from tests/fuzz_inputs.py (overrides on known keys, values in a config file,
dataset rows), each run for --examples examples; unlike the test, a failure is counted and the
run goes on, so the figure says how many examples and how many distinct errors. Runs against
whichever gym_compile the interpreter imports, so the same command measures an older checkout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# Only tests/ goes on the path (not the checkout): gym_compile is whatever the interpreter
# imports, so `/path/to/old/venv/bin/python benchmarks/bench_fuzz.py` measures that version.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import yaml  # noqa: E402
from fuzz_inputs import (  # noqa: E402
    config_edits,
    edited,
    internal_error,
    overrides,
    rows,
    runtime_rows_error,
    write_world,
)
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402


def run(examples: int, rng_seed: int) -> tuple[Counter[str], dict[str, int], float]:
    errors: Counter[str] = Counter()
    counts = {"overrides": 0, "config values": 0, "dataset rows": 0}
    fast = settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=False,
    )

    def note(kind: str, found: str | None) -> None:
        counts[kind] += 1
        if found is not None:
            errors[f"{kind}: {found}"] += 1

    @seed(rng_seed)
    @fast
    @given(args=overrides)
    def fuzz_overrides(args: list[str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            note("overrides", internal_error(root, write_world(root), args))

    @seed(rng_seed)
    @fast
    @given(edits=config_edits)
    def fuzz_configs(edits: list) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            config = write_world(root)
            config.write_text(yaml.safe_dump(edited(edits), sort_keys=False), encoding="utf-8")
            note("config values", internal_error(root, config, []))

    @seed(rng_seed)
    @fast
    @given(lines=rows)
    def fuzz_rows(lines: list[str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            config = write_world(root, lines)
            found = internal_error(root, config, ["+input_jsonl_fpath=rows.jsonl"])
            note("dataset rows", found or runtime_rows_error(root))

    started = time.perf_counter()
    for prop in (fuzz_overrides, fuzz_configs, fuzz_rows):
        prop()
    return errors, counts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000, help="per property")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    errors, counts, seconds = run(args.examples, args.seed)
    total = sum(counts.values())
    failed = sum(errors.values())
    for kind, n in counts.items():
        print(f"# {kind}: {n} examples")
    for what, n in errors.most_common(20):
        print(f"#   {n:5d} x {what}")
    print(f"fuzz_examples={total}")
    print(f"fuzz_internal_errors={failed}")
    print(f"fuzz_distinct_errors={len(errors)}")
    print(f"fuzz_seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
