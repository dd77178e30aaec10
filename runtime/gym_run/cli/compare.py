"""`gym-run compare A B` (also `gym-run report A B`): argument parsing only; report/compare.py
reads the two runs, report/compare_render.py writes what people read."""

from __future__ import annotations

import click

from gym_run.report.compare import compare_files
from gym_run.report.compare_render import comparison_text, render_compare_html


def default_compare_path(b: str) -> str:
    stem = b[: -len(".jsonl")] if b.endswith(".jsonl") else b
    return f"{stem}.compare.html"


def run_compare(
    a: str, b: str, output: str | None, text_only: bool, pass_threshold: float, max_rows: int
) -> None:
    try:
        comparison = compare_files(a, b, pass_threshold=pass_threshold, max_rows=max_rows)
        click.echo(comparison_text(comparison))
        if not text_only:
            out = output or default_compare_path(b)
            render_compare_html(comparison, out)
            click.echo(f"report: {out}")
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or a}: {exc.strerror or exc}") from None


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file to write (default: B with .compare.html).",
)
@click.option("--text", "text_only", is_flag=True, help="Print the comparison only; no HTML.")
@click.option(
    "--pass-threshold",
    type=float,
    default=1.0,
    show_default=True,
    help="A rollout passes when its reward >= this.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Tasks listed in the HTML table; the totals always cover all of them.",
)
def compare_command(
    a: str, b: str, output: str | None, text_only: bool, pass_threshold: float, max_rows: int
) -> None:
    """Two rollouts files side by side: reward per task and overall with the change (B - A),
    failures, tokens, cost and latency; text, and a self-contained HTML page."""
    run_compare(a, b, output, text_only, pass_threshold, max_rows)
