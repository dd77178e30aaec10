"""A regular expression in, a short string it matches out: `pattern` constraints in the JSON Schemas
the stand-in answers (a pydantic `constr(pattern=...)` in a structured output, a tool parameter).

It walks Python's own parse of the expression and takes the first way through each part: the first
branch, the first character of a class, the fewest repeats allowed. Lookarounds and backreferences
are beyond it; the caller checks the result and keeps its own string when it does not match.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# Python's regex parser: re._parser since 3.11, sre_parse before (a deprecated alias after).
_parser: Any = importlib.import_module("re._parser" if hasattr(re, "_parser") else "sre_parse")
_MAX_REPEAT = 64
_CATEGORY = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}


class _Unsupported(Exception):
    pass


def _class(items: list[tuple[Any, Any]]) -> str:
    """The first character a character class accepts (negated classes: a letter outside them)."""
    if items and str(items[0][0]) == "NEGATE":
        banned = _class_members(items[1:])
        for c in "aA0_-x ":
            if c not in banned:
                return c
        raise _Unsupported("negated class")
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return _CATEGORY.get(str(arg), "a")
    raise _Unsupported("empty class")


def _class_members(items: list[tuple[Any, Any]]) -> set[str]:
    members: set[str] = set()
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            members.add(chr(arg))
        elif name == "RANGE":
            members.update(chr(c) for c in range(arg[0], min(arg[1], arg[0] + 256) + 1))
        elif name == "CATEGORY":
            members.update(c for c in "aA0_-x " if re.fullmatch(_category_re(str(arg)), c))
    return members


def _category_re(name: str) -> str:
    return {
        "CATEGORY_DIGIT": r"\d",
        "CATEGORY_NOT_DIGIT": r"\D",
        "CATEGORY_SPACE": r"\s",
        "CATEGORY_NOT_SPACE": r"\S",
        "CATEGORY_WORD": r"\w",
        "CATEGORY_NOT_WORD": r"\W",
    }.get(name, ".")


def _walk(parsed: Any) -> str:
    out: list[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_class(list(arg)))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            out.append(_walk(sub) * min(low, _MAX_REPEAT))
        elif name == "SUBPATTERN":
            out.append(_walk(arg[-1]))
        elif name == "ATOMIC_GROUP":
            out.append(_walk(arg))
        elif name == "BRANCH":
            out.append(_walk(arg[1][0]))
        elif name == "AT":
            continue  # anchors match where they stand
        else:  # lookarounds, backreferences, conditionals
            raise _Unsupported(name)
    return "".join(out)


def sample(pattern: str) -> str | None:
    """A string `re.search(pattern, s)` accepts, or None when none could be made."""
    try:
        text = _walk(_parser.parse(pattern))
    except (_Unsupported, re.error, TypeError, ValueError, RecursionError):
        return None
    try:
        return text if re.search(pattern, text) else None
    except re.error:
        return None
