"""gym_compile/plan_types.py against the JSON Schemas: the same keys, the same required/optional
split, compatible value types, and no schema object left without a type (or a stated reason).

The schemas are the contract the plan and the records are checked against; the types are what
the code is checked against. A key added to one and not the other fails here."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from gym_compile import plan_types as pt
from gym_compile.assets import load_schema

Pointer = tuple[str | int, ...]

PLAN = "plan.schema.json"
ROLLOUT = "rollout.schema.json"
_JOB = ("properties", "job", "anyOf", 1)
_OK_GYM = ("anyOf", 0, "properties", "_gym")
_FAILED_GYM = ("anyOf", 1, "properties", "_gym")

# Each TypedDict and the one schema object it types.
ONE_OBJECT: list[tuple[Any, str, Pointer]] = [
    (pt.Plan, PLAN, ()),
    (pt.Compiler, PLAN, ("properties", "compiler")),
    (pt.Source, PLAN, ("properties", "sources", "items")),
    (pt.SecretRef, PLAN, ("properties", "secrets", "additionalProperties")),
    (pt.ServerEntry, PLAN, ("properties", "servers", "additionalProperties")),
    (
        pt.ServerSource,
        PLAN,
        ("properties", "servers", "additionalProperties", "properties", "source"),
    ),
    (pt.NemoGym, PLAN, ("properties", "nemo_gym")),
    (pt.Job, PLAN, _JOB),
    (pt.JobInput, PLAN, (*_JOB, "properties", "input")),
    (pt.JobOutput, PLAN, (*_JOB, "properties", "output")),
    (pt.Estimate, PLAN, (*_JOB, "properties", "estimate")),
    (pt.BudgetLimits, PLAN, (*_JOB, "properties", "budget")),
    (pt.RayBlock, PLAN, (*_JOB, "properties", "ray")),
    (pt.CacheSpec, PLAN, (*_JOB, "properties", "response_cache")),
    (pt.AgentRef, ROLLOUT, ("properties", "agent_ref")),
    (pt.ErrorInfo, ROLLOUT, (*_FAILED_GYM, "properties", "error")),
    (pt.CacheBlock, ROLLOUT, (*_OK_GYM, "properties", "cache")),
]

# Schema objects typed together: the record is the top level and both branches (ok, failed),
# required only what both require; the same for `_gym`.
MERGED: list[tuple[Any, str, Pointer, list[Pointer]]] = [
    (pt.RolloutRecord, ROLLOUT, (), [("anyOf", 0), ("anyOf", 1)]),
    (pt.GymBlock, ROLLOUT, _OK_GYM, [_FAILED_GYM]),
]

# Schema objects deliberately left as plain JSON objects, and why.
UNTYPED: dict[tuple[str, Pointer], str] = {
    (
        ROLLOUT,
        ("anyOf", 0, "properties", "response"),
    ): "an OpenAI Response, as the endpoint sent it",
    (ROLLOUT, (*_OK_GYM, "properties", "usage")): "token counts by name: dict[str, int]",
}


def _at(schema_file: str, pointer: Pointer) -> dict[str, Any]:
    node: Any = load_schema(schema_file)
    for part in pointer:
        node = node[part]
    return node


def _keys(node: dict[str, Any]) -> set[str]:
    """An object's keys: its properties, and the required ones a schema lists without properties."""
    return set(node.get("properties", {})) | set(node.get("required", []))


def _type_keys(td: Any) -> tuple[set[str], set[str]]:
    return set(td.__annotations__), set(td.__required_keys__)


@pytest.mark.parametrize(
    ("td", "schema_file", "pointer"), ONE_OBJECT, ids=[t.__name__ for t, _, _ in ONE_OBJECT]
)
def test_a_type_has_exactly_its_schema_objects_keys(td: Any, schema_file: str, pointer: Pointer):
    node = _at(schema_file, pointer)
    keys, required = _type_keys(td)
    assert keys == _keys(node), f"{td.__name__}: keys differ from {schema_file} {pointer}"
    assert required == set(node.get("required", [])), f"{td.__name__}: required keys differ"


@pytest.mark.parametrize(
    ("td", "schema_file", "pointer", "others"), MERGED, ids=[t.__name__ for t, *_ in MERGED]
)
def test_a_merged_type_has_every_branchs_keys_and_requires_what_all_require(
    td: Any, schema_file: str, pointer: Pointer, others: list[Pointer]
):
    nodes = [_at(schema_file, pointer), *(_at(schema_file, p) for p in others)]
    keys, required = _type_keys(td)
    assert keys == set().union(*map(_keys, nodes)), f"{td.__name__}: keys differ"
    if pointer == ():  # the record: the top level says what every record has
        expected = set(nodes[0]["required"])
    else:
        expected = set.intersection(*(set(n.get("required", [])) for n in nodes))
    assert required == expected, f"{td.__name__}: required keys differ"


def _json_types(tp: Any) -> set[str]:
    """The JSON types a Python annotation admits."""
    if tp is Any:
        return {"string", "integer", "number", "boolean", "null", "object", "array"}
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return set().union(*(_json_types(a) for a in get_args(tp)))
    if origin is Literal:
        return {_json_type_of(v) for v in get_args(tp)}
    base = origin or tp
    if typing.is_typeddict(base) or base is dict:
        return {"object"}
    table = {type(None): "null", str: "string", bool: "boolean", int: "integer", float: "number"}
    if base is list:
        return {"array"}
    return {table[base]}


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "integer", float: "number", type(None): "null"}[type(value)]


def _schema_types(node: dict[str, Any]) -> set[str] | None:
    if "const" in node:
        return {_json_type_of(node["const"])}
    if "enum" in node:
        return {_json_type_of(v) for v in node["enum"]}
    if "anyOf" in node:
        branches = [_schema_types(b) for b in node["anyOf"]]
        return None if None in branches else set().union(*branches)  # type: ignore[arg-type]
    given = node.get("type")
    if given is None:
        return None
    return set(given) if isinstance(given, list) else {given}


def _all_typed() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    for td, schema_file, pointer in ONE_OBJECT:
        yield td, [_at(schema_file, pointer)]
    for td, schema_file, pointer, others in MERGED:
        yield td, [_at(schema_file, p) for p in (pointer, *others)]


TYPED = list(_all_typed())


@pytest.mark.parametrize(("td", "nodes"), TYPED, ids=[td.__name__ for td, _ in TYPED])
def test_every_keys_value_type_matches_its_schema(td: Any, nodes: list[dict[str, Any]]):
    hints = get_type_hints(td)
    for node in nodes:
        for key, sub in node.get("properties", {}).items():
            expected = _schema_types(sub)
            if expected is None:
                continue
            got = _json_types(hints[key])
            if "number" in expected:
                got = {"number" if t == "integer" else t for t in got}  # float admits an int
            assert got == expected, f"{td.__name__}.{key}: {hints[key]} is not {sorted(expected)}"
            literal = [a for a in _flat(hints[key]) if get_origin(a) is Literal]
            if "enum" in sub:
                assert set(get_args(hints[key])) == set(sub["enum"]), f"{td.__name__}.{key}"
            elif "const" in sub and literal:
                assert sub["const"] in get_args(literal[0]), f"{td.__name__}.{key}"


def _flat(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return [a for arg in get_args(tp) for a in _flat(arg)]
    return [tp]


def _objects(node: Any, pointer: Pointer = ()) -> Iterator[Pointer]:
    """Pointers to every object schema with keys of its own."""
    if not isinstance(node, dict):
        return
    if _keys(node) and node.get("type", "object") != "array":
        yield pointer
    for key in ("properties", "additionalProperties", "items", "anyOf"):
        sub = node.get(key)
        if isinstance(sub, dict) and key != "properties":
            yield from _objects(sub, (*pointer, key))
        elif isinstance(sub, dict):
            for name, child in sub.items():
                yield from _objects(child, (*pointer, key, name))
        elif isinstance(sub, list):
            for i, child in enumerate(sub):
                yield from _objects(child, (*pointer, key, i))


@pytest.mark.parametrize("schema_file", [PLAN, ROLLOUT])
def test_no_schema_object_is_left_without_a_type(schema_file: str):
    covered = {(f, p) for _, f, p in ONE_OBJECT}
    covered |= {(f, p) for _, f, first, others in MERGED for p in (first, *others)}
    covered |= set(UNTYPED)
    missing = [p for p in _objects(load_schema(schema_file)) if (schema_file, p) not in covered]
    assert not missing, (
        f"{schema_file}: objects with no type in gym_compile/plan_types.py: {missing}"
    )


def test_the_check_fails_when_a_key_is_added_to_one_side_only():
    """The comparison itself can fail: a type with one key more than its schema object."""

    class Wider(pt.Compiler):
        extra: str

    node = _at(PLAN, ("properties", "compiler"))
    assert _type_keys(Wider)[0] != _keys(node)
    assert _type_keys(pt.Compiler)[0] == _keys(node)
