"""How many of NeMo Gym's environments actually run under gym-run, and why the others do not.

    python benchmarks/nemo_envs.py [--version 0.7.0] [--only TEXT ...] [--limit N]
                                   [--timeout 120] [--startup-timeout 60] [--out DIR]
                                   [--compile-only] [--no-isolation]

Every environment of the release (an agent naming a resources server; benchmarks/nemo_envs_find.py
says how they are counted) is compiled with stand-in model servers and its example data's first
row, then run by gym-run with NeMo Gym's own code for every server but the model servers, one at a
time, each in a child process with only loopback (benchmarks/nemo_envs_run.py), bounded by
--timeout. Outcomes: ran (the reward NeMo Gym's verifier gave), no input (no example row in the
tree), compile refused (gym-compile's codes), server did not start, rollout failed, timeout,
error; the reasons of the failures are classified from the servers' logs
(benchmarks/nemo_envs_classify.py).

NeMo Gym's Python is the virtualenv the tests use (tests/nemo_venv.py; installed on first use).
Prints `nemo_envs.<version>.<figure>=N` lines; writes nemo_envs-<version>.json and .md (a table of
every environment and one of the classes) and keeps each environment's plan and server logs under
--out (default benchmarks/results/nemo_envs/, not committed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "runtime"), str(HERE)]

from gym_run.servers.nemo_process import free_port  # noqa: E402
from nemo_envs_classify import Verdict, classify  # noqa: E402
from nemo_envs_find import Environment, compile_environment, find_environments  # noqa: E402
from nemo_envs_run import become_subreaper, child, isolation, run_isolated  # noqa: E402

OUTCOMES = (
    "ran",
    "no_input",
    "compile_refused",
    "start_failed",
    "rollout_failed",
    "timeout",
    "error",
)


@dataclass
class Row:
    file: str
    agent: str
    agent_impl: str
    resources_impl: str | None
    outcome: str
    reason: str
    detail: str
    seconds: float
    leaked: list[str]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.timeout)), flush=True)
        return 0
    from tests.nemo_venv import nemo_python, nemo_root

    python = nemo_python(args.version)
    tree = nemo_root(python)
    envs = _select(find_environments(tree), args.only, args.limit)
    out = Path(args.out or HERE / "results" / "nemo_envs").resolve()
    work_root = out / f"work-{args.version}"
    shutil.rmtree(work_root, ignore_errors=True)
    prefix = None if args.no_isolation or args.compile_only else isolation()
    reaper = become_subreaper()
    print(
        f"nemo-gym {args.version} ({tree}): {len(envs)} environments; network "
        + ("namespace with loopback only" if prefix else "NOT isolated (offline switches only)")
        + ("" if reaper else "; leftover processes cannot be detected (no subreaper)"),
        file=sys.stderr,
    )
    start = time.monotonic()
    rows = []
    for i, env in enumerate(envs):
        row = _one(tree, env, work_root / f"{i:03d}", str(python), args, prefix)
        rows.append(row)
        print(
            f"[{i + 1}/{len(envs)}] {row.outcome:15} {row.seconds:6.1f}s {env.key}"
            + (f"  ({row.reason})" if row.reason else ""),
            file=sys.stderr,
            flush=True,
        )
    wall = time.monotonic() - start
    _figures(args.version, rows, wall, prefix is not None)
    _write(out, args.version, rows, wall)
    return 0


def _one(
    tree: Path,
    env: Environment,
    work: Path,
    python: str,
    args: argparse.Namespace,
    prefix: list[str] | None,
) -> Row:
    start = time.monotonic()
    leaked: list[str] = []
    if env.input_path is None:
        verdict = Verdict("no_input", "no example row in the tree")
    else:
        port = free_port()  # free here; inside the namespace every port is
        compiled = compile_environment(tree, env, work, python, args.startup_timeout, port)
        if compiled.plan is None:
            verdict = Verdict("compile_refused", ",".join(compiled.codes), compiled.first)
        elif args.compile_only:
            verdict = Verdict("ran", "compiled only")
        else:
            outcome, leaked = run_isolated(work, args.timeout, prefix, Path(__file__))
            verdict = classify(outcome, work / "out" / "rollouts.logs")
    return Row(
        env.file,
        env.agent,
        env.agent_impl,
        env.resources_impl,
        verdict.outcome,
        verdict.reason,
        verdict.detail,
        round(time.monotonic() - start, 2),
        leaked,
    )


def _select(envs: list[Environment], only: list[str], limit: int | None) -> list[Environment]:
    if only:
        envs = [e for e in envs if any(text in e.key for text in only)]
    return envs[:limit] if limit is not None else envs


def _figures(version: str, rows: list[Row], wall: float, isolated: bool) -> None:
    prefix = f"nemo_envs.{version.replace('.', '_')}"
    counts = Counter(r.outcome for r in rows)
    print(f"{prefix}.total={len(rows)}")
    for outcome in OUTCOMES:
        print(f"{prefix}.{outcome}={counts.get(outcome, 0)}")
    for (outcome, reason), n in sorted(Counter((r.outcome, r.reason) for r in rows).items()):
        if outcome not in ("ran", "no_input") and reason:
            print(f"{prefix}.{outcome}.{_key(reason)}={n}")
    print(f"{prefix}.leaked_processes={sum(len(r.leaked) for r in rows)}")
    print(f"{prefix}.network_isolated={int(isolated)}")
    print(f"{prefix}.wall_s={wall:.1f}")
    ran = [r.seconds for r in rows if r.outcome == "ran"]
    if ran:
        print(f"{prefix}.mean_s_per_ran={sum(ran) / len(ran):.1f}")


def _key(reason: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in reason).strip("_").lower()[:60]


def _write(out: Path, version: str, rows: list[Row], wall: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"version": version, "wall_s": round(wall, 1), "rows": [asdict(r) for r in rows]}
    (out / f"nemo_envs-{version}.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    (out / f"nemo_envs-{version}.md").write_text(markdown(version, rows, wall), encoding="utf-8")
    print(f"wrote {out / f'nemo_envs-{version}.md'} and .json", file=sys.stderr)


def markdown(version: str, rows: list[Row], wall: float) -> str:
    counts = Counter(r.outcome for r in rows)
    lines = [
        f"# NeMo Gym {version} environments under gym-run",
        "",
        f"{len(rows)} environments, {wall:.0f} s. "
        + ", ".join(f"{o}: {counts[o]}" for o in OUTCOMES if counts.get(o)),
        "",
        "| outcome | reason | environments | e.g. |",
        "|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.outcome, r.reason), []).append(r)
    for (outcome, reason), members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        example = members[0]
        lines.append(
            f"| {outcome} | {_cell(reason)} | {len(members)} | "
            f"{_cell(example.agent)}: {_cell(example.detail)} |"
        )
    lines += ["", "| file | agent | outcome | reason | detail |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.file} | {r.agent} | {r.outcome} | {_cell(r.reason)} | {_cell(r.detail)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", default="0.7.0", help="nemo-gym release (tests/nemo_venv.py)")
    p.add_argument("--only", action="append", default=[], help="FILE::AGENT contains this")
    p.add_argument("--limit", type=int, default=None, help="the first N environments only")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per environment")
    p.add_argument("--startup-timeout", type=float, default=60.0, help="seconds per server")
    p.add_argument("--out", default=None, help="where tables, plans and logs go")
    p.add_argument("--compile-only", action="store_true", help="compile, do not run")
    p.add_argument("--no-isolation", action="store_true", help="no network namespace")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    sys.exit(main())
