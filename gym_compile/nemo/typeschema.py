"""typeschema: a type annotation of NeMo Gym's source in, the JSON Schema of what it accepts out.

Covers what config classes use: builtins, typing (Optional, Union, `X | None`, List, Dict, Tuple,
Literal, Annotated), pydantic's constrained types (PositiveInt, SecretStr, conint, ...), Path,
enums and nested models (through the `class_schema` hook). A type that cannot be read (from a
third-party package, a dynamic expression) accepts anything, and the reason is noted.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from gym_compile.nemo.literals import UNKNOWN, enum_members, evaluate, is_enum
from gym_compile.nemo.pysource import (
    ClassRef,
    External,
    Missing,
    Module,
    ModuleIndex,
    ModuleRef,
    ValueRef,
)

_MAX_DEPTH = 24
_STRING = {"type": "string"}
_SIMPLE: dict[str, dict[str, Any]] = {
    "builtins.str": _STRING,
    "builtins.bytes": _STRING,
    "builtins.int": {"type": "integer"},
    "builtins.float": {"type": "number"},
    "builtins.complex": {"type": "number"},
    "builtins.bool": {"type": "boolean"},
    "builtins.None": {"type": "null"},
    "builtins.object": {},
    "typing.Any": {},
    "typing.Text": _STRING,
    "pathlib.Path": _STRING,
    "pathlib.PurePath": _STRING,
    "pathlib.PosixPath": _STRING,
    "uuid.UUID": _STRING,
    "pydantic.StrictStr": _STRING,
    "pydantic.StrictInt": {"type": "integer"},
    "pydantic.StrictFloat": {"type": "number"},
    "pydantic.StrictBool": {"type": "boolean"},
    "pydantic.StrictBytes": _STRING,
    "pydantic.PositiveInt": {"type": "integer", "exclusiveMinimum": 0},
    "pydantic.NonNegativeInt": {"type": "integer", "minimum": 0},
    "pydantic.NegativeInt": {"type": "integer", "exclusiveMaximum": 0},
    "pydantic.NonPositiveInt": {"type": "integer", "maximum": 0},
    "pydantic.PositiveFloat": {"type": "number", "exclusiveMinimum": 0},
    "pydantic.NonNegativeFloat": {"type": "number", "minimum": 0},
    "pydantic.NegativeFloat": {"type": "number", "exclusiveMaximum": 0},
    "pydantic.NonPositiveFloat": {"type": "number", "maximum": 0},
    "pydantic.FiniteFloat": {"type": "number"},
    "pydantic.SecretStr": {"type": "string", "writeOnly": True},
    "pydantic.SecretBytes": {"type": "string", "writeOnly": True},
    "pydantic.FilePath": _STRING,
    "pydantic.DirectoryPath": _STRING,
    "pydantic.NewPath": _STRING,
    "pydantic.EmailStr": _STRING,
    "pydantic.AnyUrl": _STRING,
    "pydantic.AnyHttpUrl": _STRING,
    "pydantic.HttpUrl": _STRING,
    "pydantic.WebsocketUrl": _STRING,
    "pydantic.Json": {},
    "pydantic.JsonValue": {},
    "pydantic.BaseModel": {"type": "object"},
}
_ARRAYS = frozenset(
    "builtins.list builtins.set builtins.frozenset typing.List typing.Set typing.FrozenSet "
    "typing.Sequence typing.MutableSequence typing.Iterable typing.Collection typing.AbstractSet "
    "typing.Deque collections.deque".split()
)
_TUPLES = frozenset({"builtins.tuple", "typing.Tuple"})
_OBJECTS = frozenset(
    "builtins.dict typing.Dict typing.Mapping typing.MutableMapping typing.OrderedDict "
    "typing.DefaultDict collections.OrderedDict collections.defaultdict".split()
)
_ANY_OF_THESE = frozenset(
    "typing.Type builtins.type typing.Callable typing.Pattern re.Pattern pydantic.ImportString "
    "typing.TypeVar".split()
)
_PASS_THROUGH = frozenset({"typing.Required", "typing.NotRequired", "typing.Final"})
_LENIENT_META = frozenset(
    {"pydantic.BeforeValidator", "pydantic.PlainValidator", "pydantic.WrapValidator"}
)
_CONSTRAINED = {
    "pydantic.conint": {"type": "integer"},
    "pydantic.confloat": {"type": "number"},
    "pydantic.constr": _STRING,
    "pydantic.conlist": {"type": "array"},
    "pydantic.conset": {"type": "array"},
    "pydantic.StringConstraints": {},
    "pydantic.Field": {},
    "annotated_types.Gt": {},
    "annotated_types.Ge": {},
    "annotated_types.Lt": {},
    "annotated_types.Le": {},
    "annotated_types.MinLen": {},
    "annotated_types.MaxLen": {},
    "annotated_types.Len": {},
    "annotated_types.MultipleOf": {},
}
_POSITIONAL = {
    "annotated_types.Gt": "gt",
    "annotated_types.Ge": "ge",
    "annotated_types.Lt": "lt",
    "annotated_types.Le": "le",
    "annotated_types.MinLen": "min_length",
    "annotated_types.MaxLen": "max_length",
    "annotated_types.Len": "min_length",
    "annotated_types.MultipleOf": "multiple_of",
}


def qualname(found: Any) -> str | None:
    """typing_extensions and pydantic's submodules spelled as typing / pydantic."""
    if not isinstance(found, External):
        return None
    name = found.qualname
    if name.startswith("typing_extensions."):
        return "typing." + name.removeprefix("typing_extensions.")
    if name.startswith(("pydantic.types.", "pydantic.networks.", "pydantic.fields.")):
        return "pydantic." + name.rsplit(".", 1)[1]
    if name.startswith("pydantic.functional_validators."):
        return "pydantic." + name.rsplit(".", 1)[1]
    if name.startswith("collections.abc."):
        return "typing." + name.rsplit(".", 1)[1]
    return name


def constraints(index: ModuleIndex, module: Module, call: ast.Call, kind: str) -> dict[str, Any]:
    """Field(ge=1, description=...), conint(gt=0), Gt(0), ... -> JSON Schema keywords."""
    kwargs: dict[str, Any] = {}
    if kind in _POSITIONAL and call.args:
        kwargs[_POSITIONAL[kind]] = evaluate(index, module, call.args[0])
    for kw in call.keywords:
        if kw.arg is not None:
            kwargs[kw.arg] = evaluate(index, module, kw.value)
    out: dict[str, Any] = {}
    names = {
        "gt": "exclusiveMinimum",
        "ge": "minimum",
        "lt": "exclusiveMaximum",
        "le": "maximum",
        "multiple_of": "multipleOf",
    }
    for key, keyword in names.items():
        if _number(kwargs.get(key)):
            out[keyword] = kwargs[key]
    for key, words in (
        ("min_length", ("minLength", "minItems", "minProperties")),
        ("max_length", ("maxLength", "maxItems", "maxProperties")),
    ):
        if isinstance(kwargs.get(key), int) and not isinstance(kwargs[key], bool):
            out.update(dict.fromkeys(words, kwargs[key]))
    pattern = kwargs.get("pattern", kwargs.get("regex"))
    if isinstance(pattern, str) and _compiles(pattern):
        out["pattern"] = pattern
    if isinstance(kwargs.get("description"), str):
        out["description"] = kwargs["description"]
    if kwargs.get("deprecated") not in (None, False, UNKNOWN):
        out["deprecated"] = True
    return out


class TypeMapper:
    """Annotation -> schema. Subclasses give nested classes their schema and collect notes."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index

    def note(self, reason: str) -> None:
        raise NotImplementedError

    def class_schema(self, cls: ClassRef) -> dict[str, Any]:
        raise NotImplementedError

    def annotation(self, module: Module, expr: ast.expr | None, depth: int = 0) -> dict[str, Any]:
        if expr is None or depth > _MAX_DEPTH:
            return {}
        if isinstance(expr, ast.Constant):
            if expr.value is None:
                return {"type": "null"}
            if isinstance(expr.value, str):  # a forward reference: "Foo" or "Optional[Foo]"
                try:
                    parsed = ast.parse(expr.value.strip(), mode="eval").body
                except SyntaxError:
                    self.note(f"annotation {expr.value!r} does not parse")
                    return {}
                return self.annotation(module, parsed, depth + 1)
            return {}
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            return _any_of([self.annotation(module, e, depth + 1) for e in (expr.left, expr.right)])
        if isinstance(expr, ast.Subscript):
            return self._subscript(module, expr, depth)
        if isinstance(expr, ast.Call):
            return self._call(module, expr, depth)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            return self._named(module, expr, depth)
        self.note(f"annotation '{ast.unparse(expr)}' is not a type gym-compile can read")
        return {}

    def _named(self, module: Module, expr: ast.expr, depth: int) -> dict[str, Any]:
        found = self.index.resolve(module, expr)
        name = qualname(found)
        if name is not None:
            if name in _SIMPLE:
                return dict(_SIMPLE[name])
            if name in _ARRAYS or name in _TUPLES:
                return {"type": "array"}
            if name in _OBJECTS:
                return {"type": "object"}
            if name in _ANY_OF_THESE:
                return {}
            self.note(f"type '{name}' comes from package '{name.split('.')[0]}', which is not read")
            return {}
        if isinstance(found, ClassRef):
            if is_enum(self.index, found):
                members = enum_members(self.index, found)
                if members is None:
                    self.note(f"the values of enum '{found.node.name}' cannot be read")
                    return {}
                return {"enum": _unique(members.values())}
            return self.class_schema(found)
        if isinstance(found, ValueRef):  # a type alias, NewType or TypeVar
            node = found.node
            if isinstance(node, ast.Call):
                func = qualname(self.index.resolve(found.module, node.func))
                if func == "typing.NewType" and len(node.args) == 2:
                    return self.annotation(found.module, node.args[1], depth + 1)
                if func == "typing.TypeVar":
                    return {}
            return self.annotation(found.module, node, depth + 1)
        if isinstance(found, Missing):
            self.note(f"type {found.reason}")
        elif isinstance(found, ModuleRef):
            self.note(f"'{ast.unparse(expr)}' is a module, not a type")
        return {}

    def _subscript(self, module: Module, expr: ast.Subscript, depth: int) -> dict[str, Any]:
        found = self.index.resolve(module, expr.value)
        name = qualname(found)
        args = list(expr.slice.elts) if isinstance(expr.slice, ast.Tuple) else [expr.slice]

        def sub(i: int) -> dict[str, Any]:
            return self.annotation(module, args[i], depth + 1)

        if name == "typing.Optional":
            return _any_of([sub(0), {"type": "null"}])
        if name == "typing.Union":
            return _any_of([sub(i) for i in range(len(args))])
        if name == "typing.Literal":
            return self._literal(module, args)
        if name == "typing.Annotated":
            return self._annotated(module, args, depth)
        if name in _PASS_THROUGH:
            return sub(0)
        if name in _ARRAYS:
            return {"type": "array", "items": sub(0)}
        if name in _TUPLES:
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is ...:
                return {"type": "array", "items": sub(0)}
            items = [sub(i) for i in range(len(args))]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if name in _OBJECTS:
            out: dict[str, Any] = {"type": "object"}
            if len(args) == 2:
                keys, values = sub(0), sub(1)
                if "enum" in keys:
                    out["propertyNames"] = keys
                if values:
                    out["additionalProperties"] = values
            return out
        if name in _ANY_OF_THESE or name == "typing.ClassVar":
            return {}
        if isinstance(found, ClassRef):  # a generic model: Foo[int]
            return self.class_schema(found)
        return self._named(module, expr.value, depth)

    def _literal(self, module: Module, args: list[ast.expr]) -> dict[str, Any]:
        values = [evaluate(self.index, module, a) for a in args]
        if any(v is UNKNOWN for v in values):
            self.note(f"Literal[{', '.join(ast.unparse(a) for a in args)}] has a value not read")
            return {}
        return {"enum": _unique(values)}

    def _annotated(self, module: Module, args: list[ast.expr], depth: int) -> dict[str, Any]:
        schema = self.annotation(module, args[0], depth + 1) if args else {}
        for meta in args[1:]:
            if not isinstance(meta, ast.Call):
                continue
            kind = qualname(self.index.resolve(module, meta.func))
            if kind in _LENIENT_META:
                return {k: v for k, v in schema.items() if k == "description"}
            if kind in _CONSTRAINED:
                schema = {**schema, **constraints(self.index, module, meta, kind)}
        return schema

    def _call(self, module: Module, expr: ast.Call, depth: int) -> dict[str, Any]:
        kind = qualname(self.index.resolve(module, expr.func))
        if kind in ("pydantic.conlist", "pydantic.conset"):
            item = self.annotation(module, expr.args[0], depth + 1) if expr.args else {}
            for kw in expr.keywords:
                if kw.arg == "item_type":
                    item = self.annotation(module, kw.value, depth + 1)
            base = {"type": "array", **({"items": item} if item else {})}
            return {**base, **constraints(self.index, module, expr, kind)}
        if kind in _CONSTRAINED:
            return {**_CONSTRAINED[kind], **constraints(self.index, module, expr, kind)}
        self.note(f"annotation '{ast.unparse(expr)}' is a call gym-compile does not read")
        return {}


def _any_of(options: list[dict[str, Any]]) -> dict[str, Any]:
    """A union; one that accepts anything in a branch accepts anything."""
    flat: list[dict[str, Any]] = []
    for option in options:
        if not option or option == {"description": option.get("description")}:
            return {}
        for o in option["anyOf"] if set(option) == {"anyOf"} else [option]:
            if o not in flat:
                flat.append(o)
    return flat[0] if len(flat) == 1 else {"anyOf": flat}


def _unique(values: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not any(v == o and type(v) is type(o) for o in out):
            out.append(v)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
