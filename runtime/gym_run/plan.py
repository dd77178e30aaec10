"""Plan file in, verified Plan out: refuses anything that is not exactly what gym-compile wrote.

The file is read by the compiler's one plan reader (gym_compile.plan_reader, which `gym-compile
show` uses too); the refusals, and their words, are gym-run's."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema.exceptions import best_match

from gym_compile.canonical import FORMAT_VERSION, file_sha256
from gym_compile.plan_reader import (
    PlanFile,
    PlanMissing,
    PlanNotJSON,
    PlanNotObject,
    PlanUnreadable,
    read_plan,
)
from gym_compile.plan_types import Job, Plan
from gym_run.errors import PlanError

_MAX_SCHEMA_ERRORS = 5


def load_plan(path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None) -> Plan:
    """Reads and verifies a plan; every refusal says what to do next.

    Refused: not a plan, a newer or older format, a schema error, an edited plan (hash), an input
    file changed since compile. Only warned about (`warn`, default stderr): config files and
    env.yaml changed since compile, since the plan already holds everything they said.
    """
    path = os.fspath(path)
    found = _read(path)
    _check_format(found.document, path)
    _check_schema(found, path)
    _check_hash(found, path)
    plan = found.plan
    _check_input(plan)
    for message in stale_sources(plan):
        (warn or _stderr)(message)
    return plan


def job_of(plan: Plan) -> Job:
    """The plan's collection job; a plan that describes servers only has none to run."""
    job = plan["job"]
    if not job:
        raise PlanError(
            "this plan has no collection job: it describes servers only (serve them with "
            "`gym-run serve PLAN`); to collect rollouts compile with +agent_name=NAME "
            "(and +input_jsonl_fpath=..., else the agent's example dataset)"
        )
    return job


def _stderr(message: str) -> None:
    print(f"gym-run: warning: {message}", file=sys.stderr, flush=True)


def stale_sources(plan: Plan) -> list[str]:
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


def _read(path: str) -> PlanFile:
    try:
        return read_plan(path)
    except PlanMissing:
        raise PlanError(f"plan {path} not found (compile one with gym-compile)") from None
    except PlanUnreadable as exc:
        raise PlanError(f"cannot read plan {path}: {exc.reason}") from None
    except PlanNotJSON as exc:
        bad = exc.cause
        where = f" (line {bad.lineno}, column {bad.colno}: {bad.reason})" if bad.lineno else ""
        raise PlanError(
            f"{path} is not JSON{where or f' ({bad.reason})'}; pass the plan.json written by gym-compile"
        ) from None
    except PlanNotObject:
        raise PlanError(f"{path} is not a gym-compile plan (expected a JSON object)") from None


def _check_format(plan: Mapping[str, Any], path: str) -> None:
    """Checked before the schema so a newer plan gets an upgrade hint, not a schema error."""
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


def _check_schema(found: PlanFile, path: str) -> None:
    # best_match descends into anyOf branches, so "job" reports the field that is wrong in it.
    errors = [best_match([e]) for e in found.schema_errors]
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


def _check_hash(found: PlanFile, path: str) -> None:
    """An edit cannot be located (the original is gone); `gym-compile diff` against a fresh plan can."""
    if not found.hash_ok:
        raise PlanError(f"{path} was edited after compiling; recompile")


def _check_input(plan: Plan) -> None:
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
