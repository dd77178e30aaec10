"""Plan file in, verified plan dict out: refuses anything that is not exactly what gym-compile wrote."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from gym_compile.assets import load_schema
from gym_compile.canonical import FORMAT_VERSION, content_hash, file_sha256
from gym_run.errors import PlanError

_MAX_SCHEMA_ERRORS = 5


@cache
def _validator() -> Draft202012Validator:
    """Built once per process: loading plans in tests and serve should not rebuild it."""
    return Draft202012Validator(load_schema("plan.schema.json"))


def load_plan(
    path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Reads and verifies a plan; every refusal says what to do next.

    Refused: not a plan, a newer or older format, a schema error, an edited plan (hash), an input
    file changed since compile. Only warned about (`warn`, default stderr): config files and
    env.yaml changed since compile, since the plan already holds everything they said.
    """
    path = os.fspath(path)
    plan = _read_json(path)
    _check_format(plan, path)
    _check_schema(plan, path)
    _check_hash(plan, path)
    _check_input(plan)
    for message in stale_sources(plan):
        (warn or _stderr)(message)
    return plan


def _stderr(message: str) -> None:
    print(f"gym-run: warning: {message}", file=sys.stderr, flush=True)


def stale_sources(plan: dict[str, Any]) -> list[str]:
    """One line per config file or env.yaml that changed or went away since compile."""
    notes = []
    for source in plan.get("sources") or []:
        role, where = source.get("role"), source.get("path")
        if role not in ("config", "env"):
            continue  # inputs are checked (and refused) by _check_input
        try:
            actual = file_sha256(where)
        except OSError as exc:
            notes.append(
                f"{role} file {where} cannot be read any more ({exc.strerror}); the plan still "
                "holds what it said at compile time"
            )
            continue
        if actual != source.get("sha256"):
            what = (
                "secrets are read from it now; other values are as compiled"
                if role == "env"
                else "this run uses the plan as compiled; recompile to pick up the change"
            )
            notes.append(
                f"{role} file {where} changed since compile (sha256 {str(source.get('sha256'))[:12]}… "
                f"-> {actual[:12]}…): {what}"
            )
    return notes


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise PlanError(f"plan {path} not found (compile one with gym-compile)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "pass the plan.json written by gym-compile"
        ) from None


def _check_format(plan: Any, path: str) -> None:
    """Checked before the schema so a newer plan gets an upgrade hint, not a schema error."""
    if not isinstance(plan, dict):
        raise PlanError(f"{path} is not a gym-compile plan (expected a JSON object)")
    version = plan.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PlanError(
            f"{path} has no integer format_version, so it is not a gym-compile plan; "
            "pass the plan.json written by gym-compile"
        )
    if version > FORMAT_VERSION:
        raise PlanError(
            f"this plan was made by a newer gym-compile (format {version}); upgrade gym-run "
            f"(it reads format {FORMAT_VERSION})"
        )
    if version < FORMAT_VERSION:
        raise PlanError(
            f"{path} is in plan format {version}, older than the format {FORMAT_VERSION} this "
            "gym-run reads; recompile it with gym-compile"
        )


def _check_schema(plan: dict[str, Any], path: str) -> None:
    # best_match descends into anyOf branches, so "job" reports the field that is wrong in it.
    errors = [best_match([e]) for e in _validator().iter_errors(plan)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = [f"  {e.json_path}: {_short(e.message)}" for e in errors[:_MAX_SCHEMA_ERRORS]]
    more = len(errors) - _MAX_SCHEMA_ERRORS
    if more > 0:
        lines.append(f"  ... and {more} more")
    raise PlanError(f"{path} is not a valid gym-compile plan:\n" + "\n".join(lines))


def _short(message: str, limit: int = 160) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _check_hash(plan: dict[str, Any], path: str) -> None:
    """An edit cannot be located (the original is gone); `gym-compile diff` against a fresh plan can."""
    if content_hash(plan) != plan["content_hash"]:
        raise PlanError(f"{path} was edited after compiling; recompile")


def _check_input(plan: dict[str, Any]) -> None:
    """The plan is only as good as the data it was checked against."""
    job = plan.get("job")
    if not job:
        return
    source = job["input"]
    try:
        actual = file_sha256(source["path"])
    except OSError as exc:
        raise PlanError(
            f"input {source['path']} cannot be read ({exc.strerror}); recompile"
        ) from None
    if actual != source["sha256"]:
        raise PlanError(
            f"input {source['path']} changed since compile "
            f"(sha256 {source['sha256'][:12]}… -> {actual[:12]}…); recompile"
        )
