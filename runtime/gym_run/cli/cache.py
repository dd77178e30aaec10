"""`gym-run cache stats|clear PLAN|FILE`: argument parsing only; runtime/gym_run/endpoint/cache.py does the work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def _opened(target: str, when_missing: str) -> Iterator[tuple[str, ResponseCache | None]]:
    """The cache file of a plan or the file itself; None (and a message) when there is none yet."""
    path = cache_path(target)
    if not os.path.exists(path):
        click.echo(f"{path}: no cache yet{when_missing}")
        yield path, None
        return
    cache = ResponseCache(path)
    try:
        yield path, cache
    finally:
        cache.close()


@click.group("cache")
def cache_group() -> None:
    """The response cache of a plan (or a cache file): how big it is, and emptying it."""


@cache_group.command("stats")
@click.argument("target", metavar="PLAN|FILE", type=click.Path(exists=True, dir_okay=False))
@user_errors
def stats_command(target: str) -> None:
    """Entries (per model) and size on disk."""
    with _opened(target, " (it is made by the first run)") as (path, cache):
        if cache is None:
            return
        stats = cache.stats()
    models = ", ".join(f"{m} {n}" for m, n in stats["by_model"].items()) or "none"
    click.echo(f"{path}: {stats['entries']} responses ({models}), {stats['bytes']:,} bytes")


@cache_group.command("clear")
@click.argument("target", metavar="PLAN|FILE", type=click.Path(exists=True, dir_okay=False))
@user_errors
def clear_command(target: str) -> None:
    """Delete every cached response (the next run pays for its model calls again)."""
    with _opened(target, ", nothing to clear") as (path, cache):
        if cache is None:
            return
        removed = cache.clear()
    click.echo(f"{path}: removed {removed} responses")
