"""Text out of Responses API items: a message's text, the last message of a role, an answer a
pattern extracts. Shared by the verifiers, the judge and the report (none owns it)."""

from __future__ import annotations

import re
from typing import Any


def message_text(item: Any) -> str:
    """Text of a message item: a string content or its text parts joined by newlines."""
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in content or [] if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str))


def last_text(items: Any, role: str) -> str | None:
    """The last message of `role` (assistant: the final answer; user: the question)."""
    for item in reversed(items if isinstance(items, list) else []):
        if (
            isinstance(item, dict)
            and item.get("role") == role
            and item.get("type", "message") == "message"
        ):
            return message_text(item).strip()
    return None


def extract(text: str, pattern: str | None) -> str:
    """NeMo Gym's rule: the last match; its first non-empty group, else the whole match."""
    if not pattern:
        return text
    try:
        matches = list(re.finditer(pattern, text, flags=re.MULTILINE | re.DOTALL))
    except re.error:
        return text
    if not matches:
        return text
    last = matches[-1]
    return next(
        (g.strip() for g in last.groups() if isinstance(g, str) and g.strip()),
        last.group(0).strip(),
    )
