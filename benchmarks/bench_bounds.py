"""Issue 13.3: is every path bounded with DEFAULT settings? Each case runs gym-run against a
misbehaving stand-in, under a wall-clock cap (past it: two Ctrl-Cs); `capped=1` means the run had
not ended by itself.

    python benchmarks/bench_bounds.py [--code PATH] [--only CASE] [--cap 60] [--drip-cap 700]

- empty_output / always_call: one row; model calls made by the one rollout, and whether it ended.
- drip: one row; the answer's body arrives one byte a second: how long the call is held.
- budget_runaway: one row whose model always calls a tool, budget.max_tokens 20,000: tokens
  spent when the run stopped (spend counted as it happens, or only per finished rollout).
- breaker_401 / breaker_404 / breaker_unreachable: 2,000 rows, a wrong key / an unknown model /
  a closed port: failure records written, requests sent, exit code; then, for the key, a resume
  with the right key (`--resume --retry-failed`) and how many rollouts it completes.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from bounds_common import REPO, Code, Run, StandIn, audit, emit, write_rows


def _report(name: str, run: Run, found: dict, served: dict) -> None:
    emit(f"{name}.exit_code", run.code)
    emit(f"{name}.capped", int(run.timed_out))
    emit(f"{name}.wall_s", run.wall_s)
    emit(f"{name}.requests", served.get("requests", -1))
    emit(f"{name}.records_written", found["lines"])
    emit(f"{name}.ok", found["ok_ids"])


def one_row(code: Code, name: str, flags: list[str], cap: float, *overrides: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, StandIn(*flags) as standin:
        work = Path(tmp)
        plan = code.compile(work, standin.url, write_rows(work / "rows.jsonl", 1), "", *overrides)
        run = code.run(plan, "--grace-s", "1", timeout=cap)
        budget = run.metrics(work).get("_gym", {}).get("budget") or {}
        found = audit(work / "rollouts.jsonl", 1)
        lines = (work / "rollouts.jsonl").read_text().splitlines() if found["lines"] else []
    _report(name, run, found, standin.served)
    if lines:
        record = json.loads(lines[0])["_gym"]
        emit(f"{name}.model_calls_of_rollout", record.get("model_calls", -1))
        if record["status"] != "ok":
            emit(f"{name}.failure", record["error"]["class"])
    if budget.get("max_tokens"):
        emit(f"{name}.budget_max_tokens", budget["max_tokens"])
        emit(f"{name}.budget_spent_tokens", budget.get("spent_tokens", -1))


def breaker(
    code: Code, name: str, flags: list[str], cap: float, rows: int, base_url: str | None = None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with StandIn(*flags) as standin:
            plan = code.compile(
                work, base_url or standin.url, write_rows(work / "rows.jsonl", rows)
            )
            code.env["GYM_BENCH_KEY"] = "wrong-key" if "--api-key" in flags else "bench"
            run = code.run(plan, "--grace-s", "1", timeout=cap)
            found = audit(work / "rollouts.jsonl", rows)
        _report(name, run, found, standin.served)
        emit(f"{name}.says_why_in_one_line", int(_one_line_reason(run.output)))
        if "--api-key" not in flags:
            return
        port = standin.url.rsplit(":", 1)[1].split("/")[0]
        with StandIn(*flags, "--port", port) as again:  # the key is fixed: a resume goes on
            code.env["GYM_BENCH_KEY"] = "bench"
            resumed = code.resume(plan, cap)
            found = audit(work / "rollouts.jsonl", rows)
        emit(f"{name}.resume_exit_code", resumed.code)
        emit(f"{name}.resume_requests", again.served.get("requests", -1))
        emit(f"{name}.after_resume_ok", found["ok_ids"])


def _one_line_reason(output: str) -> bool:
    lines = [line for line in output.splitlines() if line.startswith("gym-run: stopped")]
    return len(lines) == 1


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--cap", type=float, default=60, help="seconds before a run is stopped")
    parser.add_argument("--drip-cap", type=float, default=700, help="the drip case's cap")
    parser.add_argument("--rows", type=int, default=2000, help="rows of the breaker cases")
    parser.add_argument("--only", action="append")
    args = parser.parse_args()
    code = Code(args.code)
    emit("code", code.commit())
    cases: dict[str, Callable[[], None]] = {
        "empty_output": lambda: one_row(code, "empty_output", ["--empty-output", "1"], args.cap),
        "always_call": lambda: one_row(code, "always_call", ["--always-call"], args.cap),
        "budget_runaway": lambda: one_row(
            code,
            "budget_runaway",
            ["--always-call"],
            args.cap,
            "+budget.max_tokens=20000",
            "+simple_weather_simple_agent.responses_api_agents.simple_agent.max_steps=null",
        ),
        "drip": lambda: one_row(code, "drip", ["--drip", "1"], args.drip_cap),
        "breaker_401": lambda: breaker(
            code, "breaker_401", ["--api-key", "bench"], args.cap, args.rows
        ),
        "breaker_404": lambda: breaker(
            code, "breaker_404", ["--known-model", "other"], args.cap, args.rows
        ),
        "breaker_unreachable": lambda: breaker(
            code,
            "breaker_unreachable",
            [],
            args.cap,
            args.rows,
            f"http://127.0.0.1:{closed_port()}/v1",
        ),
    }
    for name, run in cases.items():
        if not args.only or name in args.only:
            run()


if __name__ == "__main__":
    main()
