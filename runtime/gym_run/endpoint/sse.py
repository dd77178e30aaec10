"""A streamed Responses API answer (server-sent events) in, the final Response out, or why not.

A model server whose plan says `stream: true` asks for the answer as events (some gateways only
stream, and a long generation then keeps the connection busy instead of idle). gym-run needs the
whole Response, which the last event carries: `response.completed` (or `response.incomplete`,
answered like a non-streamed incomplete response). `response.failed` and `error` events are the
endpoint's failure; a stream that ends without a final event was cut off, which is retried like
a dropped connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gym_compile import jsonsafe
from gym_compile.jsonsafe import BadJSON

FINAL = ("response.completed", "response.incomplete")


@dataclass(frozen=True)
class StreamOutcome:
    """The final Response, or what went wrong: `kind` is "failed" (the endpoint said so) or
    "cut" (no final event arrived)."""

    response: dict[str, Any] | None
    kind: str = ""
    message: str = ""
    error_type: str | None = None


def is_event_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "text/event-stream"


def _events(text: str) -> list[dict[str, Any]]:
    """The JSON data of every event; comments, other fields and undecodable data are skipped."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if not data or data == ["[DONE]"]:
            continue
        try:
            event = jsonsafe.loads("\n".join(data))  # bounded depth: a hostile stream cannot crash
        except BadJSON:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def final_response(text: str) -> StreamOutcome:
    for event in reversed(_events(text)):
        kind = event.get("type")
        response = event.get("response")
        if kind in FINAL and isinstance(response, dict):
            return StreamOutcome(response)
        if kind == "response.failed":
            error = (response or {}).get("error") if isinstance(response, dict) else None
            error = error if isinstance(error, dict) else {}
            message = str(error.get("message") or "the response failed")
            return StreamOutcome(None, "failed", message, str(error.get("code") or "") or None)
        if kind == "error":
            message = str(event.get("message") or "the stream reported an error")
            return StreamOutcome(None, "failed", message, str(event.get("code") or "") or None)
    return StreamOutcome(None, "cut", "the event stream ended before response.completed")
