"""classes: facts about one class of NeMo Gym's source that pydantic derives from its definition:
the order of its bases (C3, as Python computes it), its `model_config` settings, and whether it is
one of NeMo Gym's server references (ModelServerRef & co)."""

from __future__ import annotations

import ast
from typing import Any

from gym_compile.nemo.literals import evaluate
from gym_compile.nemo.pysource import ClassRef, ModuleIndex

_MAX_DEPTH = 32

SERVER_REF_TYPES = (
    "responses_api_models",
    "resources_servers",
    "responses_api_agents",
    "environment_servers",
)
SERVER_REF_DEF = {
    "type": "object",
    "required": ["type", "name"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": list(SERVER_REF_TYPES)},
        "name": {"type": "string", "minLength": 1},
    },
}


def server_ref_type(cls: ClassRef) -> str | None:
    """NeMo Gym's ModelServerRef & co: exactly `type: Literal["<server type>"]` and `name: str`."""
    fields = {
        s.target.id: s.annotation
        for s in cls.node.body
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    }
    if set(fields) != {"type", "name"} or len(cls.node.bases) != 1:
        return None
    ann = fields["type"]
    if isinstance(ann, ast.Subscript) and isinstance(ann.slice, ast.Constant):
        value = ann.slice.value
        if value in SERVER_REF_TYPES and ast.unparse(fields["name"]) == "str":
            return str(value)
    return None


def config_extra(index: ModuleIndex, cls: ClassRef) -> str | None:
    """The class's own `extra` setting (allow / ignore / forbid), if it states one."""
    value = _config_value(index, cls, "extra")
    return value if value in ("allow", "ignore", "forbid") else None


def config_flag(index: ModuleIndex, order: list[ClassRef], key: str) -> bool:
    """A boolean model_config setting true anywhere along the bases."""
    return any(_config_value(index, c, key) is True for c in order)


def _config_value(index: ModuleIndex, cls: ClassRef, key: str) -> Any:
    """model_config = ConfigDict(key=...) / {...}, class keywords, or a v1 `class Config`."""
    for kw in cls.node.keywords:
        if kw.arg == key:
            return _config_literal(index, cls, kw.value)
    for stmt in cls.node.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "model_config" for t in stmt.targets
        ):
            if isinstance(stmt.value, ast.Call):
                for kw in stmt.value.keywords:
                    if kw.arg == key:
                        return _config_literal(index, cls, kw.value)
            elif isinstance(stmt.value, ast.Dict):
                for k, v in zip(stmt.value.keys, stmt.value.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == key:
                        return _config_literal(index, cls, v)
        elif isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
            for sub in stmt.body:
                if isinstance(sub, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == key for t in sub.targets
                ):
                    return _config_literal(index, cls, sub.value)
    return None


def _config_literal(index: ModuleIndex, cls: ClassRef, expr: ast.expr) -> Any:
    if isinstance(expr, ast.Attribute):  # Extra.allow
        return expr.attr
    return evaluate(index, cls.module, expr)


def linearize(cls: ClassRef, bases: Any, depth: int = 0) -> list[ClassRef]:
    """C3, as Python orders bases; a hierarchy Python would refuse falls back to depth-first."""
    if depth > _MAX_DEPTH:
        return [cls]
    direct: list[ClassRef] = bases(cls)
    seqs = [linearize(b, bases, depth + 1) for b in direct] + [list(direct)]
    out = [cls]
    seqs = [list(s) for s in seqs if s]
    while seqs:
        for seq in seqs:
            head = seq[0]
            if not any(head.key in (c.key for c in s[1:]) for s in seqs):
                break
        else:
            rest = [c for s in seqs for c in s]
            return out + [c for i, c in enumerate(rest) if c.key not in {x.key for x in rest[:i]}]
        out.append(head)
        seqs = [[c for c in s if c.key != head.key] for s in seqs]
        seqs = [s for s in seqs if s]
    return out
