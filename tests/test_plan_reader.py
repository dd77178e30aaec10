"""gym_compile.plan_reader: the one plan reader behind `gym-compile show`/`diff` (lenient) and
gym-run's load_plan (strict): typed errors for files that hold no plan, schema problems and the
hash for ones that do."""

from __future__ import annotations

import json

import pytest

from gym_compile.plan_reader import (
    PlanMissing,
    PlanNotJSON,
    PlanNotObject,
    PlanUnreadable,
    read_plan,
)
from tests.runtime_helpers import weather_plan, write_plan


def test_a_sealed_plan_reads_clean(tmp_path):
    plan = weather_plan(tmp_path)
    found = read_plan(write_plan(tmp_path / "plan.json", plan))
    assert found.document == plan and found.plan is found.document
    assert found.schema_errors == [] and found.hash_ok


def test_an_edited_plan_keeps_its_document_and_says_what_is_wrong(tmp_path):
    plan = weather_plan(tmp_path)
    plan["job"]["concurrency"] = 0
    found = read_plan(write_plan(tmp_path / "plan.json", plan))
    # job is anyOf(null, object): the error sits at $.job (gym-run's best_match descends into it)
    assert [list(e.absolute_path) for e in found.schema_errors] == [["job"]]
    assert not found.hash_ok  # written unsealed: the hash is the old contents'


def test_files_that_hold_no_plan_raise_typed_errors(tmp_path):
    with pytest.raises(PlanMissing) as missing:
        read_plan(tmp_path / "nope.json")
    assert isinstance(missing.value, PlanUnreadable) and missing.value.reason
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(PlanUnreadable) as unreadable:
        read_plan(tmp_path / "dir.json")
    assert not isinstance(unreadable.value, PlanMissing)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanNotJSON) as bad:
        read_plan(tmp_path / "bad.json")
    assert (bad.value.cause.lineno, bad.value.cause.colno) == (1, 2)
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(PlanNotObject) as listed:
        read_plan(tmp_path / "list.json")
    assert listed.value.path == str(tmp_path / "list.json")
