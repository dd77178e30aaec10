"""gym-run's scale-out flags (--ray..., --shard) and `gym-run merge`: parsing only; the work is in
gym_run.scale. Kept apart so `gym-run run` gains one decorator and one argument."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from typing import Any

import click

from gym_compile.plan_types import Plan
from gym_run.cli.errors import user_errors
from gym_run.collect.engine import Engine, Slice
from gym_run.errors import EXIT_OK, EXIT_SOME_FAILED, PlanError
from gym_run.plan import load_plan
from gym_run.scale import choose
from gym_run.scale.choose import LOCAL, ScaleArgs, ScaleError

_NAMES = (
    "ray_address",
    "no_ray",
    "ray_workers",
    "ray_worker_concurrency",
    "ray_worker_cpus",
    "shard",
)


def scale_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the flags to a command and hands them over as one `scale: ScaleArgs` argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scale = ScaleArgs(**{name: kwargs.pop(name) for name in _NAMES})
        return command(*args, scale=scale, **kwargs)

    options = [
        click.option(
            "--ray",
            "ray_address",
            is_flag=False,
            flag_value=LOCAL,
            default=None,
            metavar="[ADDRESS]",
            help="Run on Ray: a local Ray (127.0.0.1) when no address is given, else the cluster "
            "whose head is at ADDRESS (host:port, auto). Needs Ray: pip install 'ray>=2.10'.",
        ),
        click.option(
            "--no-ray", is_flag=True, help="Run in this process even if the plan has a ray: block."
        ),
        click.option(
            "--ray-workers",
            type=click.IntRange(1, 4096),
            default=None,
            help="Ray workers (overrides ray.workers).",
        ),
        click.option(
            "--ray-worker-concurrency",
            type=click.IntRange(1, 100000),
            default=None,
            help="Rollouts in flight per Ray worker (overrides ray.concurrency_per_worker).",
        ),
        click.option(
            "--ray-worker-cpus",
            type=click.FloatRange(min=0),
            default=None,
            help="CPUs each Ray worker reserves (overrides ray.resources_per_worker.CPU).",
        ),
        click.option(
            "--shard",
            default=None,
            metavar="K/N",
            help="Run only shard K of N (rows t with t mod N = K-1) into <rollouts>.shard-K-of-N.jsonl; "
            "'slurm' takes K/N from the array job. Merge with gym-run merge PLAN.",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def resolve(
    plan: Plan, scale: ScaleArgs, notice: Callable[[str], None]
) -> tuple[Engine | None, Slice | None]:
    """gym_run.scale.choose.resolve, its complaints as usage errors."""
    try:
        return choose.resolve(plan, scale, notice)
    except ScaleError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("merge")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option(
    "--shards",
    type=click.IntRange(1, 100_000),
    default=None,
    help="N (default: found from the file names).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write (default: the plan's rollouts path, as if one run had written it).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@user_errors
def merge_command(plan: str, shards: int | None, output: str | None, overwrite: bool) -> None:
    """Merge PLAN's shard files into one final set (no duplicates, input order) and its metrics."""
    from gym_run.scale.merge import merge_shards
    from gym_run.scale.shard import ShardError

    loaded = load_plan(plan)
    if not loaded.get("job"):
        raise PlanError("this plan has no collection job, so there are no shards to merge")
    try:
        report = merge_shards(loaded, shards=shards, dest=output, overwrite=overwrite)
    except ShardError as exc:
        raise click.UsageError(str(exc)) from None
    for notice in report.notices:
        click.echo(notice, err=True)
    absent = f"; no file for shard {', '.join(map(str, report.absent))}" if report.absent else ""
    missing = f", {report.missing} missing" if report.missing else ""
    click.echo(
        f"merged {report.shards} shards: {report.written} rollouts to {report.path} "
        f"({report.ok} ok, {report.failed} failed{missing}){absent}\nmetrics:  {report.metrics_path}"
    )
    if report.missing:
        click.echo(
            f"finish the missing ones with: gym-run {shlex.quote(plan)} --resume (on the merged "
            "file) or rerun the shards with --resume",
            err=True,
        )
    sys.exit(EXIT_SOME_FAILED if report.failed or report.missing else EXIT_OK)
