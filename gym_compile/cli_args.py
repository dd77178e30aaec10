"""What gym-compile's commands share on the command line: exit codes, the --env, -v and
--nemo-gym-root options (each command words their help), splitting CONFIG files from OVERRIDES,
and the one line for an output that cannot be written."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from gym_compile.overrides import is_override

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 50

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def env_option(help: str) -> Decorator:
    return click.option(
        "--env", "env_path", type=click.Path(path_type=Path), default=None, help=help
    )


def nemo_gym_root_option(help: str) -> Decorator:
    return click.option(
        "--nemo-gym-root",
        "nemo_gym_roots",
        multiple=True,
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help=help,
    )


verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help=f"Show every diagnostic, not only the first {DEFAULT_LIMIT}.",
)


def split_args(args: Iterable[str]) -> tuple[list[Path], list[str]]:
    """CONFIG files and Hydra-style OVERRIDES, given in any order."""
    args = list(args)
    return [Path(a) for a in args if not is_override(a)], [a for a in args if is_override(a)]


def cannot_write(what: str, exc: OSError) -> NoReturn:
    """An output that could not be written: one line, exit 2."""
    click.echo(f"gym-compile: cannot write {what}: {exc.strerror or exc}", err=True)
    sys.exit(EXIT_USAGE)
