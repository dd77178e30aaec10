"""Click pieces shared by gym-compile and gym-run."""

from __future__ import annotations

import errno
import os
from typing import Any

import click


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to a default command:
    `gym-compile a.yaml` is `gym-compile compile a.yaml`, `gym-run plan.json` is `gym-run run plan.json`."""

    def __init__(self, *args: object, default: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.default_command = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class GuardedGroup(DefaultGroup):
    """The one boundary where an unexpected exception becomes one short line and `internal_exit`:
    a user mistake is always a diagnostic or a one-line error, so anything else is our bug.

    A closed stdout (`gym-compile explain-code GYM030 | head -1`) is not a bug: it goes on to
    click, which exits quietly with 1 instead of printing a BrokenPipeError."""

    prog = "gym-compile"
    debug_env = "GYM_COMPILE_DEBUG"
    internal_exit = 2
    blame = "not in your config"

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (
            click.exceptions.ClickException,
            click.exceptions.Exit,
            click.exceptions.Abort,
            SystemExit,
            KeyboardInterrupt,
        ):
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click's main() makes the broken pipe quiet
            self._internal(ctx, exc)
        except Exception as exc:
            self._internal(ctx, exc)

    def _internal(self, ctx: click.Context, exc: Exception) -> None:
        if os.environ.get(self.debug_env):
            raise exc
        click.echo(
            f"{self.prog}: internal error: {type(exc).__name__}: {str(exc)[:300]}\n"
            f"  this is a bug in {self.prog}, {self.blame}; set {self.debug_env}=1 for the "
            "traceback and report it",
            err=True,
        )
        ctx.exit(self.internal_exit)
