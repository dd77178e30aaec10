"""A finished job in, its summary and exit code out: shared by `gym-run run` and `reverify`.

Exit precedence: 130 interrupted, 5 stopped by the budget, 7 stopped by the circuit breaker, 6
below a --fail-under gate, 3 some rollouts failed or are missing, 0. A gate is judged on the final
set even when the run was cut short, and printed, but the resumable stop says what to do next
first; every resumable exit prints the exact command that goes on.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from gym_run.cli.evalopts import check_gates
from gym_run.collect.progress import PLAIN_INTERVAL_S
from gym_run.collect.result import JobResult
from gym_run.collect.summary import summary_lines
from gym_run.errors import EXIT_BUDGET, EXIT_ENDPOINT_DOWN, EXIT_INTERRUPTED, EXIT_SOME_FAILED
from gym_run.metrics.gate import Gate

F = TypeVar("F", bound=Callable[..., Any])


def progress_options(func: F) -> F:
    func = click.option(
        "--progress-interval",
        type=click.FloatRange(min=0.1),
        default=PLAIN_INTERVAL_S,
        show_default=True,
        help="Seconds between progress lines when stderr is not a terminal (CI logs).",
    )(func)
    return click.option("-q", "--quiet", is_flag=True, help="No progress line and no summary.")(
        func
    )


def summary(result: JobResult, extra: list[str] | None = None) -> str:
    lines = summary_lines(result.metrics, first_error=result.first_error)
    if result.budget.stopped:
        lines.insert(
            1, f"budget: stopped, {result.budget.reason}; the rollouts not started are missing"
        )
    lines += extra or []
    aggregate = result.metrics["_gym"].get("aggregate") or {}
    lines += [
        f"rollouts: {result.rollouts_path}",
        f"metrics:  {result.metrics_path}",
    ]
    if aggregate.get("junit_file"):
        lines.append(f"junit:    {aggregate['junit_file']}")
    lines.append(f"report:   gym-run report {shlex.quote(result.rollouts_path)}")
    return "\n".join(lines)


def finish(
    result: JobResult,
    *,
    hint: str,
    gates: list[Gate],
    quiet: bool,
    extra: list[str] | None = None,
) -> NoReturn:
    if not quiet:
        click.echo(summary(result, extra))
    code = result.exit_code(check_gates(gates, result.metrics["_gym"].get("aggregate")))
    if code == EXIT_INTERRUPTED:
        click.echo(
            f"gym-run: interrupted; finished rollouts are kept. Resume with: {hint}", err=True
        )
    elif code == EXIT_BUDGET:
        click.echo(
            f"gym-run: stopped by the budget ({result.budget.reason}); finished rollouts are kept. "
            f"Resume with a higher budget: {hint} {result.budget.raise_hint()}",
            err=True,
        )
    elif code == EXIT_ENDPOINT_DOWN:  # why, in one line, was said when the breaker tripped
        click.echo(f"gym-run: once it is fixed, go on with: {_retrying(hint)}", err=True)
    elif code == EXIT_SOME_FAILED:
        failed, missing = result.counts["failed"], result.counts["missing"]
        what = " and ".join(
            part for part in (f"{failed} failed", f"{missing} missing") if not part.startswith("0 ")
        )
        click.echo(
            f"gym-run: {what}; run them again with: {_retrying(hint) if failed else hint}",
            err=True,
        )
    sys.exit(code)


def _retrying(hint: str) -> str:
    """The resume command that also re-runs the failed rollouts."""
    return hint if hint.endswith(" --retry-failed") else f"{hint} --retry-failed"
