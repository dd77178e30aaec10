"""gym-compile's command line: argument parsing and exit codes only; the facades do the work."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from gym_compile import __version__
from gym_compile.cli_args import (
    DEFAULT_LIMIT,
    EXIT_ERRORS,
    EXIT_OK,
    cannot_write,
    env_option,
    nemo_gym_root_option,
    split_args,
    verbose_option,
)
from gym_compile.cli_tools import diff_cmd, explain_cmd, explain_code_cmd, schema_cmd, show_cmd
from gym_compile.clickutil import GuardedGroup
from gym_compile.compiler import compile_config
from gym_compile.costing import estimate_line
from gym_compile.diagnostics import Diagnostic, has_errors
from gym_compile.diagnostics.ci import to_github, to_json
from gym_compile.diagnostics.sarif import to_sarif_text
from gym_compile.diagnostics.text import render_text
from gym_compile.files import exists as path_exists
from gym_compile.lint import lint
from gym_compile.options import Options
from gym_compile.overrides import is_override
from gym_compile.plan import write_plan

FORMATS = ["text", "json", "github", "sarif"]
nemo_gym_roots = nemo_gym_root_option(
    "A NeMo Gym checkout (or plugin tree) to search first for server sources and files; "
    "repeatable. Also searched: NEMO_GYM_EXTRA_ROOTS, the config's own tree, ., an installed nemo-gym."
)


@click.group(
    cls=GuardedGroup, default="compile", context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="gym-compile")
def main() -> None:
    """Compile NeMo Gym-style YAML configs into one checked run plan (gym-compile CONFIG... -o plan.json)."""


def report(
    diagnostics: list[Diagnostic], fmt: str, *, verbose: bool, to_stderr: bool, exit_code: int = 0
) -> None:
    """Text goes where the command keeps its human output; machine formats always to stdout."""
    if fmt == "json":
        click.echo(to_json(diagnostics))
    elif fmt == "github":
        click.echo(to_github(diagnostics))
    elif fmt == "sarif":
        click.echo(to_sarif_text(diagnostics, exit_code=exit_code))
    elif diagnostics:
        click.echo(
            render_text(diagnostics, limit=None if verbose else DEFAULT_LIMIT), err=to_stderr
        )


@main.command("compile", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, required=True)
@env_option("env.yaml with secrets and shared variables (default: ./env.yaml if present).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("plan.json"),
    show_default=True,
    help="Where to write the plan.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", help="Diagnostics format."
)
@verbose_option
@nemo_gym_roots
def compile_cmd(
    args: tuple[str, ...],
    env_path: Path | None,
    output: Path,
    fmt: str,
    verbose: bool,
    nemo_gym_roots: tuple[Path, ...],
) -> None:
    """CONFIG files and Hydra-style OVERRIDES (+key=value, "+config_paths=[a.yaml,b.yaml]", ~key), in any order."""
    configs, overrides = split_args(args)
    options = Options(
        env=env_path, env_required=env_path is not None, nemo_gym_roots=nemo_gym_roots
    )
    result = compile_config(configs, overrides, options)
    code = EXIT_ERRORS if result.plan is None else EXIT_OK
    report(result.diagnostics, fmt, verbose=verbose, to_stderr=True, exit_code=code)
    if result.plan is None:
        sys.exit(EXIT_ERRORS)
    try:
        write_plan(result.plan, output)
    except OSError as exc:
        cannot_write(f"the plan to {output}", exc)
    job = result.plan["job"]
    what = f"{len(result.plan['servers'])} servers"
    if job:
        what += (
            f"; job: agent {job['agent']}, {job['input']['rows']} rows x {job['num_repeats']} "
            f"-> {job['output']['path']}"
        )
    click.echo(f"wrote {output} ({what})", err=True)
    if job and (estimate := job.get("estimate")):
        click.echo(estimate_line(estimate, job.get("prices")), err=True)


@main.command("lint", context_settings={"ignore_unknown_options": True})
@click.argument("paths", nargs=-1, required=True)
@env_option(
    "An env.yaml (e.g. a committed env.example.yaml): top-level ${names} must be defined in it. "
    "Without it they are assumed to come from env.yaml at run time."
)
@click.option(
    "--set",
    "as_set",
    is_flag=True,
    help="Compile the files together as one config (as gym-compile would), with any OVERRIDES.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default: github when GITHUB_ACTIONS=true, else text).",
)
@click.option("--strict", is_flag=True, help="Warnings fail the lint too.")
@verbose_option
@nemo_gym_roots
def lint_cmd(
    paths: tuple[str, ...],
    env_path: Path | None,
    as_set: bool,
    fmt: str | None,
    strict: bool,
    verbose: bool,
    nemo_gym_roots: tuple[Path, ...],
) -> None:
    """Check YAML config files, directories and globs for CI and pre-commit (see docs/lint.md)."""
    overrides = [p for p in paths if is_override(p) and not path_exists(p)]
    if overrides and not as_set:
        raise click.UsageError(
            f"overrides ({overrides[0]}) only apply to a set of files: add --set"
        )
    files = [p for p in paths if p not in overrides]
    if not files:
        raise click.UsageError("give at least one file, directory or glob to lint")
    if fmt is None:
        fmt = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    result = lint(
        files, env=env_path, as_set=as_set, overrides=overrides, nemo_gym_roots=nemo_gym_roots
    )
    failed = has_errors(result.diagnostics) or (strict and bool(result.diagnostics))
    code = EXIT_ERRORS if failed else EXIT_OK
    report(result.diagnostics, fmt, verbose=verbose, to_stderr=False, exit_code=code)
    if fmt == "text":
        n = len(result.files)
        click.echo(
            f"checked {n} file{'s' * (n != 1)}" + ("" if result.diagnostics else ": no problems")
        )
    sys.exit(code)


for _command in (explain_cmd, explain_code_cmd, show_cmd, diff_cmd, schema_cmd):
    main.add_command(_command)

if __name__ == "__main__":
    main()
