"""A tool's JSON Schema in, arguments that validate against it out: the stand-in's "model" for tool calls.

Split from runtime/gym_run/standin/server.py: generating values for the schema subset tools use (refs, allOf,
anyOf/oneOf, enums, bounds, formats, patterns) is its own small problem; the user's text supplies the first
free string ("what's it like in sf?" -> city "sf") so demo transcripts read naturally.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gym_run.standin.pattern import sample

_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "hostname": "example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}


MAX_SIZE = 1000  # items, extra properties and padding characters: a schema cannot make us build 1e9
MAX_NODES = 20_000  # values in one answer (nested arrays would multiply MAX_SIZE)


def _bound(value: Any) -> int:
    """A size a schema asks for, as an int no larger than MAX_SIZE (nonsense counts as 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return max(0, min(int(value), MAX_SIZE))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Shallow schema merge (allOf, or a branch plus its siblings), uniting properties/required."""
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


class ArgGen:
    """Builds a value that validates against a JSON Schema (the subset tools actually use)."""

    def __init__(self, root: dict[str, Any], hint: str, strict: bool) -> None:
        self.root, self.hint, self.strict = root, hint, strict
        self.nodes = 0

    def value(self, schema: Any, name: str = "value", variant: int = 0, depth: int = 0) -> Any:
        self.nodes += 1
        if not isinstance(schema, dict) or depth > 32 or self.nodes > MAX_NODES:
            return name
        if isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/"):
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value(_merge(target, rest), name, variant, depth + 1)
        if isinstance(all_of := schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                merged = _merge(merged, part) if isinstance(part, dict) else merged
            return self.value(merged, name, variant, depth + 1)
        for key in ("anyOf", "oneOf"):
            if isinstance(branches := schema.get(key), list) and branches:
                # The first non-null branch (null only if it is all there is) reads better.
                good = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
                pick = good[0] if good else branches[0]
                rest = {k: v for k, v in schema.items() if k != key}
                merged = _merge(rest, pick) if isinstance(pick, dict) else rest
                return self.value(merged, name, variant, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(enum := schema.get("enum"), list) and enum:
            return enum[variant % len(enum)]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
            kind = kind or "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if "default" in schema:
            return schema["default"]
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer", variant)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return self._string(schema, name, variant)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        raw_props = schema.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        wanted = list(props) if self.strict else [p for p in props if p in required]
        wanted += [r for r in required if r not in wanted]
        extra = [p for p in props if p not in wanted]
        least = _bound(schema.get("minProperties", 0))
        while len(wanted) < least and extra:
            wanted.append(extra.pop(0))
        out = {key: self.value(props.get(key, {}), key, 0, depth + 1) for key in wanted}
        if schema.get("additionalProperties") is not False:
            for i in range(len(out), least):
                extra_schema = schema.get("additionalProperties", {})
                out[f"key{i}"] = self.value(extra_schema, f"key{i}", i, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        raw_prefix = schema.get("prefixItems")
        prefix: list[Any] = raw_prefix if isinstance(raw_prefix, list) else []
        items = schema.get("items", {})
        count = (
            len(prefix)
            if items is False
            else max(_bound(schema.get("minItems", 0)), 1, len(prefix))
        )
        count = min(count, _bound(schema.get("maxItems", count)), MAX_SIZE)
        schemas = [prefix[i] if i < len(prefix) else items for i in range(count)]
        return [self.value(item, name, i, depth + 1) for i, item in enumerate(schemas)]

    @staticmethod
    def _number(schema: dict[str, Any], integer: bool, variant: int) -> int | float:
        """Tries a few natural candidates and keeps the first within every bound."""
        step = schema.get("multipleOf")
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = (schema.get(k) for k in ("exclusiveMinimum", "exclusiveMaximum"))
        xlo, xhi = (None if isinstance(v, bool) else v for v in (xlo, xhi))  # OpenAPI 3.0 form
        unit = step or 1

        def ok(v: float) -> bool:
            inside = (lo is None or v >= lo) and (hi is None or v <= hi)
            inside = inside and (xlo is None or v > xlo) and (xhi is None or v < xhi)
            return inside and (not step or abs(v / step - round(v / step)) < 1e-9)

        low = lo if lo is not None else xlo
        high = hi if hi is not None else xhi
        raw = [1 + variant * unit, 1, 0]
        if low is not None:
            raw = [low + variant * unit, low + (variant + 1) * unit, low, *raw]
        if high is not None:
            raw += [high - variant * unit, high - unit, high]
        if low is not None and high is not None:
            raw.append((low + high) / 2)
        for c in raw:
            for v in [math.ceil(c / step) * step, math.floor(c / step) * step] if step else [c]:
                for w in [math.ceil(v), math.floor(v)] if integer else [v]:
                    if ok(w):
                        return int(w) if integer else w
        return int(low or 0) if integer else (low or 0)

    def _string(self, schema: dict[str, Any], name: str, variant: int) -> str:
        if isinstance(fmt := schema.get("format"), str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        text = name
        if self.hint:
            text, self.hint = self.hint, ""
        if variant:
            text = f"{text}{variant}"
        if len(text) < (min_len := _bound(schema.get("minLength", 0))):
            text += "x" * (min_len - len(text))
        text = text[: _bound(schema.get("maxLength", len(text)))]
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _matches(pattern, text):
            text = sample(pattern) or text
        return text


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # a pattern Python cannot read: nothing better to offer
