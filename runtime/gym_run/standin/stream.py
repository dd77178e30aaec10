"""A finished Response in, the server-sent events OpenAI streams for it out (`stream: true`).

The order the official SDK's stream helper accumulates: response.created and .in_progress (the
response without output), then per output item .output_item.added, its content parts with text
deltas (or the function call's argument deltas) and their .done events, .output_item.done, and
last response.completed with the whole response. Every event has a sequence_number from 0; no
`[DONE]` line follows (that is Chat Completions).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from itertools import count
from typing import Any

from aiohttp import web

_PIECE = re.compile(r"\S+\s*|\s+")
WORDS_PER_DELTA = 3


def _deltas(text: str) -> Iterator[str]:
    pieces = _PIECE.findall(text)
    for i in range(0, len(pieces), WORDS_PER_DELTA):
        yield "".join(pieces[i : i + WORDS_PER_DELTA])


def events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    seq = count()
    shell = {k: v for k, v in response.items() if k != "usage"}  # no usage until it is done
    shell.update(status="in_progress", output=[], completed_at=None)
    yield {"type": "response.created", "response": shell, "sequence_number": next(seq)}
    yield {"type": "response.in_progress", "response": shell, "sequence_number": next(seq)}
    for index, item in enumerate(response.get("output") or []):
        kind = item.get("type")
        if kind == "message":
            yield from _message(item, index, seq)
        elif kind == "function_call":
            yield from _function_call(item, index, seq)
        else:
            yield _event("response.output_item.added", seq, output_index=index, item=item)
            yield _event("response.output_item.done", seq, output_index=index, item=item)
    yield {"type": "response.completed", "response": response, "sequence_number": next(seq)}


def _event(kind: str, seq: count[int], **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields, "sequence_number": next(seq)}


def _message(item: dict[str, Any], index: int, seq: count[int]) -> Iterator[dict[str, Any]]:
    started = {**item, "status": "in_progress", "content": []}
    yield _event("response.output_item.added", seq, output_index=index, item=started)
    where = {"item_id": item["id"], "output_index": index}
    for part_index, part in enumerate(item.get("content") or []):
        at = {**where, "content_index": part_index}
        if part.get("type") != "output_text":
            yield _event("response.content_part.added", seq, **at, part=part)
            yield _event("response.content_part.done", seq, **at, part=part)
            continue
        empty = {**part, "text": ""}
        yield _event("response.content_part.added", seq, **at, part=empty)
        for delta in _deltas(part["text"]):
            yield _event("response.output_text.delta", seq, **at, delta=delta, logprobs=[])
        yield _event("response.output_text.done", seq, **at, text=part["text"], logprobs=[])
        yield _event("response.content_part.done", seq, **at, part=part)
    yield _event("response.output_item.done", seq, output_index=index, item=item)


def _function_call(item: dict[str, Any], index: int, seq: count[int]) -> Iterator[dict[str, Any]]:
    started = {**item, "arguments": "", "status": "in_progress"}
    yield _event("response.output_item.added", seq, output_index=index, item=started)
    where = {"item_id": item["id"], "output_index": index}
    arguments = item.get("arguments", "")
    for i in range(0, len(arguments), 24):
        yield _event(
            "response.function_call_arguments.delta", seq, **where, delta=arguments[i : i + 24]
        )
    yield _event(
        "response.function_call_arguments.done",
        seq,
        **where,
        name=item.get("name", ""),
        arguments=arguments,
    )
    yield _event("response.output_item.done", seq, output_index=index, item=item)


def encode(event: dict[str, Any]) -> bytes:
    """One event on the wire: `event: <type>`, `data: <json>`, a blank line."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def send(request: web.Request, response: dict[str, Any]) -> web.StreamResponse:
    """Streams `response` as server-sent events and ends the body."""
    out = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": "req_" + uuid.uuid4().hex,
        }
    )
    await out.prepare(request)
    for event in events(response):
        await out.write(encode(event))
    await out.write_eof()
    return out
