"""A final set of records (task order) in, in one pass: the aggregate block, the per-task file
(`<stem>.tasks.jsonl` when tasks have repeats) and, when asked, JUnit XML.

gym-run's run and reverify call this after the collection, reading the final set back from the
rollouts file; report reads the same. One pass, memory flat: every consumer streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from gym_compile.atomic import atomic_file
from gym_run.metrics.aggregate import Aggregator
from gym_run.report.junit import JUnitWriter


def tasks_path_for(rollouts: str) -> str:
    """`results/rollouts.jsonl` -> `results/rollouts.tasks.jsonl` (beside the metrics file)."""
    stem = rollouts[: -len(".jsonl")] if rollouts.endswith(".jsonl") else rollouts
    return f"{stem}.tasks.jsonl"


@dataclass
class Outputs:
    """Where the pass writes besides the block: per-task rows (None: not written) and JUnit."""

    tasks_path: str | None = None
    junit_path: str | None = None
    suite: str = "gym-run"


def summarize_final_set(
    records: Iterable[dict[str, Any]],
    *,
    num_repeats: int | None = None,
    planned: int | None = None,
    pass_threshold: float = 1.0,
    outputs: Outputs | None = None,
) -> dict[str, Any]:
    """The aggregate block; `tasks_file` / `junit_file` in it say what was written."""
    outputs = outputs or Outputs()
    junit = (
        JUnitWriter(outputs.junit_path, suite=outputs.suite, pass_threshold=pass_threshold)
        if outputs.junit_path
        else None
    )
    try:
        if outputs.tasks_path and (num_repeats or 0) > 1:
            with atomic_file(outputs.tasks_path) as fh:
                doc = _pass(records, fh, junit, num_repeats, planned, pass_threshold)
            doc["tasks"]["file"] = outputs.tasks_path
        else:
            doc = _pass(records, None, junit, num_repeats, planned, pass_threshold)
    except BaseException:
        if junit is not None:
            junit.abort()
        raise
    if junit is not None:
        junit.close()
        doc["junit_file"] = outputs.junit_path
    return doc


def _pass(
    records: Iterable[dict[str, Any]],
    tasks_out: IO[str] | None,
    junit: JUnitWriter | None,
    num_repeats: int | None,
    planned: int | None,
    pass_threshold: float,
) -> dict[str, Any]:
    def write_task(row: dict[str, Any]) -> None:
        assert tasks_out is not None
        tasks_out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")

    agg = Aggregator(
        pass_threshold=pass_threshold,
        num_repeats=num_repeats,
        planned=planned,
        ordered=True,
        on_task=write_task if tasks_out is not None else None,
    )
    for record in records:
        agg.add(record)
        if junit is not None:
            junit.add(record)
    return agg.document()
