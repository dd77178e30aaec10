"""Shared fixtures: the official OpenAI Responses API schemas from ../shared (skip when absent)."""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

# The plan key (gym_compile/signing.py) of the test session: never the user's own ~/.config.
# Set at import so in-process compiles and every subprocess gym-compile / gym-run share it.
os.environ.setdefault("GYM_TEST_CONFIG_HOME", tempfile.mkdtemp(prefix="gym-test-config-"))
os.environ["XDG_CONFIG_HOME"] = os.environ["GYM_TEST_CONFIG_HOME"]
os.environ.pop("GYM_PLAN_KEY", None)
EXAMPLES = REPO / "examples"


def shared_dir() -> Path:
    """CI clones the repo with shared/ beside it; GYM_SHARED_DIR overrides."""
    return Path(os.environ.get("GYM_SHARED_DIR", REPO.parent / "shared"))


@cache
def _openai_validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    path = shared_dir() / "openai-responses" / f"{name}.schema.json"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return Draft202012Validator(json.load(fh))


@pytest.fixture
def openai_schema():
    """openai_schema("response") -> a validator for that official schema, or skips the test."""

    def get(name: str) -> Any:
        validator = _openai_validator(name)
        if validator is None:
            pytest.skip(f"official OpenAI schema {name!r} not found under {shared_dir()}")
        return validator

    return get


def assert_valid(validator: Any, payload: Any) -> None:
    """Fails with every schema error listed, not just the first."""
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10])
