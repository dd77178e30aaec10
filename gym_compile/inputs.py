"""inputs: an input JSONL file -> its hash, row count and every invalid row, in one streaming pass."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, Location, json_path
from gym_compile.loader import display_path

MAX_ROW_ERRORS = 20  # per input file; the rest are counted


@dataclass
class InputFile:
    path: Path
    sha256: str
    rows: int


def read_input(
    path: Path,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    *,
    row_schema: bool = True,
) -> tuple[InputFile | None, list[Diagnostic]]:
    """One streaming pass: hash, count and validate every row (the validator is built once).

    `on_row` sees each valid row as it goes by (the cost estimate), so a big file is read once.
    row_schema=False: rows only need to be JSON objects (a NeMo Gym server whose rows have their
    own shape, e.g. a task id instead of responses_create_params)."""
    shown = display_path(path)
    validator = catalog.validator("input_row.schema.json")
    quick = catalog.quick_check("input_row.schema.json") if row_schema else _is_object
    digest = hashlib.sha256()
    rows = errors = 0
    problems: list[Diagnostic] = []
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                digest.update(raw)
                if not raw.strip():
                    continue
                rows += 1
                row, problem = _row_problem(quick, validator, raw, shown, lineno)
                if problem is None and on_row is not None:
                    on_row(row)
                elif problem is not None:
                    errors += 1
                    if errors <= MAX_ROW_ERRORS:
                        problems.append(problem)
    except OSError as exc:
        return None, [
            Diagnostic("GYM050", f"cannot read input file {shown}: {exc.strerror}", Location(shown))
        ]
    if errors > MAX_ROW_ERRORS:
        problems.append(
            Diagnostic(
                "GYM052",
                f"{errors - MAX_ROW_ERRORS} more invalid rows in {shown} not shown ({errors} in all)",
                Location(shown),
            )
        )
    if rows == 0:
        problems.append(Diagnostic("GYM053", f"input file {shown} has no rows", Location(shown)))
    return InputFile(path, digest.hexdigest(), rows), problems


def _is_object(row: Any) -> bool:
    return isinstance(row, dict)


def _row_problem(
    quick: Any, validator: Any, raw: bytes, shown: str, lineno: int
) -> tuple[Any, Diagnostic | None]:
    """(the parsed row, None) or (whatever parsed, what is wrong with it)."""
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        col = getattr(exc, "colno", 1)
        msg = getattr(exc, "msg", "not UTF-8")
        return None, Diagnostic(
            "GYM051",
            f"line {lineno} is not JSON: {msg}",
            Location(shown, lineno, col),
            hints=("each line must be one JSON object (JSON Lines)",),
        )
    if quick(row):
        return row, None
    error = best_match(validator.iter_errors(row))
    if error is None:
        return row, None
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    keys = [p for p in error.absolute_path if isinstance(p, str)]
    hit = text.find(json.dumps(keys[-1])) if keys else -1
    loc = (
        Location(shown, lineno, hit + 1, span=len(json.dumps(keys[-1])))
        if hit >= 0
        else Location(shown, lineno, 1, span=1)
    )
    hints = (
        ("a row needs responses_create_params.input (a string or a list of messages)",)
        if error.validator == "required"
        else ()
    )
    return row, Diagnostic(
        "GYM052",
        f"row {lineno} is invalid: {error.message[:200]}",
        loc,
        json_path(error.absolute_path),
        hints=hints,
    )
