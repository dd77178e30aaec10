"""A plan file in, what it holds and what is wrong with it out: the one plan reader.

`gym-compile show` and `diff` read leniently (a plan that breaks its schema is still shown, with
its problems); gym-run (gym_run/plan.py) reads strictly, refusing on top of this what it will not
run. Both read the file the same way (a regular file of at most PLAN_BYTES, bounded JSON nesting)
and check it with the same cached validator; each says what is wrong in its own words, from the
typed errors below rather than from a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from jsonschema.exceptions import ValidationError

from gym_compile import jsonsafe
from gym_compile import schema_catalog as catalog
from gym_compile.canonical import content_hash
from gym_compile.files import PLAN_BYTES, read_bytes
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import Plan


class PlanFileError(Exception):
    """The file holds no plan to look at; the subclass says why."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class PlanUnreadable(PlanFileError):
    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(path)
        self.cause = cause

    @property
    def reason(self) -> str:
        return str(self.cause.strerror or self.cause)


class PlanMissing(PlanUnreadable):
    """There is no such file."""


class PlanNotJSON(PlanFileError):
    def __init__(self, path: str, cause: BadJSON) -> None:
        super().__init__(path)
        self.cause = cause


class PlanNotObject(PlanFileError):
    """JSON, but its top level is not an object."""


@dataclass(frozen=True)
class PlanFile:
    """A JSON object read from a plan file, not yet known to be a valid plan."""

    path: str
    document: dict[str, Any]

    @cached_property
    def schema_errors(self) -> list[ValidationError]:
        """Every violation of schemas/plan.schema.json (computed once, when first asked)."""
        return list(catalog.validator("plan.schema.json").iter_errors(self.document))

    @property
    def hash_ok(self) -> bool:
        return self.document.get("content_hash") == content_hash(self.document)

    @property
    def plan(self) -> Plan:
        """The document as a Plan: the one place a plan read from a file gets its type. Valid
        only when `schema_errors` is empty (the strict reader checks that first)."""
        return cast(Plan, self.document)


def read_plan(path: str | os.PathLike[str]) -> PlanFile:
    """The file parsed; raises PlanMissing, PlanUnreadable, PlanNotJSON or PlanNotObject."""
    shown = os.fspath(path)
    try:
        document = jsonsafe.loads(read_bytes(path, PLAN_BYTES, "a plan"))
    except FileNotFoundError as exc:
        raise PlanMissing(shown, exc) from None
    except OSError as exc:
        raise PlanUnreadable(shown, exc) from None
    except BadJSON as exc:
        raise PlanNotJSON(shown, exc) from None
    if not isinstance(document, dict):
        raise PlanNotObject(shown)
    return PlanFile(shown, document)
