"""models: a pydantic model class of NeMo Gym's source in, the JSON Schema of its fields out.

Follows what pydantic does when it builds the class: fields from every base in method resolution
order (a subclass overrides), `model_config` / class keywords merged along the way (extra="allow"
accepts any key), `Field(...)` defaults, default factories, aliases and constraints, underscore
names and ClassVars left out. What it cannot read is noted: an object whose set of keys is
uncertain (a base class from another package, a "before" model validator that may rewrite the
input) carries `x-incomplete`, so unknown keys there are reported as warnings, not errors.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from gym_compile.nemo.classes import (
    SERVER_REF_DEF,
    config_extra,
    config_flag,
    linearize,
    server_ref_type,
)
from gym_compile.nemo.literals import UNKNOWN, evaluate
from gym_compile.nemo.pysource import ClassRef, External, Missing, ModuleIndex
from gym_compile.nemo.typeschema import TypeMapper, constraints, qualname

_MISSING: Any = object()
_IGNORED_BASES = frozenset(
    {"typing.Generic", "typing.Protocol", "abc.ABC", "builtins.object", "pydantic.BaseModel"}
)
_MODEL_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel"})
_VALIDATORS = frozenset(
    {
        "pydantic.model_validator",
        "pydantic.field_validator",
        "pydantic.validator",
        "pydantic.root_validator",
    }
)
_MAX_DEPTH = 32


@dataclass
class Field:
    keys: list[str]  # the names a config may use (an alias replaces the attribute name)
    schema: dict[str, Any]
    default: Any = _MISSING  # _MISSING: required; UNKNOWN: optional, default not readable


@dataclass
class Ancestry:
    order: list[ClassRef]  # method resolution order, the class first
    model: bool  # derives from pydantic.BaseModel
    unknown: list[str]  # bases that could not be read
    typeddict: bool = False  # a TypedDict (pydantic validates those too)


class Deriver(TypeMapper):
    """One derivation: the nested classes it reached ($defs) and what it could not read."""

    def __init__(self, index: ModuleIndex) -> None:
        super().__init__(index)
        self.defs: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self._def_names: dict[str, str] = {}
        self._defaults_in_progress: set[str] = set()
        self._ancestries: dict[str, Ancestry] = {}

    def note(self, reason: str) -> None:
        if reason not in self.notes:
            self.notes.append(reason)

    def class_schema(self, cls: ClassRef) -> dict[str, Any]:
        """A nested class as a $ref into $defs (built once; recursion ends at the placeholder)."""
        ref_type = server_ref_type(cls)
        if ref_type is not None:
            self.defs.setdefault("server_ref", SERVER_REF_DEF)
            return {"$ref": "#/$defs/server_ref", "x-ref-type": ref_type}
        if cls.key not in self._def_names:
            anc = self.ancestry(cls)
            if not anc.model and not anc.typeddict:
                for reason in anc.unknown or [f"class '{cls.node.name}' is not a pydantic model"]:
                    self.note(reason)
                return {}
            name = cls.node.name
            while name in self.defs:
                name += "_"
            self._def_names[cls.key] = name
            self.defs[name] = {}
            self.defs[name] = self.object_schema(cls)
        return {"$ref": f"#/$defs/{self._def_names[cls.key]}"}

    def ancestry(self, cls: ClassRef) -> Ancestry:
        if cls.key not in self._ancestries:
            self._ancestries[cls.key] = self._ancestry(cls)
        return self._ancestries[cls.key]

    def _ancestry(self, cls: ClassRef) -> Ancestry:
        unknown: list[str] = []
        model = [False]
        typeddict = [False]

        def bases(c: ClassRef) -> list[ClassRef]:
            out: list[ClassRef] = []
            for base in c.node.bases:
                expr = base.value if isinstance(base, ast.Subscript) else base
                found = self.index.resolve(c.module, expr)
                name = qualname(found)
                if isinstance(found, ClassRef):
                    out.append(found)
                elif name in _MODEL_BASES:
                    model[0] = True
                elif name == "typing.TypedDict":
                    typeddict[0] = True
                elif name in _IGNORED_BASES or (name or "").startswith("enum."):
                    continue
                elif isinstance(found, External):
                    unknown.append(
                        f"base class '{found.qualname}' of '{c.node.name}' comes from package "
                        f"'{found.package}', which is not read"
                    )
                else:
                    why = found.reason if isinstance(found, Missing) else ast.unparse(expr)
                    unknown.append(f"base class of '{c.node.name}' not found: {why}")
            return out

        mro = linearize(cls, bases) or [cls]
        return Ancestry(mro, model[0], unknown, typeddict[0])

    def object_schema(self, cls: ClassRef) -> dict[str, Any]:
        """The class's own object schema (the server's config class is inlined at the top)."""
        anc = self.ancestry(cls)
        incomplete = list(anc.unknown)
        fields: dict[str, Field] = {}
        extra = "ignore"
        lenient: set[str] = set()
        for c in reversed(anc.order):
            extra = config_extra(self.index, c) or extra
            for name, fld in self._own_fields(c).items():
                fields.pop(name, None)
                fields[name] = self._typeddict_field(c, name, fld) if anc.typeddict else fld
            before, lenient_here = self._validators(c)
            incomplete += before
            lenient |= lenient_here
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, fld in fields.items():
            schema = fld.schema
            if name in lenient or "*" in lenient:
                schema = {k: v for k, v in schema.items() if k == "description"}
            if fld.default is not _MISSING and fld.default is not UNKNOWN:
                schema = {**schema, "default": fld.default}
            for key in fld.keys:
                properties[key] = schema
            if fld.default is _MISSING:
                required.append(fld.keys[0])
        out: dict[str, Any] = {"type": "object", "title": cls.node.name}
        doc = _docstring(cls.node)
        if doc:
            out["description"] = doc
        out["properties"] = properties
        if required:
            out["required"] = required
        out["additionalProperties"] = extra == "allow"
        if incomplete and extra != "allow":
            out["x-incomplete"] = incomplete
            for reason in incomplete:
                self.note(reason)
        return out

    def _typeddict_field(self, cls: ClassRef, name: str, fld: Field) -> Field:
        """TypedDict keys are required when the class is total (the default), unless marked
        NotRequired; with total=False only Required[...] keys are."""
        total = next(
            (
                evaluate(self.index, cls.module, k.value)
                for k in cls.node.keywords
                if k.arg == "total"
            ),
            True,
        )
        ann = next(
            s.annotation
            for s in cls.node.body
            if isinstance(s, ast.AnnAssign)
            and isinstance(s.target, ast.Name)
            and s.target.id == name
        )
        marker = (
            qualname(self.index.resolve(cls.module, ann.value))
            if isinstance(ann, ast.Subscript)
            else None
        )
        required = marker == "typing.Required" or (
            total is not False and marker != "typing.NotRequired"
        )
        return Field(fld.keys, fld.schema, _MISSING if required else UNKNOWN)

    def _own_fields(self, cls: ClassRef) -> dict[str, Field]:
        out: dict[str, Field] = {}
        for stmt in cls.node.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            name = stmt.target.id
            if name.startswith("_") or name == "model_config" or self._is_classvar(cls, stmt):
                continue
            out[name] = self._field(cls, name, stmt)
        return out

    def _is_classvar(self, cls: ClassRef, stmt: ast.AnnAssign) -> bool:
        ann = stmt.annotation
        expr = ann.value if isinstance(ann, ast.Subscript) else ann
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value.startswith(("ClassVar", "typing.ClassVar"))
        return qualname(self.index.resolve(cls.module, expr)) in (
            "typing.ClassVar",
            "dataclasses.InitVar",
        )

    def _field(self, cls: ClassRef, name: str, stmt: ast.AnnAssign) -> Field:
        module = cls.module
        schema = self.annotation(module, stmt.annotation)
        keys = [name]
        default: Any = _MISSING
        call = self._field_call(cls, stmt.value)
        if call is None:
            call = self._annotated_field_call(cls, stmt.annotation)
        if call is not None:
            schema = {**schema, **constraints(self.index, module, call, "pydantic.Field")}
            default = self._field_default(cls, call)
            keys = self._aliases(cls, call, name)
        elif stmt.value is not None:
            default = self._value(cls, stmt.value)
        return Field(keys, schema, default)

    def _field_call(self, cls: ClassRef, value: ast.expr | None) -> ast.Call | None:
        if isinstance(value, ast.Call):
            if qualname(self.index.resolve(cls.module, value.func)) == "pydantic.Field":
                return value
        return None

    def _annotated_field_call(self, cls: ClassRef, ann: ast.expr) -> ast.Call | None:
        if isinstance(ann, ast.Subscript) and isinstance(ann.slice, ast.Tuple):
            if qualname(self.index.resolve(cls.module, ann.value)) == "typing.Annotated":
                for meta in ann.slice.elts[1:]:
                    call = self._field_call(cls, meta)
                    if call is not None and (
                        call.args
                        or any(k.arg in ("default", "default_factory") for k in call.keywords)
                    ):
                        return call
        return None

    def _field_default(self, cls: ClassRef, call: ast.Call) -> Any:
        given: ast.expr | None = call.args[0] if call.args else None
        for kw in call.keywords:
            if kw.arg == "default":
                given = kw.value
            elif kw.arg == "default_factory":
                return self._factory(cls, kw.value)
        if given is None or (isinstance(given, ast.Constant) and given.value is Ellipsis):
            return _MISSING
        if qualname(self.index.resolve(cls.module, given)) == "pydantic_core.PydanticUndefined":
            return _MISSING
        return self._value(cls, given)

    def _factory(self, cls: ClassRef, factory: ast.expr) -> Any:
        if isinstance(factory, ast.Lambda):
            return self._value(cls, factory.body)
        found = self.index.resolve(cls.module, factory)
        empty: dict[str, Any] = {
            "builtins.dict": {},
            "builtins.list": [],
            "builtins.set": [],
            "builtins.tuple": [],
        }
        name = qualname(found)
        if name in empty or name in ("collections.OrderedDict", "collections.defaultdict"):
            return empty.get(name or "", {})
        if isinstance(found, ClassRef):
            return self.model_default(found, None)
        return UNKNOWN

    def _value(self, cls: ClassRef, expr: ast.expr) -> Any:
        if isinstance(expr, ast.Call):
            found = self.index.resolve(cls.module, expr.func)
            if isinstance(found, ClassRef) and self.ancestry(found).model:
                return self.model_default(found, expr)
        return evaluate(self.index, cls.module, expr)

    def model_default(self, cls: ClassRef, call: ast.Call | None) -> Any:
        """The dumped value of `Model(**kwargs)`: its fields' defaults with the kwargs over them."""
        if cls.key in self._defaults_in_progress or len(self._defaults_in_progress) > _MAX_DEPTH:
            return UNKNOWN
        self._defaults_in_progress.add(cls.key)
        try:
            given = {
                kw.arg: self._value(cls, kw.value)
                for kw in (call.keywords if call else [])
                if kw.arg
            }
            if call is not None and (call.args or len(given) != len(call.keywords)):
                return UNKNOWN
            out: dict[str, Any] = {}
            for c in reversed(self.ancestry(cls).order):
                for fld in self._own_fields(c).values():
                    value = given.get(fld.keys[0], fld.default)
                    if value is _MISSING or value is UNKNOWN:
                        return UNKNOWN
                    out[fld.keys[0]] = value
            return out
        finally:
            self._defaults_in_progress.discard(cls.key)

    def _aliases(self, cls: ClassRef, call: ast.Call, name: str) -> list[str]:
        keys: list[str] = []
        for kw in call.keywords:
            if kw.arg in ("alias", "validation_alias"):
                value = evaluate(self.index, cls.module, kw.value)
                if isinstance(value, str):
                    keys.append(value)
                elif isinstance(kw.value, ast.Call):  # AliasChoices("a", "b")
                    keys += [
                        v
                        for v in (evaluate(self.index, cls.module, a) for a in kw.value.args)
                        if isinstance(v, str)
                    ]
        if not keys:
            return [name]
        if (
            config_flag(self.index, self.ancestry(cls).order, "populate_by_name")
            and name not in keys
        ):
            keys.append(name)
        return list(dict.fromkeys(keys))

    def _validators(self, cls: ClassRef) -> tuple[list[str], set[str]]:
        """('before' model validators that make the key set uncertain, fields a 'before' field
        validator may convert from anything)."""
        uncertain: list[str] = []
        lenient: set[str] = set()
        for stmt in cls.node.body:
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in stmt.decorator_list:
                if not isinstance(deco, ast.Call):
                    continue
                kind = qualname(self.index.resolve(cls.module, deco.func))
                if kind not in _VALIDATORS:
                    continue
                kw = {k.arg: evaluate(self.index, cls.module, k.value) for k in deco.keywords}
                before = kw.get("mode") in ("before", "wrap", "plain") or kw.get("pre") is True
                if kind in ("pydantic.model_validator", "pydantic.root_validator") and before:
                    uncertain.append(
                        f"'{cls.node.name}.{stmt.name}' is a 'before' model validator: it may "
                        "accept or rewrite keys gym-compile cannot see"
                    )
                elif before:
                    names = [evaluate(self.index, cls.module, a) for a in deco.args]
                    lenient |= {n for n in names if isinstance(n, str)}
        return uncertain, lenient


def _docstring(node: ast.ClassDef) -> str:
    doc = ast.get_docstring(node) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    return first if len(first) <= 300 else first[:297] + "..."
