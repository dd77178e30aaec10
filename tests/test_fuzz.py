"""Property-based fuzzing: hostile input to every parser gives our own located error, never a crash.

Default 200 examples per property; `GYM_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py` on demand.
"""

from __future__ import annotations

import asyncio
import json
import os
import string
from typing import Any

import pytest
from gym_run.errors import GymRunError, ModelCallError
from gym_run.plan import load_plan
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import SimpleWeather
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_compile.diagnostics import CompileError
from gym_compile.interpolate import resolve
from gym_compile.loader import parse_yaml
from gym_compile.merge import Merged
from gym_compile.overrides import parse_override
from gym_compile.sourcemap import SourceMap

EXAMPLES = int(os.environ.get("GYM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

YAML_ALPHABET = string.ascii_letters + string.digits + " :-[]{},'\"#&*!|>%@`\t\n\\$.?~=+"
yaml_text = st.one_of(
    st.text(alphabet=YAML_ALPHABET, max_size=200),
    st.text(max_size=100),  # any unicode, surrogates excluded by hypothesis
    st.lists(
        st.sampled_from(
            [
                "a:",
                " b:",
                "  - x",
                "&a [1]",
                "*a",
                "${x}",
                "!!python/object:os.system",
                "<<: *a",
                "'q",
                "\t",
                "? k",
                "---",
                "...",
                ": v",
                "[",
                "{",
            ]
        ),
        max_size=20,
    ).map("\n".join),
)


def _located(exc: CompileError) -> None:
    assert exc.diagnostics
    for d in exc.diagnostics:
        assert d.code.startswith("GYM") and d.message


@FUZZ
@given(yaml_text)
def test_yaml_loader_gives_data_or_located_errors(text):
    try:
        doc = parse_yaml(text, file="fuzz.yaml")
    except CompileError as exc:
        _located(exc)
        return
    assert isinstance(doc.data, dict)
    json.dumps(doc.data)  # whatever loads must be plain JSON data


interp_text = st.lists(
    st.sampled_from(
        [
            "${",
            "}",
            "a",
            ".",
            "b",
            ":",
            ",",
            "oc.env",
            "oc.select",
            "\\${",
            "$",
            "{",
            "x.y",
            " ",
            "???",
            "0",
            "HOME",
        ]
    ),
    max_size=25,
).map("".join)


@FUZZ
@given(st.dictionaries(st.sampled_from(["a", "b", "x", "y"]), interp_text, min_size=1, max_size=4))
def test_interpolation_resolves_or_reports(values):
    data: dict[str, Any] = {**values, "x": {"y": values.get("x", "1")}}
    merged = Merged(data, SourceMap(), [], None, None)
    resolved = resolve(merged)
    for d in resolved.diagnostics:
        assert d.code.startswith("GYM0") and d.path.startswith("$")
    json.dumps(resolved.data, default=str)


@FUZZ
@given(st.text(max_size=80))
def test_override_parser_gives_override_or_located_error(text):
    try:
        o = parse_override(text)
    except CompileError as exc:
        _located(exc)
        assert all(str(d.location).startswith("<command line>:") for d in exc.diagnostics)
        return
    assert o.path and all(o.path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "format_version",
                    "compiler",
                    "sources",
                    "env_file",
                    "secrets",
                    "servers",
                    "job",
                    "content_hash",
                ]
            ),
            json_values,
        ),
    )
)
def test_plan_loader_refuses_with_plan_errors(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(json.dumps(value))
    with pytest.raises(GymRunError):
        load_plan(path)


@FUZZ
@given(st.binary(max_size=200))
def test_plan_loader_survives_arbitrary_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_bytes(raw)
    with pytest.raises(GymRunError):
        load_plan(path)


class _Scripted:
    """Answers each call with the next fuzzed body: the endpoint is swapped, not the code path."""

    def __init__(self, bodies: list[Any]) -> None:
        self.bodies = bodies

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return (
            self.bodies.pop(0)
            if self.bodies
            else {"output": [{"type": "message", "role": "assistant", "content": []}]}
        )


output_item = st.fixed_dictionaries(
    {"type": st.sampled_from(["function_call", "message", "reasoning", "weird", 3])},
    optional={
        "name": st.sampled_from(["get_weather", "nope", "", None]),
        "call_id": json_values,
        "arguments": st.one_of(st.text(max_size=30), st.just('{"city": "x"}'), json_values),
        "role": st.sampled_from(["assistant", "user", None]),
        "content": json_values,
    },
)
response_body = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"output": st.one_of(st.lists(output_item, max_size=4), json_values)},
        optional={"usage": json_values, "incomplete_details": json_values},
    ),
)


@FUZZ
@given(st.lists(response_body, min_size=1, max_size=4))
def test_agent_loop_survives_any_model_answer(bodies):
    agent = SimpleAgent(
        "a", ModelServer("m", _Scripted(list(bodies))), SimpleWeather("w", {}), max_steps=6
    )
    params = {
        "input": "hi",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {}}],
    }
    try:
        response, stats = asyncio.run(agent.responses(params))
    except ModelCallError as exc:
        assert exc.message
        return
    assert isinstance(response["output"], list) and stats.model_calls >= 1
    json.dumps(response)
