"""derive: a NeMo Gym server's entrypoint (app.py) in, the JSON Schema of its config out; read, never run.

NeMo Gym validates a server's config with the class its server class annotates `config` with
(`BaseServer.load_config_from_global_config` reads `cls.model_fields["config"].annotation`), and
the server class is the one `if __name__ == "__main__":` runs (`X.run_webserver()`). The
instance's mapping is also checked at the server-type level (`BaseRunServerTypeConfig`: its
`datasets`), so those fields are added. Launch-time fields NeMo Gym fills in itself (`name`,
`host`, `port`) are not required; a resources server must name its `domain`, as NeMo Gym asserts.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile.nemo.models import Deriver
from gym_compile.nemo.pysource import ClassRef, ModuleIndex

#: Bumped whenever derivation changes what it produces (old cache entries are then ignored).
FORMAT = 2
#: Keys NeMo Gym reads from a resources server's or an agent's mapping besides its config class:
#: metadata (nemo_gym/server_metadata.py; no default here, so none is written into a config whose
#: class forbids extra keys, as environment servers' do) and, on resources servers, the pairings
#: it declares (nemo_gym/global_config.py: allowed_agents / allowed_model_types).
_METADATA_TYPES = ("resources_servers", "responses_api_agents")
_METADATA: dict[str, dict[str, Any]] = {
    "description": {"type": "string"},
    "verified": {"type": "boolean"},
    "verified_url": {"type": ["string", "null"]},
    "value": {"type": "string", "description": "What the environment improves."},
}
_NAMES: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
}
_PAIRINGS = {
    "allowed_agents": {**_NAMES, "description": "Agent types this resources server supports."},
    "allowed_model_types": {**_NAMES, "description": "Model server types that can carry it."},
}
_LAUNCHER: dict[str, dict[str, Any]] = {
    "host": {"type": "string", "default": "127.0.0.1"},
    "port": {"type": ["integer", "null"], "minimum": 0, "maximum": 65535, "default": None},
}


@dataclass
class Derived:
    """A derivation's outcome: a schema (maybe incomplete), or why there is none."""

    source: Path
    schema: dict[str, Any] | None = None
    config_class: str | None = None
    notes: list[str] = field(default_factory=list)  # what could not be read
    error: str | None = None  # no schema: why
    files: dict[str, str] = field(default_factory=dict)  # every file read -> sha256

    @property
    def complete(self) -> bool:
        return self.schema is not None and not self.notes

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "schema": self.schema,
            "config_class": self.config_class,
            "notes": self.notes,
            "error": self.error,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Derived:
        return cls(
            Path(data["source"]),
            data["schema"],
            data["config_class"],
            list(data["notes"]),
            data["error"],
            dict(data["files"]),
        )


def derive(source: Path, server_type: str, implementation: str, roots: Sequence[Path]) -> Derived:
    """The schema of the config of the server whose entrypoint is `source`. `roots`: where
    `nemo_gym` and other servers' modules are looked up, the root holding `source` first."""
    index = ModuleIndex(source.parent, roots)
    module = index.load(source)
    if module is None:
        return Derived(source, error=f"{source.name} cannot be read or is not valid Python")
    out = Derived(source)
    deriver = Deriver(index)
    try:
        server = _server_class(index, deriver, module)
        if isinstance(server, str):
            out.error = server
            return out
        config = _config_class(index, deriver, server)
        if isinstance(config, str):
            out.error = config
            return out
        out.config_class = config.node.name
        schema = deriver.object_schema(config)
        _add_type_level_fields(index, deriver, schema)
        _launcher_fields(schema, server_type)
        if deriver.defs:
            schema["$defs"] = deriver.defs
        out.notes = deriver.notes
        out.schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"gym-compile:derived/{server_type}/{implementation}",
            **schema,
            "title": f"{server_type}/{implementation}",
            "x-derived": {
                "source": str(source),
                "class": config.node.name,
                "complete": not deriver.notes,
            },
        }
    except RecursionError:
        out.error = "its classes nest too deeply to read"
    finally:
        out.files = {str(m.path): m.digest for m in index.files()}
    return out


def _server_class(index: ModuleIndex, d: Deriver, module: Any) -> ClassRef | str:
    """The class `if __name__ == "__main__":` runs; else the one class of the file that
    annotates `config` and is not abstract."""
    tree_body = [b for b in module.bindings.values() if isinstance(b, ast.ClassDef)]
    for node in _main_calls(module):
        found = index.resolve(module, node)
        if isinstance(found, ClassRef):
            return found
    candidates = [
        ClassRef(module, c)
        for c in tree_body
        if any(_annotates_config(s) for s in c.body)
        and not any(ast.unparse(b) in ("ABC", "abc.ABC") for b in c.bases)
    ]
    if len(candidates) == 1:
        return candidates[0]
    return (
        f"no server class found in {module.path.name}: no `X.run_webserver()` under "
        '`if __name__ == "__main__":`'
        + (f", and {len(candidates)} classes annotate `config`" if candidates else "")
    )


def _main_calls(module: Any) -> list[ast.expr]:
    """`X` of each `X.run_webserver()` inside `if __name__ == "__main__":`."""
    try:
        tree = ast.parse(module.path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    out: list[ast.expr] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "__main__" in ast.unparse(stmt.test):
            for node in ast.walk(stmt):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "run_webserver"
                ):
                    out.append(node.func.value)
    return out


def _annotates_config(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and stmt.target.id == "config"
    )


def _config_class(index: ModuleIndex, d: Deriver, server: ClassRef) -> ClassRef | str:
    """The class the server's `config` field is annotated with (the nearest in its bases)."""
    for cls in d.ancestry(server).order:
        for stmt in cls.node.body:
            if _annotates_config(stmt):
                assert isinstance(stmt, ast.AnnAssign)
                found = index.resolve(cls.module, stmt.annotation)
                if isinstance(found, ClassRef):
                    return found
                return (
                    f"the config class of '{server.node.name}' "
                    f"('{ast.unparse(stmt.annotation)}') cannot be read"
                )
    return f"server class '{server.node.name}' does not annotate `config` with a class"


def _add_type_level_fields(index: ModuleIndex, d: Deriver, schema: dict[str, Any]) -> None:
    """NeMo Gym also validates the instance as `BaseRunServerTypeConfig` (datasets)."""
    module = index.find("nemo_gym.config_types")
    found = index.lookup(module, "BaseRunServerTypeConfig") if module else None
    if not isinstance(found, ClassRef):
        reason = "nemo_gym.config_types.BaseRunServerTypeConfig (datasets) not found"
        d.note(reason)
        schema.setdefault("x-incomplete", []).append(reason)
        return
    type_level = d.object_schema(found)
    for key, sub in type_level["properties"].items():
        schema["properties"].setdefault(key, sub)


def _launcher_fields(schema: dict[str, Any], server_type: str) -> None:
    props = schema["properties"]
    for key, sub in {
        **(_METADATA if server_type in _METADATA_TYPES else {}),
        **(_PAIRINGS if server_type == "resources_servers" else {}),
    }.items():
        props.setdefault(key, sub)
    for key, launcher in _LAUNCHER.items():
        described = (
            {"description": props[key]["description"]}
            if "description" in props.get(key, {})
            else {}
        )
        props[key] = {**launcher, **described}
    if "name" in props:
        props["name"] = {k: v for k, v in props["name"].items() if k != "default"} | {
            "description": "Set by NeMo Gym to the instance name."
        }
    required = [k for k in schema.get("required", []) if k not in ("host", "port", "name")]
    if server_type == "resources_servers" and "domain" in props and "domain" not in required:
        required.append("domain")
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
