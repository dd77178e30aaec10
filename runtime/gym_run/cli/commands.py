"""`gym-run`: argument parsing only; the one boundary that turns errors into exit codes."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import click

from gym_compile import __version__
from gym_run.cli.cache import cache_group
from gym_run.cli.compare import compare_command
from gym_run.cli.errors import Guard, user_errors
from gym_run.cli.finish import finish
from gym_run.cli.jobopts import JobArgs, JobHelp, interruptible, job_options
from gym_run.cli.report import report_command
from gym_run.cli.reverify import reverify_command
from gym_run.cli.scale import ScaleArgs, merge_command, resolve, scale_options
from gym_run.cli.standin import stand_in_command
from gym_run.collect.runner import DEFAULT_GRACE_S, run_job
from gym_run.errors import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED
from gym_run.plan import load_plan


@click.group(cls=Guard, default="run", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gym-run", message="%(prog)s %(version)s")
def cli() -> None:
    """Execute a plan written by gym-compile.

    \b
    gym-run PLAN [--resume [--retry-failed] | --overwrite]   collect rollouts (= gym-run run PLAN)
    gym-run PLAN --ray [ADDRESS]      the same on a Ray cluster (this process stays the writer)
    gym-run PLAN --shard K/N          one slice of the rows into its own file (array jobs)
    gym-run merge PLAN                shards 1..N -> the final set and its metrics
    gym-run export PLAN [-o FILE]     the final, de-duplicated rollouts in input order
    gym-run check PLAN                probe every model endpoint once (key, model, URL)
    gym-run serve PLAN                serve the plan's servers over HTTP
    gym-run stand-in                  run the offline stand-in model endpoint
    gym-run report ROLLOUTS [-o HTML | --text]   a report people look at / a text summary
    gym-run reverify PLAN ROLLOUTS -o NEW        re-score rollouts with PLAN's verifier
    gym-run compare A B [-o HTML | --text]       two runs side by side, per task
    gym-run cache stats|clear PLAN|FILE          the plan's response cache

    \b
    Exit codes: 0 all rollouts ok; 3 some rollouts failed (recorded; the command that retries
    them is printed); 5 stopped by the budget (resumable with --resume --max-usd/--max-tokens);
    6 below a --fail-under gate; 7 stopped by the circuit breaker: the endpoint kept failing the
    same way (wrong key, unknown model, unreachable; resumable with --resume --retry-failed once
    fixed); 130 interrupted (resumable); 4 bad or stale plan, or a missing secret; 2 usage (e.g.
    output exists); 1 other errors (check: an endpoint is not usable).
    """


def resume_command(plan: str, retry_failed: bool) -> str:
    return f"gym-run {shlex.quote(plan)} --resume" + (" --retry-failed" if retry_failed else "")


#: run and serve: the same flag, the same meaning, the same words
NO_CACHE_HELP = "Do not use the plan's response cache (neither read nor write it)."
no_cache_option = click.option("--no-cache", is_flag=True, help=NO_CACHE_HELP)


@cli.command("run")
@click.argument("plan", type=click.Path(dir_okay=False))
@job_options(
    JobHelp(
        resume="Keep the rollouts already written; run only the missing ones.",
        retry_failed="With --resume: run failed rollouts again too.",
        overwrite="Replace an existing rollouts file.",
        max_usd="Budget in USD for this run, instead of the plan's budget.max_usd (e.g. to resume "
        "past it).",
        max_tokens="Budget in billed tokens for this run, instead of the plan's budget.max_tokens.",
        no_cache=NO_CACHE_HELP,
    )
)
@click.option(
    "--grace-s",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_S,
    show_default=True,
    help="After Ctrl-C, how long in-flight rollouts may finish before they are cancelled.",
)
@scale_options
@user_errors
def run_command(plan: str, grace_s: float, job: JobArgs, scale: ScaleArgs) -> None:
    """Collect PLAN's rollouts into its rollouts and metrics files."""
    job.check("the rollouts file")
    loaded = load_plan(plan)
    hint = resume_command(plan, job.options.retry_failed) + scale.resume_flags()
    engine, part = resolve(loaded, scale, lambda line: click.echo(line, err=True))
    result = interruptible(
        run_job(
            loaded,
            **job.options.job_kwargs(),
            show_progress=job.show_progress,
            grace_s=grace_s,
            handle_signals=True,
            resume_hint=hint,
            progress_interval_s=job.progress_interval,
            engine=engine,
            part=part,
        ),
        hint,
    )
    finish(result, hint=hint, gates=job.gates, quiet=job.quiet)


@cli.command("export")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write (default: the rollouts path with .final.jsonl).",
)
@click.option("--ok-only", is_flag=True, help="Leave out rollouts whose final record is a failure.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
@user_errors
def export_command(plan: str, output: str | None, ok_only: bool, overwrite: bool) -> None:
    """Write PLAN's final rollouts: one record per id (a re-run failure replaced), in input order."""
    from gym_run.collect.resume import export_plan
    from gym_run.errors import PlanError

    loaded = load_plan(plan)
    if not loaded.get("job"):
        raise PlanError("this plan has no collection job, so there is nothing to export")
    report = export_plan(loaded, output, ok_only=ok_only, overwrite=overwrite)
    missing = (
        f", {report.missing} missing (finish them with: {resume_command(plan, False)})"
        if report.missing
        else ""
    )
    click.echo(
        f"wrote {report.written} rollouts to {report.path} ({report.ok} ok, {report.failed} failed{missing})"
    )
    sys.exit(EXIT_SOME_FAILED if report.failed or report.missing else EXIT_OK)


@cli.command("check")
@click.argument("plan", type=click.Path(dir_okay=False))
@user_errors
def check_command(plan: str) -> None:
    """Probe each model endpoint of PLAN once: key, model name, URL. Exit 0 only if all work."""
    from gym_run.endpoint.check import check_plan

    lines = asyncio.run(check_plan(load_plan(plan)))
    for line in lines:
        click.echo(str(line))
    if not lines:
        click.echo("this plan has no model servers to check")
    sys.exit(EXIT_OK if all(line.ok for line in lines) else EXIT_ERROR)


@cli.command("serve")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option(
    "--host",
    default=None,
    help="Listen on this address (every server); default: each server's host, 127.0.0.1.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback address; every request then needs the bearer token.",
)
@click.option(
    "--require-token",
    is_flag=True,
    help="Require 'Authorization: Bearer <token>' even on loopback (token: $GYM_SERVE_TOKEN or printed once).",
)
@click.option(
    "--head-port",
    default=11000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of NeMo Gym's head server (0: a free one); NeMo Gym's tools look at 11000 unless "
    "given +head_server.port.",
)
@no_cache_option
@user_errors
def serve_command(
    plan: str,
    host: str | None,
    allow_remote: bool,
    require_token: bool,
    head_port: int,
    no_cache: bool,
) -> None:
    """Serve PLAN's servers over HTTP (NeMo Gym's routes and head server) until Ctrl-C."""
    from gym_run.servers.serve import serve_forever

    loaded = load_plan(plan)
    try:
        asyncio.run(
            serve_forever(
                loaded,
                echo=lambda line: click.echo(line),
                host=host,
                allow_remote=allow_remote,
                require_token=require_token,
                head_port=head_port,
                log_dir=Path(plan).with_name(Path(plan).stem + ".logs"),
                use_cache=not no_cache,
            )
        )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


cli.add_command(report_command)
cli.add_command(merge_command)
cli.add_command(stand_in_command)
cli.add_command(reverify_command)
cli.add_command(compare_command)
cli.add_command(cache_group)


def main() -> None:
    cli(prog_name="gym-run")


if __name__ == "__main__":
    main()
