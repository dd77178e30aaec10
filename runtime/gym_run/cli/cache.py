"""`gym-run cache stats|clear PLAN|FILE`: argument parsing only; runtime/gym_run/endpoint/cache.py does the work."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

import click

from gym_compile.files import JSONL_BYTES, open_input
from gym_run.cli.errors import user_errors
from gym_run.endpoint.cache import ResponseCache
from gym_run.errors import GymRunError
from gym_run.plan import load_plan

_SQLITE_MAGIC = b"SQLite format 3\x00"


def cache_path(target: str) -> str:
    """A cache file as given, or the response cache a plan names (which may not exist yet)."""
    try:
        with open_input(target, JSONL_BYTES) as fh:
            if fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                return target
    except OSError as exc:
        raise GymRunError(f"cannot read {target}: {exc.strerror or exc}") from None
    job = load_plan(target).get("job")
    spec = job.get("response_cache") if job else None
    if not spec:
        raise GymRunError(
            f"{target} has no response cache: add `response_cache: {{}}` to the config and "
            "recompile"
        )
    return str(spec["path"])


@click.group("cache")
def cache_group() -> None:
    """The response cache of a plan (or a cache file): how big it is, and emptying it."""


def _cache_command(
    name: str, when_missing: str
) -> Callable[[Callable[[ResponseCache], str]], click.Command]:
    """`gym-run cache NAME PLAN|FILE`: the decorated function does the work on the open cache and
    returns what to say about it (after the path); with no cache file yet, `when_missing` is said."""

    def decorate(work: Callable[[ResponseCache], str]) -> click.Command:
        @cache_group.command(name, help=inspect.getdoc(work))
        @click.argument("target", metavar="PLAN|FILE", type=click.Path(exists=True, dir_okay=False))
        @user_errors
        def command(target: str) -> None:
            path = cache_path(target)
            if not os.path.exists(path):
                click.echo(f"{path}: no cache yet{when_missing}")
                return
            cache = ResponseCache(path)
            try:
                said = work(cache)
            finally:
                cache.close()
            click.echo(f"{path}: {said}")

        return command

    return decorate


@_cache_command("stats", " (it is made by the first run)")
def stats(cache: ResponseCache) -> str:
    """Entries (per model) and size on disk."""
    found = cache.stats()
    models = ", ".join(f"{m} {n}" for m, n in found["by_model"].items()) or "none"
    return f"{found['entries']} responses ({models}), {found['bytes']:,} bytes"


@_cache_command("clear", ", nothing to clear")
def clear(cache: ResponseCache) -> str:
    """Delete every cached response (the next run pays for its model calls again)."""
    return f"removed {cache.clear()} responses"
