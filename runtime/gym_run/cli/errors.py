"""GymRunError -> what click shows: one line on stderr and the error's own exit code (shared by every
gym-run subcommand module)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gym_run.errors import GymRunError

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A GymRunError as click sees it: one line on stderr, the error's own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"gym-run: error: {self.message}", err=True)


def user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GymRunError as exc:
            raise UserError(exc.message, exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
