"""`gym-run reverify PLAN ROLLOUTS -o NEW`: argument parsing only; collect/reverify.py re-scores."""

from __future__ import annotations

import shlex

import click

from gym_run.cli.errors import user_errors
from gym_run.cli.finish import finish
from gym_run.cli.jobopts import JobArgs, JobHelp, interruptible, job_options
from gym_run.collect.result import ProgressSpec
from gym_run.collect.reverify import reverify_job
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
@job_options(
    JobHelp(
        resume="Keep what NEW holds; re-score only the rest.",
        retry_failed="With --resume: re-score failed ones again.",
        overwrite="Replace an existing NEW file.",
        max_usd="Budget in USD for the verifier's (judge's) calls.",
        max_tokens="Budget in billed tokens for the verifier's (judge's) calls.",
        no_cache="Do not use the plan's response cache.",
    )
)
@user_errors
def reverify_command(plan: str, rollouts: str, output: str, job: JobArgs) -> None:
    """Re-score ROLLOUTS with PLAN's verifier (its judge may be called, the policy never) into -o NEW.

    Exit codes as for a run: 0 all re-scored, 3 some failed (carried-over failures included),
    5 budget, 6 --fail-under, 130 interrupted (resume with --resume).
    """
    job.check("NEW")
    loaded = load_plan(plan)
    hint = (
        f"gym-run reverify {shlex.quote(plan)} {shlex.quote(rollouts)} -o {shlex.quote(output)}"
        + job.resume_flags()
    )
    result, changed = interruptible(
        reverify_job(
            loaded,
            rollouts,
            output,
            **job.options.job_kwargs(),
            progress=ProgressSpec(None, job.show_progress, job.progress_interval),
            handle_signals=True,
            resume_hint=hint,
        ),
        hint,
    )
    rescored = sum(changed.values())
    extra = [
        f"re-verified now: {rescored} (reward up {changed['up']}, down {changed['down']}, "
        f"same {changed['same']}); the old file {rollouts} is unchanged"
    ]
    finish(result, hint=hint, gates=job.gates, quiet=job.quiet, extra=extra)
