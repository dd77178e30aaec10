"""Property-based: whatever value a user gives a known key (on the command line or in a config
file) and whatever a dataset holds, gym-compile answers with catalogued diagnostics, never an
internal error; gym-run's row reader answers with rows or one PlanError.

A few hundred examples per run (GYM_FUZZ_EXAMPLES per property, default 100);
`python benchmarks/bench_fuzz.py` runs 10,000 and counts (docs/security.md has the last figures).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings

from tests.fuzz_inputs import (
    config_edits,
    edited,
    internal_error,
    overrides,
    rows,
    runtime_rows_error,
    write_world,
)

FUZZ = settings(
    max_examples=int(os.environ.get("GYM_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(args=overrides)
def test_overrides_on_known_keys_never_raise(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        assert internal_error(root, write_world(root), args) is None


@FUZZ
@given(edits=config_edits)
def test_config_values_never_raise(edits) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_world(root)
        config.write_text(yaml.safe_dump(edited(edits), sort_keys=False), encoding="utf-8")
        assert internal_error(root, config, []) is None


@FUZZ
@given(lines=rows)
def test_dataset_rows_never_raise(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_world(root, lines)
        assert internal_error(root, config, ["+input_jsonl_fpath=rows.jsonl"]) is None
        assert runtime_rows_error(root) is None


def test_the_cases_the_issue_lists_are_diagnostics(tmp_path: Path) -> None:
    """The values issue 13 found internal errors with, each a located diagnostic now."""
    config = write_world(tmp_path)
    for args in (
        ["+num_repeats=two"],
        ["+limit=1e3"],
        ["+budget.max_usd=abc"],
        ["+output_jsonl_fpath=null"],
        ["+num_samples_in_parallel=1e9"],
    ):
        assert internal_error(tmp_path, config, args) is None, args
    config.write_text(config.read_text() + "num_repeats: '5'\n")
    config.write_text(config.read_text().replace("limit: 2", "limit: '5'"))
    assert internal_error(tmp_path, config, []) is None
