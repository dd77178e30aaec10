"""gym-compile's commands for understanding configs and plans: explain, explain-code, show, diff, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from jinja2 import TemplateError

from gym_compile import schema_catalog as catalog
from gym_compile.cli_args import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    cannot_write,
    env_option,
    nemo_gym_root_option,
    split_args,
)
from gym_compile.diagnostics import codes, did_you_mean, has_errors, json_path
from gym_compile.diagnostics.text import render_text
from gym_compile.inspect import editor_schema
from gym_compile.inspect.diff import diff_plans
from gym_compile.inspect.explain import explain_key, parse_key
from gym_compile.inspect.show import load_plan, render_plan
from gym_compile.nemo.lookup import derive_all
from gym_compile.nemo.roots import find_roots_explained
from gym_compile.sourcemap import display_path


@click.command("explain", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("args", nargs=-1, required=True)
@env_option("env.yaml (default: ./env.yaml if present).")
def explain_cmd(key: str, args: tuple[str, ...], env_path: Path | None) -> None:
    """Where KEY's final value comes from: KEY CONFIG... [OVERRIDES]. Secrets show as ***."""
    configs, overrides = split_args(args)
    result = explain_key(key, configs, overrides, env=env_path)
    click.echo("\n".join(result.lines))
    prefix = json_path(parse_key(key))
    mine = [
        d
        for d in result.diagnostics
        if d.path == prefix or d.path.startswith(prefix + ".") or d.path.startswith(prefix + "[")
    ]
    if not result.found and has_errors(result.diagnostics):
        click.echo(render_text(result.diagnostics), err=True)  # a file that did not load may be why
    elif mine:
        click.echo("problems with this key:\n" + render_text(mine), err=True)
    elif has_errors(result.diagnostics):
        n = sum(d.severity == "error" for d in result.diagnostics)
        click.echo(
            f"note: the config has {n} other error(s); run gym-compile on it to see them", err=True
        )
    sys.exit(EXIT_OK if result.found else EXIT_ERRORS)


@click.command("explain-code")
@click.argument("code", required=False)
@click.option("--markdown", is_flag=True, help="Print the whole catalogue as docs/diagnostics.md.")
def explain_code_cmd(code: str | None, markdown: bool) -> None:
    """What a diagnostic code (e.g. GYM020) means and how to fix it; without CODE, list them all."""
    if markdown:
        click.echo(codes.markdown(), nl=False)
        return
    if code is None:
        for c in codes.CATALOGUE.values():
            click.echo(f"{c.code}  {c.severity:<7}  {c.title}")
        return
    entry = codes.lookup(code)
    if entry is None:
        hints = did_you_mean(code.upper(), codes.CATALOGUE)
        raise click.UsageError(
            f"unknown diagnostic code '{code}'"
            + (f"; {hints[0]}" if hints else "")
            + " (gym-compile explain-code lists them)"
        )
    click.echo(codes.explain(entry), nl=False)


@click.command("show")
@click.argument("plan", type=click.Path(path_type=Path))
def show_cmd(plan: Path) -> None:
    """Render PLAN (a plan.json) for people: servers, job, secrets (names only), sources."""
    loaded = load_plan(plan)
    if loaded.plan is None:
        click.echo("\n".join(f"error: {p}" for p in loaded.problems), err=True)
        sys.exit(EXIT_ERRORS)
    try:
        click.echo(render_plan(loaded), nl=False)
    except TemplateError as exc:  # a plan that breaks its schema may lack what the template shows
        click.echo(
            "\n".join(f"error: {p}" for p in loaded.problems) + f"\nerror: cannot show it: {exc}",
            err=True,
        )
        sys.exit(EXIT_ERRORS)
    sys.exit(EXIT_ERRORS if loaded.problems else EXIT_OK)


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
def diff_cmd(old: Path, new: Path) -> None:
    """What changed from plan OLD to plan NEW. Exit 0: same run; 1: different; 2: not plans."""
    a, b = load_plan(old), load_plan(new)
    if a.plan is None or b.plan is None:
        click.echo("\n".join(f"error: {p}" for p in a.problems + b.problems), err=True)
        sys.exit(EXIT_USAGE)
    lines = diff_plans(a.plan, b.plan)
    if not lines:
        click.echo(f"same plan ({a.plan.get('content_hash')})")
        sys.exit(EXIT_OK)
    click.echo(f"--- {old}\n+++ {new}")
    click.echo("\n".join(lines))
    sys.exit(EXIT_ERRORS)


@click.command("schema")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Directory to write {editor_schema.FILE_NAME} to (default: print it).",
)
@nemo_gym_root_option(
    "A NeMo Gym tree whose servers' schemas (derived from their source) are included; "
    "repeatable. Also: NEMO_GYM_EXTRA_ROOTS, ., an installed nemo-gym."
)
def schema_cmd(out_dir: Path | None, nemo_gym_roots: tuple[Path, ...]) -> None:
    """The JSON Schema of a whole config file, for editors (yaml-language-server), with every
    implementation gym-compile ships or finds the NeMo Gym source of."""
    roots = find_roots_explained([], nemo_gym_roots)
    found = derive_all(roots, skip=catalog.implementations())
    derived = {k: d.schema for k, d in found.items() if d.schema is not None}
    if out_dir is None:
        click.echo(json.dumps(editor_schema.build(derived), indent=2))
        return
    try:
        target = display_path(editor_schema.write(out_dir, derived))
    except OSError as exc:
        cannot_write(f"to {out_dir}", exc)
    if derived:
        click.echo(f"{len(derived)} implementations derived from NeMo Gym sources", err=True)
    click.echo(
        f"wrote {target}\nfirst line of a config file to use it:\n"
        f"# yaml-language-server: $schema={target}",
        err=True,
    )
