"""The file a user gave `gym-run report` in, the rollouts file to report on out (or one clear line).

People pass what gym-run printed last, and that is often the metrics file: `x.metrics.json` is
answered with the report of `x.jsonl` beside it, and a file that holds no rollout records is an
error naming what it looks like, never an empty report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gym_compile import jsonsafe
from gym_compile.files import JSONL_BYTES, open_input, read_bytes
from gym_compile.jsonsafe import BadJSON
from gym_run.errors import EXIT_USAGE, GymRunError

METRICS_SUFFIX = ".metrics.json"
_SNIFF_BYTES = 64 * 1024
_MAX_METRICS_BYTES = 16 * 1024 * 1024


class NotRollouts(GymRunError):
    """The file is not a rollouts file (and no rollouts file could be found from it)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class ReportInput:
    rollouts: str
    metrics: str | None  # the metrics file the user gave instead of the rollouts
    note: str | None  # says which file was used when it is not the one given


def _metrics_document(path: str) -> dict[str, Any] | None:
    """The parsed file when it is one JSON object shaped like gym-run's metrics document."""
    with open_input(path, JSONL_BYTES, "a rollouts file") as fh:  # a FIFO or /dev/zero: refused
        head = fh.read(_SNIFF_BYTES)
    first = head.split(b"\n", 1)[0].strip()
    try:  # a rollouts file's first line is a whole JSON object
        if isinstance(jsonsafe.loads(first), dict):
            return None
    except BadJSON:
        pass
    if not head.lstrip().startswith(b"{") or os.path.getsize(path) > _MAX_METRICS_BYTES:
        return None
    try:
        doc = jsonsafe.loads(read_bytes(path, _MAX_METRICS_BYTES, "a metrics file"))
    except (BadJSON, OSError):
        return None
    gym = doc.get("_gym") if isinstance(doc, dict) else None
    return doc if isinstance(gym, dict) and "counts" in gym else None


def _rollouts_beside(metrics: str) -> list[str]:
    """gym-run's naming (gym_compile.canonical.sibling_path) run backwards."""
    if not metrics.endswith(METRICS_SUFFIX):
        return []
    stem = metrics[: -len(METRICS_SUFFIX)]
    return [stem + ".jsonl", stem]


def resolve(path: str) -> ReportInput:
    """The rollouts file for `path`; a metrics file leads to its rollouts file beside it."""
    if _metrics_document(path) is None:
        return ReportInput(path, None, None)
    for candidate in _rollouts_beside(path):
        if os.path.isfile(candidate):
            return ReportInput(
                candidate, path, f"{path} is a metrics file; reporting on {candidate}"
            )
    beside = _rollouts_beside(path)
    where = f" (its rollouts would be {beside[0]}, which does not exist)" if beside else ""
    raise NotRollouts(
        f"{path} is a metrics file, not rollouts{where}; give the rollouts file gym-run wrote "
        "(output_jsonl_fpath), e.g. gym-run report results/rollouts.jsonl"
    )


def no_records(path: str, bad_lines: int) -> NotRollouts:
    """The error for a file in which not one line is a rollout record of gym-run."""
    if bad_lines == 0:
        return NotRollouts(f"{path} is empty: there are no rollouts to report")
    return NotRollouts(
        f"{path} holds no rollout records ({bad_lines:,} line(s), none a JSON object with a "
        "gym-run id in _gym.id): give the rollouts file gym-run wrote (output_jsonl_fpath)"
    )
