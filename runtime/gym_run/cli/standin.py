"""`gym-run stand-in`: argument parsing only; gym_run/standin/ does the work.

Fault flags left out keep the stand-in schema's defaults (Faults reads them), so the defaults are
stated once, in schemas/servers/responses_api_models/stand_in_model.schema.json.
"""

from __future__ import annotations

from typing import Any

import click

from gym_run.cli.errors import UserError

_FRACTION = click.FloatRange(0, 1)


@click.command("stand-in")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--latency-ms", default=0.0, show_default=True, type=float, help="Added delay per response."
)
@click.option("--model", default="stand-in-1", show_default=True)
@click.option("--api-key", default=None, help="Answer 401 unless this Bearer key is sent.")
@click.option(
    "--known-model", "known_models", multiple=True, help="Answer 404 for other models (repeatable)."
)
@click.option(
    "--rate-limit", type=_FRACTION, help="Fraction of requests answered 429 (with Retry-After)."
)
@click.option("--server-error", type=_FRACTION, help="Fraction answered 500/503.")
@click.option("--drop", type=_FRACTION, help="Fraction whose connection is closed unanswered.")
@click.option("--malformed", type=_FRACTION, help="Fraction answered 200 with a truncated body.")
@click.option("--slow", type=_FRACTION, help="Fraction answered after --slow-ms.")
@click.option("--slow-ms", type=click.FloatRange(min=0), help="Delay of a slow answer [1000].")
@click.option(
    "--retry-after-ms",
    type=click.FloatRange(min=0),
    help="Retry-After sent with injected 429s [20].",
)
@click.option("--no-retry-after", is_flag=True, help="Send injected 429s without any Retry-After.")
@click.option("--empty-output", type=_FRACTION, help="Fraction answered 200 with `output: []`.")
@click.option(
    "--always-call",
    is_flag=True,
    default=None,
    help="Answer a function call whenever tools are offered (a model that never stops).",
)
@click.option("--drip", type=_FRACTION, help="Fraction whose body is sent at --drip-bytes-per-s.")
@click.option("--drip-bytes-per-s", type=click.FloatRange(min=0, min_open=True), help="[1]")
@click.option("--pad-bytes", type=click.IntRange(min=0), help="Text added to every answer message.")
@click.option("--seed", type=int, help="Same seed, same faults [0].")
@click.option(
    "--store-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Responses kept for previous_response_id and GET /v1/responses/{id} (oldest go first).",
)
def stand_in_command(
    host: str,
    port: int,
    latency_ms: float,
    model: str,
    api_key: str | None,
    known_models: tuple[str, ...],
    no_retry_after: bool,
    store_size: int,
    **fault_flags: Any,
) -> None:
    """Run the offline, deterministic Responses API stand-in (optionally with injected faults):
    structured outputs, previous_response_id, stream=True, retrieve and delete."""
    from gym_run.standin.server import Faults, run_standalone

    given = {name: value for name, value in fault_flags.items() if value is not None}
    if no_retry_after:
        if "retry_after_ms" in given:
            raise click.UsageError("--retry-after-ms and --no-retry-after: pick one")
        given["retry_after_ms"] = None
    try:
        faults = Faults(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        run_standalone(
            host,
            port,
            model=model,
            latency_ms=latency_ms,
            faults=faults,
            api_key=api_key,
            known_models=list(known_models) or None,
            store_size=store_size,
        )
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
    except KeyboardInterrupt:
        pass
