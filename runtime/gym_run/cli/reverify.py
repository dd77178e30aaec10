"""`gym-run reverify PLAN ROLLOUTS -o NEW`: argument parsing only; collect/reverify.py re-scores."""

from __future__ import annotations

import asyncio
import shlex
import sys

import click

from gym_run.cli.errors import user_errors
from gym_run.cli.evalopts import eval_options
from gym_run.cli.finish import finish, progress_options
from gym_run.collect.job import ProgressSpec
from gym_run.collect.reverify import reverify_job
from gym_run.errors import EXIT_INTERRUPTED
from gym_run.metrics.gate import Gate
from gym_run.plan import load_plan


@click.command("reverify")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.argument("rollouts", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new rollouts file (ROLLOUTS itself is never written).",
)
@click.option("--resume", is_flag=True, help="Keep what NEW holds; re-score only the rest.")
@click.option("--retry-failed", is_flag=True, help="With --resume: re-score failed ones again.")
@click.option("--overwrite", is_flag=True, help="Replace an existing NEW file.")
@click.option(
    "--max-usd",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Budget in USD for the verifier's (judge's) calls.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Budget in billed tokens for the verifier's (judge's) calls.",
)
@click.option("--no-cache", is_flag=True, help="Do not use the plan's response cache.")
@eval_options
@progress_options
@user_errors
def reverify_command(
    plan: str,
    rollouts: str,
    output: str,
    resume: bool,
    retry_failed: bool,
    overwrite: bool,
    max_usd: float | None,
    max_tokens: int | None,
    no_cache: bool,
    quiet: bool,
    progress_interval: float,
    pass_threshold: float | None,
    gates: list[Gate],
    junit: str | None,
) -> None:
    """Re-score ROLLOUTS with PLAN's verifier (its judge may be called, the policy never) into -o NEW.

    Exit codes as for a run: 0 all re-scored, 3 some failed (carried-over failures included),
    5 budget, 6 --fail-under, 130 interrupted (resume with --resume).
    """
    if resume and overwrite:
        raise click.UsageError("--resume keeps NEW and --overwrite replaces it: pick one")
    if retry_failed and not resume:
        raise click.UsageError("--retry-failed only makes sense with --resume")
    loaded = load_plan(plan)
    hint = (
        f"gym-run reverify {shlex.quote(plan)} {shlex.quote(rollouts)} -o {shlex.quote(output)} "
        "--resume" + (" --retry-failed" if retry_failed else "")
    )
    try:
        result, changed = asyncio.run(
            reverify_job(
                loaded,
                rollouts,
                output,
                existing="overwrite" if overwrite else "append" if resume else "refuse",
                retry_failed=retry_failed,
                progress=ProgressSpec(None, False if quiet else None, progress_interval),
                handle_signals=True,
                resume_hint=hint,
                use_cache=not no_cache,
                max_usd=max_usd,
                max_tokens=max_tokens,
                pass_threshold=pass_threshold,
                junit_path=junit,
            )
        )
    except KeyboardInterrupt:
        click.echo(f"gym-run: interrupted; resume with: {hint}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    rescored = sum(changed.values())
    extra = [
        f"re-verified now: {rescored} (reward up {changed['up']}, down {changed['down']}, "
        f"same {changed['same']}); the old file {rollouts} is unchanged"
    ]
    finish(result, hint=hint, gates=gates, quiet=quiet, extra=extra)
