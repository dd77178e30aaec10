"""What the API adds around the stand-in's answer on the wire: a fresh id for every answer and the
checks of the newer request fields (stream, previous_response_id, text.format)."""

from __future__ import annotations

import uuid
from typing import Any

from gym_run.standin import structured


def fresh_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """Unique response and item ids for each answer, as OpenAI gives (the content, call ids
    included, stays what `respond` made of the request)."""
    items = []
    for item in answer["output"]:
        prefix = str(item.get("id", "item_")).split("_", 1)[0]
        items.append({**item, "id": f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"})
    return {**answer, "id": f"resp_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}", "output": items}


def check_features(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) for the stream / previous_response_id / text fields OpenAI would refuse."""
    if "stream" in body and not isinstance(body["stream"], bool) and body["stream"] is not None:
        return "Invalid type for 'stream': expected a boolean.", "stream"
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        return "Invalid type for 'previous_response_id': expected a string.", "previous_response_id"
    return structured.check(body)
