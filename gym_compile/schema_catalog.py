"""The server implementations the compiler knows: one JSON Schema file each under schemas/servers/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from gym_compile.assets import load_schema, schemas_dir

#: environment_servers (NeMo Gym 0.7) have no built-in implementation: their schemas are derived.
SERVER_TYPES = (
    "responses_api_models",
    "resources_servers",
    "responses_api_agents",
    "environment_servers",
)


@cache
def _files() -> dict[str, tuple[str, ...]]:
    """server type -> implementations with a schema file in schemas/servers/<type>/."""
    root = schemas_dir() / "servers"
    return {
        t: tuple(
            sorted(p.name.removesuffix(".schema.json") for p in (root / t).glob("*.schema.json"))
        )
        for t in SERVER_TYPES
    }


@cache
def _aliases() -> dict[tuple[str, str], str]:
    """(type, name) -> the schema file's implementation, for implementations NeMo Gym renamed:
    a schema lists the other names of the same code in `x-implementation-aliases`."""
    out: dict[tuple[str, str], str] = {}
    for server_type, names in _files().items():
        for name in names:
            schema = load_schema(f"servers/{server_type}/{name}.schema.json")
            for alias in schema.get("x-implementation-aliases", []):
                out[(server_type, alias)] = name
    return out


@cache
def implementations() -> dict[str, tuple[str, ...]]:
    """server type -> the implementation names gym-compile ships (renamed ones by both names)."""
    return {
        t: tuple(sorted((*names, *(a for (k, a) in _aliases() if k == t))))
        for t, names in _files().items()
    }


def canonical_implementation(server_type: str, implementation: str) -> str:
    return _aliases().get((server_type, implementation), implementation)


def server_schema(server_type: str, implementation: str) -> dict[str, Any]:
    name = canonical_implementation(server_type, implementation)
    return load_schema(f"servers/{server_type}/{name}.schema.json")


@cache
def top_level_ids() -> dict[str, str]:
    """$id -> file of the schemas at the top of schemas/: what other schemas may $ref by id
    (globals refers to gym-compile:prices, so a config's `prices:` is checked by the same schema)."""
    return {
        load_schema(p.name)["$id"]: p.name
        for p in sorted(schemas_dir().glob("*.schema.json"))
        if "$id" in load_schema(p.name)
    }


@cache
def _registry() -> Registry:
    return Registry().with_resources(
        (sid, Resource.from_contents(load_schema(name))) for sid, name in top_level_ids().items()
    )


@cache
def validator(relative: str) -> Draft202012Validator:
    """Built once per schema per process: building is far costlier than validating."""
    schema = load_schema(relative)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


@cache
def quick_check(relative: str) -> Callable[[Any], bool]:
    """A yes/no check for hot loops (every input row). Uses fastjsonschema's generated code when the
    optional `speed` extra is installed (~10x faster, measured in benchmarks/bench_compile.py);
    jsonschema otherwise, or with GYM_PURE_PYTHON=1. Failures are always explained by jsonschema,
    so messages do not depend on the extra."""
    if os.environ.get("GYM_PURE_PYTHON") != "1":
        try:
            import fastjsonschema
        except ImportError:
            pass
        else:
            compiled = fastjsonschema.compile(load_schema(relative), use_default=False)

            def check(instance: Any) -> bool:
                try:
                    compiled(instance)
                except fastjsonschema.JsonSchemaException:
                    return False
                return True

            return check
    return validator(relative).is_valid


def server_validator(server_type: str, implementation: str) -> Draft202012Validator:
    name = canonical_implementation(server_type, implementation)
    return validator(f"servers/{server_type}/{name}.schema.json")


_BY_DIGEST: dict[str, Draft202012Validator] = {}
_BY_DIGEST_MAX = 256


def schema_validator(schema: dict[str, Any], digest: str) -> Draft202012Validator:
    """The validator of a schema that is not a file (one derived from NeMo Gym's source), built
    once per process per schema content."""
    found = _BY_DIGEST.get(digest)
    if found is None:
        # no meta-schema check here: it cost 3/4 of a NeMo Gym corpus compile; the derivation is
        # ours, and tests/test_nemo_real_schemas.py checks every schema it derives from a release
        found = Draft202012Validator(schema, registry=_registry())
        if len(_BY_DIGEST) >= _BY_DIGEST_MAX:
            _BY_DIGEST.pop(next(iter(_BY_DIGEST)))
        _BY_DIGEST[digest] = found
    return found


def _deref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        merged = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return merged
    return schema


def marked(
    schema: dict[str, Any],
    instance: Any,
    marker: str,
    path: tuple[Any, ...] = (),
    root: dict[str, Any] | None = None,
) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    """Yields (path, value, marker value) for each value of instance whose subschema has `marker`
    (through properties, additionalProperties, items and the branches of anyOf/oneOf)."""
    root = root if root is not None else schema
    schema = _deref(schema, root)
    if marker in schema:
        yield path, instance, schema[marker]
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(branch, dict):
            yield from marked(branch, instance, marker, path, root)
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key in instance:
                yield from marked(sub, instance[key], marker, path + (key,), root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in properties:
                    yield from marked(extra, value, marker, path + (key,), root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            yield from marked(schema["items"], item, marker, path + (i,), root)


def fill_defaults(
    schema: dict[str, Any], instance: dict[str, Any], root: dict[str, Any] | None = None
) -> None:
    """Writes schema defaults into the instance so the plan states every value the runtime uses."""
    root = root if root is not None else schema
    for key, sub in schema.get("properties", {}).items():
        sub = _deref(sub, root)
        if key not in instance:
            if "default" in sub:
                instance[key] = sub["default"]
            elif sub.get("type") == "object" and any(
                "default" in s for s in sub.get("properties", {}).values()
            ):
                instance[key] = {}
        if isinstance(instance.get(key), dict) and "properties" in sub:
            fill_defaults(sub, instance[key], root)
