"""The options every command that judges a final set shares (run, reverify, report): the pass
threshold, CI gates (`--fail-under`, exit 6) and JUnit XML; parsing and the gate verdict only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from gym_run.metrics.gate import METRICS_HELP, Gate

F = TypeVar("F", bound=Callable[..., Any])


def _gates(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Gate]:
    try:
        return [Gate.parse(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def eval_options(func: F) -> F:
    """--pass-threshold, --fail-under (repeatable), --junit."""
    func = click.option(
        "--junit",
        "junit",
        type=click.Path(dir_okay=False),
        default=None,
        help="Write JUnit XML of the final rollouts here (one test case each; failed rollouts "
        "are errors, rewards below the pass threshold failures).",
    )(func)
    func = click.option(
        "--fail-under",
        "gates",
        multiple=True,
        callback=_gates,
        metavar="[METRIC=]X",
        help=f"Exit 6 when METRIC < X ({METRICS_HELP}; failed rollouts count as reward 0). "
        "Repeatable; every gate must hold.",
    )(func)
    func = click.option(
        "--pass-threshold",
        type=float,
        default=None,
        help="A rollout passes when its reward >= this (pass rate, pass@k, JUnit); default: the "
        "plan's pass_threshold (for report: the one its run used), else 1.0.",
    )(func)
    return func


def check_gates(gates: list[Gate], aggregate: dict[str, Any] | None) -> bool:
    """Prints one line per gate; True when all hold (and when there are none)."""
    ok = True
    for gate in gates:
        if aggregate is None:
            click.echo(f"gate: {gate.metric}: no aggregate metrics for this run: FAILED", err=True)
            ok = False
            continue
        click.echo(gate.describe(aggregate), err=gate.check(aggregate) is not None)
        ok = ok and gate.check(aggregate) is None
    return ok
