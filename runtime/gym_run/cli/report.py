"""`gym-run report ROLLOUTS -o report.html`: argument parsing only; runtime/gym_run/report/render.py does the work."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from gym_compile import jsonsafe
from gym_compile.canonical import sibling_path
from gym_compile.diagnostics import CompileError
from gym_compile.files import CONFIG_BYTES, read_bytes
from gym_compile.jsonsafe import BadJSON
from gym_compile.loader import load_yaml
from gym_run.cli.compare import run_compare
from gym_run.cli.errors import user_errors
from gym_run.cli.evalopts import check_gates, eval_options
from gym_run.defaults import pass_threshold as threshold_for
from gym_run.endpoint.pricing import PriceTable
from gym_run.errors import EXIT_BELOW_THRESHOLD
from gym_run.metrics.gate import Gate
from gym_run.report.data import collect_report
from gym_run.report.inputs import no_records, resolve
from gym_run.report.junit import JUnitWriter
from gym_run.report.render import render_html, render_text


def default_metrics_path(rollouts: str) -> str:
    """gym-run writes <name>.metrics.json beside <name>.jsonl."""
    return sibling_path(rollouts, ".metrics.json")


def _load(path: str, what: str) -> Any:
    """YAML goes through the compiler's loader: the same limits and located errors as configs."""
    if path.endswith((".yaml", ".yml")):
        try:
            return load_yaml(Path(path)).data
        except CompileError as exc:
            first = exc.diagnostics[0]
            raise click.ClickException(
                f"cannot read {what}: {first.location}: {first.message}"
            ) from None
    try:
        return jsonsafe.loads(read_bytes(path, CONFIG_BYTES, what))
    except OSError as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except BadJSON as exc:
        raise click.ClickException(f"cannot read {what} {path}: not JSON ({exc.reason})") from None


def _run_threshold(metrics_doc: Any) -> float:
    """The pass threshold a run's metrics document records (its aggregate block), else the default."""
    gym = metrics_doc.get("_gym") if isinstance(metrics_doc, dict) else None
    aggregate = gym.get("aggregate") if isinstance(gym, dict) else None
    value = aggregate.get("pass_threshold") if isinstance(aggregate, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return threshold_for(None)


@click.command("report")
@click.argument("rollouts", type=click.Path(exists=True, dir_okay=False))
@click.argument("other", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file to write (default: ROLLOUTS with .report.html).",
)
@click.option(
    "--metrics",
    type=click.Path(dir_okay=False),
    help="The run's metrics.json (default: the one gym-run wrote beside ROLLOUTS, if any).",
)
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False),
    help="Re-price every rollout with this table (JSON or YAML, the shape of schemas/prices.json) "
    "laid over the built-in one; default: the cost gym-run recorded.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Rollouts listed in the table; aggregates always cover all of them.",
)
@click.option(
    "--text", "text_only", is_flag=True, help="Print the text summary only; write no HTML."
)
@eval_options
@user_errors
def report_command(
    rollouts: str,
    other: str | None,
    output: str | None,
    metrics: str | None,
    prices: str | None,
    max_rows: int,
    text_only: bool,
    pass_threshold: float | None,
    gates: list[Gate],
    junit: str | None,
) -> None:
    """Summarise a rollouts file: a self-contained HTML report and a text summary.

    With a second file (report A B): the two runs side by side, as `gym-run compare A B`.
    --fail-under judges the file's final set (exit 6), as after a run."""
    if other is not None:
        if gates or junit or metrics or prices:
            raise click.UsageError(
                "report A B compares two runs; --fail-under, --junit, --metrics and --prices "
                "take one rollouts file"
            )
        run_compare(
            rollouts, other, output, text_only, threshold_for(None, pass_threshold), max_rows
        )
        return
    try:
        given = resolve(rollouts)
    except OSError as exc:
        raise click.ClickException(f"{rollouts}: {exc.strerror or exc}") from None
    if given.note:
        click.echo(given.note, err=True)
    rollouts = given.rollouts
    metrics_path = metrics or given.metrics or default_metrics_path(rollouts)
    wanted = metrics or given.metrics
    metrics_doc = _load(metrics_path, "metrics") if wanted or os.path.isfile(metrics_path) else None
    overrides = _load(prices, "price table") if prices else None
    if overrides is not None and not isinstance(overrides, dict):
        raise click.ClickException(f"price table {prices} must be a mapping with a 'models' key")
    try:  # without --prices, the cost gym-run recorded with the plan's prices stands
        table = PriceTable.load(overrides) if overrides is not None else None
    except ValueError as exc:
        raise click.ClickException(f"{prices}: {exc}") from None
    if pass_threshold is None:  # the threshold the run itself used (its plan's)
        pass_threshold = _run_threshold(metrics_doc)
    writer = JUnitWriter(junit, pass_threshold=pass_threshold) if junit else None
    try:
        data = collect_report(
            rollouts,
            prices=table,
            max_rows=0 if text_only else max_rows,
            pass_threshold=pass_threshold,
            on_record=writer.add if writer is not None else None,
        )
        if data.rollouts == 0:
            raise no_records(rollouts, data.bad_lines)
        if writer is not None:
            writer.close()
        out = None
        if not text_only:
            out = output or default_metrics_path(rollouts).replace(".metrics.json", ".report.html")
            render_html(rollouts, out, metrics_doc, prices=table, max_rows=max_rows, data=data)
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or rollouts}: {exc.strerror or exc}") from None
    finally:
        if writer is not None:
            writer.abort()
    click.echo(render_text(rollouts, metrics_doc, prices=table, data=data))
    if out is not None:
        click.echo(f"report: {out}")
    if junit:
        click.echo(f"junit: {junit}")
    if not check_gates(gates, data.aggregate):
        sys.exit(EXIT_BELOW_THRESHOLD)
