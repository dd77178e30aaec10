"""JSON written by others (dataset rows, model answers, tool arguments, rollout records, plans) in,
a value out, or a `BadJSON` (a ValueError) whose `reason` is one short line.

`json.loads` raises more than JSONDecodeError: RecursionError for 100,000 nested brackets and a
plain ValueError for an integer of 5,000 digits; both escaped as internal errors. A value nested
deeper than MAX_DEPTH is refused as well, since later stages (schema checks, copies, our own tree
walks) recurse over it.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 200  # the YAML loader's limit too


class BadJSON(ValueError):
    """Why a text is not usable JSON; lineno/colno when the parser knows where (1-based)."""

    def __init__(self, reason: str, lineno: int = 0, colno: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lineno = lineno
        self.colno = colno


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads with every failure a BadJSON, and nesting bounded by MAX_DEPTH."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BadJSON(exc.msg, exc.lineno, exc.colno) from None
    except UnicodeDecodeError:
        raise BadJSON("not UTF-8 text") from None
    except RecursionError:
        raise BadJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # int('9' * 5000): the interpreter's digit limit
        what = "a number too long to read" if "digits" in str(exc) else "a value JSON cannot hold"
        raise BadJSON(what) from None
    if _brackets(data) > MAX_DEPTH and depth(value) > MAX_DEPTH:
        raise BadJSON(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _brackets(data: str | bytes | bytearray) -> int:
    """An upper bound of the nesting depth, in two C-speed counts."""
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def depth(value: Any, stop: int = MAX_DEPTH) -> int:
    """How deep containers nest (a scalar is 0), walked without recursion; stops past `stop`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > stop:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest
