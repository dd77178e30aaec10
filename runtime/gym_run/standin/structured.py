"""A request's `text.format` in, the answer a model held to it would give out: structured outputs.

`client.responses.parse(text_format=Model)` sends `text.format = {type: json_schema, name, schema,
strict}` and parses the answer's text as the model; a stand-in answering prose there crashes the
SDK. Here the answer is JSON made by the stand-in's schema-conforming generator
(runtime/gym_run/standin/args.py), its first free string the text the stand-in would have said.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gym_run.standin.args import ArgGen

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
KINDS = ("text", "json_object", "json_schema")


def text_format(body: dict[str, Any]) -> dict[str, Any] | None:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return fmt if isinstance(fmt, dict) else None


def check(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) for a `text` OpenAI would refuse, in its words."""
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict):
        return "Invalid type for 'text': expected an object.", "text"
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in KINDS:
        kinds = ", ".join(f"'{k}'" for k in KINDS)
        return f"Invalid value for 'text.format.type': expected one of {kinds}.", "text.format.type"
    if fmt["type"] != "json_schema":
        return None
    if not isinstance(fmt.get("name"), str) or not _NAME.match(fmt["name"]):
        return (
            "Invalid 'text.format.name': a string of at most 64 letters, digits, '_' or '-'.",
            "text.format.name",
        )
    if not isinstance(fmt.get("schema"), dict):
        return "Missing required parameter: 'text.format.schema'.", "text.format.schema"
    return None


def structured_text(fmt: dict[str, Any] | None, said: str) -> str | None:
    """The JSON text to answer instead of `said`, or None for a plain-text format."""
    kind = (fmt or {}).get("type")
    if kind == "json_schema":
        schema = fmt["schema"]  # type: ignore[index]  # check() made sure
        value = ArgGen(schema, said, strict=True).value(schema)
        return json.dumps(value, ensure_ascii=False)
    if kind == "json_object":
        return json.dumps({"answer": said}, ensure_ascii=False)
    return None


def echoed(body: dict[str, Any]) -> dict[str, Any]:
    """The Response's `text`: the format asked for, else plain text (as OpenAI echoes it)."""
    fmt = text_format(body)
    out: dict[str, Any] = {"format": fmt if fmt is not None else {"type": "text"}}
    text = body.get("text")
    if isinstance(text, dict) and text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    return out
