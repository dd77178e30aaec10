"""Shared fixtures: the official OpenAI Responses API schemas (checked in under tests/openai_responses)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


OPENAI_SCHEMAS = Path(__file__).resolve().parent / "openai_responses"


@cache
def _openai_validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    with open(OPENAI_SCHEMAS / f"{name}.schema.json", encoding="utf-8") as fh:
        return Draft202012Validator(json.load(fh))


@pytest.fixture
def openai_schema():
    """openai_schema("response") -> a validator for that official schema (never skips: in the repo)."""
    return _openai_validator


def assert_valid(validator: Any, payload: Any) -> None:
    """Fails with every schema error listed, not just the first."""
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10])
