"""The flags `gym-run run` and `gym-run reverify` share, as one option table: resume/overwrite,
budget, cache, and the evaluation and progress flags, handed to the command as one `job: JobArgs`
argument that becomes gym_run.collect.options.JobOptions (what the Python API builds too).
Each command words the help for its own output; the flags, types and defaults are the same."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from gym_run.cli.evalopts import eval_options
from gym_run.cli.finish import progress_options
from gym_run.collect.options import FLAGS, JobOptions
from gym_run.errors import EXIT_INTERRUPTED
from gym_run.metrics.gate import Gate

T = TypeVar("T")


@dataclass(frozen=True)
class JobHelp:
    """The help of each shared flag, in the words of the command's output."""

    resume: str
    retry_failed: str
    overwrite: str
    max_usd: str
    max_tokens: str
    no_cache: str


@dataclass(frozen=True)
class JobArgs:
    options: JobOptions
    quiet: bool
    progress_interval: float

    @property
    def gates(self) -> list[Gate]:
        return self.options.gates()  # already parsed by --fail-under's callback

    @property
    def show_progress(self) -> bool | None:
        return False if self.quiet else None  # None: redrawn on a terminal, lines otherwise

    def check(self, kept: str) -> None:
        """A usage error (exit 2) when --resume, --overwrite and --retry-failed conflict."""
        try:
            self.options.existing(kept, FLAGS)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

    def resume_flags(self) -> str:
        return " --resume" + (" --retry-failed" if self.options.retry_failed else "")


_NAMES = (
    "resume",
    "retry_failed",
    "overwrite",
    "max_usd",
    "max_tokens",
    "no_cache",
    "quiet",
    "progress_interval",
    "pass_threshold",
    "gates",
    "junit",
)


def job_options(texts: JobHelp) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the shared flags to a command and hands them over as one `job: JobArgs` argument."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in _NAMES}
            options = JobOptions(
                resume=given["resume"],
                overwrite=given["overwrite"],
                retry_failed=given["retry_failed"],
                use_cache=not given["no_cache"],
                max_usd=given["max_usd"],
                max_tokens=given["max_tokens"],
                pass_threshold=given["pass_threshold"],
                fail_under=tuple(given["gates"]),
                junit_path=given["junit"],
            )
            job = JobArgs(options, given["quiet"], given["progress_interval"])
            return command(*args, job=job, **kwargs)

        table = [
            click.option("--resume", is_flag=True, help=texts.resume),
            click.option("--retry-failed", is_flag=True, help=texts.retry_failed),
            click.option("--overwrite", is_flag=True, help=texts.overwrite),
            click.option(
                "--max-usd",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                help=texts.max_usd,
            ),
            click.option(
                "--max-tokens", type=click.IntRange(min=1), default=None, help=texts.max_tokens
            ),
            click.option("--no-cache", is_flag=True, help=texts.no_cache),
        ]
        decorated: Callable[..., Any] = progress_options(wrapper)
        decorated = eval_options(decorated)
        for option in reversed(table):
            decorated = option(decorated)
        return decorated

    return decorate


def interruptible(job: Coroutine[Any, Any, T], hint: str) -> T:
    """Runs a collection; Ctrl-C before it took over the signal (while servers start) exits 130
    with the command that resumes."""
    try:
        return asyncio.run(job)
    except KeyboardInterrupt:
        click.echo(f"gym-run: interrupted; resume with: {hint}", err=True)
        sys.exit(EXIT_INTERRUPTED)
