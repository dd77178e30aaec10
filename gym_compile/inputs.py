"""inputs: an input JSONL file -> its hash, row count and every invalid row, in one streaming pass.

One streaming pass per file: every byte hashed, every row parsed (gym_compile/jsonsafe.py) and
checked against the input-row schema, each valid row handed to the cost estimate. The file is
opened as files.py opens every input (a regular file, lines bounded); rows are located
(file:line:col) but never quoted, since the path may not name a dataset at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match

from gym_compile import jsonsafe
from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, Location, json_path
from gym_compile.files import JSONL_BYTES, LINE_BYTES, Line, iter_lines, open_input
from gym_compile.jsonsafe import BadJSON
from gym_compile.sourcemap import display_path

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
    Rows are located but never quoted: the file may not be a dataset at all. row_schema=False:
    rows only need to be JSON objects (a NeMo Gym server whose rows have their own shape, e.g. a
    task id instead of responses_create_params)."""
    shown = display_path(path)
    validator = catalog.validator("input_row.schema.json")
    quick = catalog.quick_check("input_row.schema.json") if row_schema else _is_object
    digest = hashlib.sha256()
    rows = errors = 0
    problems: list[Diagnostic] = []
    try:
        with open_input(path, JSONL_BYTES, "a dataset") as fh:
            for line in iter_lines(fh, LINE_BYTES, digest):
                if line.data is not None and not line.data.strip():
                    continue
                rows += 1
                row, problem = _row_problem(quick, validator, line, shown)
                if problem is None and on_row is not None:
                    on_row(row)
                elif problem is not None:
                    errors += 1
                    if errors <= MAX_ROW_ERRORS:
                        problems.append(problem)
    except OSError as exc:
        return None, [
            Diagnostic(
                "GYM050",
                f"cannot read input file {shown}: {exc.strerror or exc}",
                Location(shown),
            )
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
    quick: Any, validator: Any, line: Line, shown: str
) -> tuple[Any, Diagnostic | None]:
    """(the parsed row, None) or (whatever parsed, what is wrong with it)."""
    lineno, raw = line.lineno, line.data
    if raw is None:
        return None, Diagnostic(
            "GYM051",
            f"line {lineno} is {line.size} bytes, over the {LINE_BYTES}-byte limit for one row",
            Location(shown, lineno, 1),
            hints=("each line must be one JSON object (JSON Lines)",),
        )
    try:
        row = jsonsafe.loads(raw)
    except BadJSON as exc:
        return None, Diagnostic(
            "GYM051",
            f"line {lineno} is not JSON: {exc.reason}",
            Location(shown, lineno, max(exc.colno, 1)),
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
        f"row {lineno} is invalid: {_row_message(error)}",
        loc,
        json_path(error.absolute_path),
        hints=hints,
    )


_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


_BOUNDS = {
    "minimum": "less than the minimum {}",
    "maximum": "greater than the maximum {}",
    "minLength": "shorter than {} characters",
    "maxLength": "longer than {} characters",
    "minItems": "fewer than {} items",
    "maxItems": "more than {} items",
}


def _row_message(error: Any) -> str:
    """What is wrong with a row, without quoting its values (the file may hold anything)."""
    if error.validator in ("required", "additionalProperties"):
        return str(error.message)[:200]  # names keys, not values
    if error.validator == "type":
        got = _JSON_TYPES.get(type(error.instance), "a number")
        return f"expected {error.validator_value}, got {got}"
    if error.validator == "enum":
        return f"not one of {', '.join(map(str, error.validator_value))[:160]}"
    bound = _BOUNDS.get(error.validator)
    if bound is not None:
        return bound.format(error.validator_value)
    return f"does not match the row schema ({error.validator})"
