"""NeMo Gym corpus: every server config of nemo-gym 0.4.0 and 0.7.0 compiled alone, the outcome
table (compile / listed genuine reason / anything else / crashes), compile time per file, and the
throughput of `gym-compile lint` over a whole NeMo Gym tree.

python benchmarks/nemo_corpus.py [--version 0.7.0] [--tree DIR] [--show other|listed|all]
                                 [--write-expected]

--write-expected rewrites tests/nemo_corpus_expected.yaml from the outcomes: entries whose codes
still match keep their reason, files that compile are dropped, new failures get a TODO reason that
tests/test_nemo_corpus.py refuses until someone checks it against NeMo Gym's code and writes it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "runtime")]

from gym_compile.lint import lint  # noqa: E402
from tests.nemo_corpus import nemo_gym_tree  # noqa: E402
from tests.nemo_corpus_run import (  # noqa: E402
    ENV_YAML,
    EXPECTED,
    TODO,
    Outcome,
    compile_tree,
    dump_expected,
    judge,
    load_expected,
    working_directory,
)

VERSIONS = ("0.4.0", "0.7.0")


def report(version: str, tree: Path, outcomes: list[Outcome], show: str) -> None:
    verdict = judge(outcomes, load_expected(version))
    times = sorted(o.seconds for o in outcomes)
    print(f"nemo-gym {version} ({tree}): {len(outcomes)} server config files")
    print(f"  compile                 {len(verdict.compiled)}")
    print(f"  listed genuine reason   {len(verdict.listed)}")
    print(f"  anything else           {len(verdict.other)}")
    print(f"  crashes                 {len(verdict.crashed)}")
    if verdict.stale:
        print(f"  stale expectations      {len(verdict.stale)} (listed, but compile or are gone)")
    print(
        f"  compile time per file: median {statistics.median(times) * 1000:.1f} ms, "
        f"p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms, "
        f"total {sum(times):.2f} s"
    )
    for o, why in verdict.other if show in ("other", "all") else []:
        print(f"    OTHER {o.file}: {why}")
    for o in verdict.crashed:
        print(f"    CRASH {o.file}: {o.crash.strip().splitlines()[-1]}")
    for o in verdict.listed if show in ("listed", "all") else []:
        print(f"    listed {o.file}: {','.join(o.codes)}")


def lint_rate(tree: Path) -> None:
    with working_directory(tree):
        start = time.perf_counter()
        result = lint(["."])
        seconds = time.perf_counter() - start
    n = len(result.files)
    print(f"  lint of the whole tree: {n} files in {seconds:.2f} s = {n / seconds:.0f} files/s")


def write_expected(all_outcomes: dict[str, list[Outcome]]) -> None:
    data = yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) if EXPECTED.is_file() else {}
    data = data or {}
    for version, outcomes in all_outcomes.items():
        old = dict(data.get(version) or {})
        new = {}
        for o in outcomes:
            if o.ok or o.crash:
                continue
            entry = old.get(o.file) or {}
            keep = tuple(sorted(entry.get("codes", []))) == o.codes and entry.get("reason")
            new[o.file] = {
                "codes": list(o.codes),
                "reason": entry["reason"] if keep else f"{TODO}: {o.first}",
            }
        data[version] = dict(sorted(new.items()))
    text = EXPECTED.read_text(encoding="utf-8") if EXPECTED.is_file() else ""
    header = text.split("\n\n", 1)[0] if text.startswith("#") else "# NeMo Gym corpus expectations"
    EXPECTED.write_text(dump_expected(header, data), encoding="utf-8")
    print(f"wrote {EXPECTED}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="append", choices=VERSIONS)
    ap.add_argument("--tree", type=Path, help="an unpacked NeMo Gym tree instead of the wheel")
    ap.add_argument("--show", choices=("none", "other", "listed", "all"), default="other")
    ap.add_argument("--no-lint", action="store_true")
    ap.add_argument("--write-expected", action="store_true")
    args = ap.parse_args()
    versions = args.version or list(VERSIONS)
    outcomes: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "env.yaml"
        env.write_text(ENV_YAML, encoding="utf-8")
        for version in versions:
            tree = args.tree or nemo_gym_tree(version)
            outcomes[version] = compile_tree(tree, env)
            report(version, tree, outcomes[version], args.show)
            if not args.no_lint:
                lint_rate(tree)
    if args.write_expected:
        write_expected(outcomes)


if __name__ == "__main__":
    main()
