"""An endpoint's answer text in, what a record and a message may hold out: a JSON object (or
None), the official error shape's message/type/code, text cut to a line's worth."""

from __future__ import annotations

from typing import Any

from gym_compile import jsonsafe
from gym_compile.jsonsafe import BadJSON

MAX_ERROR_TEXT = 500


def json_object(text: str) -> dict[str, Any] | None:
    try:
        parsed = jsonsafe.loads(text)
    except BadJSON:  # also 100,000 nested brackets or a 5,000-digit number: malformed, not a crash
        return None
    return parsed if isinstance(parsed, dict) else None


def error_from_body(text: str, reason: str | None) -> tuple[str, str | None, str | None]:
    """(message, type, code) of the official error shape {"error": {"message", "type", "code"}};
    anything else as raw text."""
    body = json_object(text)
    if body is not None:
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return (
                cut(str(err["message"])),
                cut(str(err["type"]), 100) if err.get("type") else None,
                cut(str(err["code"]), 100) if err.get("code") else None,
            )
        if isinstance(err, str) and err:
            return cut(err), None, None
        if isinstance(body.get("message"), str):
            return cut(body["message"]), None, None
    snippet = cut(text.strip())
    return snippet or (reason or "no error message"), None, None


def cut(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Error text as recorded: an endpoint's message can be megabytes; a record line should not."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
