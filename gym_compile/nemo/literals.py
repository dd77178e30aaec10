"""literals: a default-value expression of NeMo Gym's source in, its JSON value out (or UNKNOWN).

Evaluated by reading, never by running: constants, containers, negative numbers, module-level
names (followed through imports), enum members (`Domain.MATH` -> "math"), `Path("x")` -> "x".
Anything else (a call, an f-string, os.environ, inf) is UNKNOWN: the field then has no default
the compiler can state, and is not required either.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from gym_compile.nemo.pysource import ClassRef, External, Module, ModuleIndex, ValueRef


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
_MAX_DEPTH = 16
_ENUM_BASES = frozenset(
    f"enum.{n}" for n in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "ReprEnum")
)
_STRING_CALLS = frozenset(
    {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "builtins.str", "os.fspath"}
)
_EMPTY_CALLS = {
    "builtins.dict": dict,
    "builtins.list": list,
    "builtins.set": list,
    "builtins.tuple": list,
    "builtins.frozenset": list,
    "collections.OrderedDict": dict,
    "collections.defaultdict": dict,
    "typing.OrderedDict": dict,
}


def evaluate(index: ModuleIndex, module: Module, expr: ast.expr, depth: int = 0) -> Any:
    """The JSON value of `expr`, or UNKNOWN."""
    if depth > _MAX_DEPTH:
        return UNKNOWN
    ev = _Evaluator(index, depth + 1)
    try:
        value = ev.value(module, expr)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return UNKNOWN
    return value if _is_json(value) else UNKNOWN


def is_enum(index: ModuleIndex, cls: ClassRef, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    for base in cls.node.bases:
        found = index.resolve(cls.module, base)
        if isinstance(found, External) and found.qualname in _ENUM_BASES:
            return True
        if isinstance(found, ClassRef) and is_enum(index, found, depth + 1):
            return True
    return False


def enum_members(index: ModuleIndex, cls: ClassRef) -> dict[str, Any] | None:
    """Member name -> value of an Enum class; None when a value cannot be read (auto(), calls)."""
    members: dict[str, Any] = {}
    for stmt in cls.node.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if not isinstance(target, ast.Name) or target.id.startswith("_"):
                continue
            assert value is not None
            member = evaluate(index, cls.module, value)
            if member is UNKNOWN:
                return None
            members[target.id] = member
    return members


class _Evaluator:
    def __init__(self, index: ModuleIndex, depth: int) -> None:
        self.index = index
        self.depth = depth

    def value(self, module: Module, expr: ast.expr) -> Any:
        if isinstance(expr, ast.Constant):
            return (
                UNKNOWN if expr.value is Ellipsis or isinstance(expr.value, bytes) else expr.value
            )
        if isinstance(expr, ast.UnaryOp):
            operand = self.value(module, expr.operand)
            if isinstance(expr.op, ast.USub) and _number(operand):
                return -operand
            if isinstance(expr.op, ast.UAdd) and _number(operand):
                return operand
            return UNKNOWN
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            items = [self.value(module, e) for e in expr.elts]
            return UNKNOWN if any(i is UNKNOWN for i in items) else items
        if isinstance(expr, ast.Dict):
            out: dict[str, Any] = {}
            for k, v in zip(expr.keys, expr.values, strict=True):
                key = self.value(module, k) if k is not None else UNKNOWN
                val = self.value(module, v)
                if not isinstance(key, str) or val is UNKNOWN:
                    return UNKNOWN
                out[key] = val
            return out
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mult)):
            left, right = self.value(module, expr.left), self.value(module, expr.right)
            if left is UNKNOWN or right is UNKNOWN or isinstance(left, bool):
                return UNKNOWN
            if isinstance(expr.op, ast.Add) and type(left) is type(right):
                return left + right
            if isinstance(expr.op, ast.Mult) and _number(left) and _number(right):
                return left * right
            return UNKNOWN
        if isinstance(expr, (ast.Name, ast.Attribute)):
            return self.name(module, expr)
        if isinstance(expr, ast.Call):
            return self.call(module, expr)
        return UNKNOWN

    def name(self, module: Module, expr: ast.Name | ast.Attribute) -> Any:
        if isinstance(expr, ast.Attribute):  # an enum member: Domain.MATH
            owner = self.index.resolve(module, expr.value)
            if isinstance(owner, ClassRef) and is_enum(self.index, owner):
                members = enum_members(self.index, owner) or {}
                return members.get(expr.attr, UNKNOWN)
        found = self.index.resolve(module, expr)
        if isinstance(found, ValueRef):
            return evaluate(self.index, found.module, found.node, self.depth)
        if isinstance(found, External) and found.qualname == "builtins.None":
            return None
        return UNKNOWN

    def call(self, module: Module, expr: ast.Call) -> Any:
        func = self.index.resolve(module, expr.func)
        if not isinstance(func, External):
            return UNKNOWN
        args = [self.value(module, a) for a in expr.args]
        if any(a is UNKNOWN for a in args) or expr.keywords and func.qualname != "builtins.dict":
            return UNKNOWN
        if func.qualname in _STRING_CALLS and len(args) == 1 and isinstance(args[0], str):
            return args[0]
        if func.qualname in _EMPTY_CALLS and not args:
            base = _EMPTY_CALLS[func.qualname]()
            if func.qualname == "builtins.dict":
                for kw in expr.keywords:
                    val = self.value(module, kw.value)
                    if kw.arg is None or val is UNKNOWN:
                        return UNKNOWN
                    base[kw.arg] = val
            return base
        if func.qualname in ("builtins.int", "builtins.float") and len(args) == 1:
            number = (int if func.qualname == "builtins.int" else float)(args[0])
            return number if math.isfinite(number) else UNKNOWN
        return UNKNOWN


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
