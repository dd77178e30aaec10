"""`gym-compile schema` with NeMo Gym 0.7.0's implementations: the definitions each derived schema
brings along (OpenAI request params, dataset configs, server refs) are emitted once and referred to,
and the exported schema still judges every config of the release, as written and broken three
ways, exactly as the schema with a copy per implementation does."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from gym_compile import schema_catalog as catalog
from gym_compile.inspect import editor_schema
from gym_compile.nemo.lookup import derive_all
from gym_compile.nemo.roots import find_roots_explained
from tests.nemo_corpus import LATEST, nemo_gym_tree, server_configs

PARAMS = "NeMoGymResponseCreateParamsNonStreaming"
BAD_PARAMS = {"input": [{"role": 5, "content": []}], "temperature": "hot", "tools": [1]}


@pytest.fixture(scope="module")
def tree() -> Path:
    return nemo_gym_tree(LATEST)


@pytest.fixture(scope="module")
def schemas(tree: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shared, one copy per implementation) built from the same derived schemas."""
    found = derive_all(find_roots_explained([], [tree]), skip=catalog.implementations())
    derived = {k: d.schema for k, d in found.items() if d.schema is not None}
    assert len(derived) > 150
    shared = editor_schema.build(copy.deepcopy(derived))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(editor_schema, "share_definitions", lambda schema: schema)
        copies = editor_schema.build(copy.deepcopy(derived))
    return shared, copies


def test_shared_definitions_are_emitted_once(schemas) -> None:
    shared, copies = schemas
    named = [k for k in shared["definitions"] if k.endswith(f".{PARAMS}")]
    assert named == [f"shared.{PARAMS}"]
    assert sum(k.endswith(f".{PARAMS}") for k in copies["definitions"]) > 30
    size, before = (len(json.dumps(s, indent=2)) for s in (shared, copies))
    assert size < before / 2, (size, before)
    Draft7Validator.check_schema(shared)
    text = json.dumps(shared)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/definitions/')[1:]}
    assert refs <= set(shared["definitions"])  # no reference left dangling


def _broken(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config with an unknown key, wrong types, and bad request params in every instance."""
    out = []
    for how in ("unknown", "types", "params"):
        broken = copy.deepcopy(config)
        for instance in broken.values():
            for settings in _implementation_configs(instance):
                if how == "unknown":
                    settings["modle"] = 1
                elif how == "types":
                    settings.update({k: [1, {"x": None}] for k in list(settings)[:5]})
                else:
                    settings["responses_create_params"] = BAD_PARAMS
                    settings["judge_responses_create_params"] = BAD_PARAMS
        out.append(broken)
    return out


def _implementation_configs(instance: Any) -> list[dict[str, Any]]:
    """`instance.<server type>.<implementation>` mappings of one top-level key, if it is one."""
    types = instance.values() if isinstance(instance, dict) else ()
    impls = [v for t in types if isinstance(t, dict) for v in t.values()]
    return [settings for settings in impls if isinstance(settings, dict)]


def _verdict(validator: Draft7Validator, config: Any) -> list[tuple[str, str, str]]:
    return sorted(
        (json.dumps(list(e.absolute_path)), e.validator, e.message)
        for e in validator.iter_errors(config)
    )


def test_the_shared_schema_judges_every_config_as_before(tree: Path, schemas) -> None:
    shared, copies = (Draft7Validator(s) for s in schemas)
    checked = flagged = 0
    for path in server_configs(tree):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            continue
        for variant in [config, *_broken(config)]:
            verdict = _verdict(shared, variant)
            assert verdict == _verdict(copies, variant), path
            checked += 1
            flagged += bool(verdict)
    assert checked > 1000 and flagged > checked / 2  # the broken ones are caught
