"""The stand-in's "model": a Responses API request body in, a deterministic Response out.

Pure: no I/O, no clock but `created_at`; ids hash the request (the server gives each answer fresh
ids). The HTTP server (runtime/gym_run/standin/server.py) serves it on `/v1/responses` and, through
runtime/gym_run/standin/chat.py, on `/v1/chat/completions`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from typing import Any

from gym_compile.canonical import canonical_json
from gym_run.defaults import default_of
from gym_run.standin import structured
from gym_run.standin.args import ArgGen
from gym_run.standin.judging import _judge_answer

# the stand_in_model schema's defaults: what the stand-in answers as when nothing says otherwise
DEFAULT_MODEL: str = default_of("responses_api_models", "stand_in_model", "model")
DEFAULT_LATENCY_MS: float = default_of("responses_api_models", "stand_in_model", "latency_ms")

_FILLER = {"tn", "tonight", "today", "tomorrow", "now", "right", "please", "rn"}
_PREFERRED_KEYS = ("description", "answer", "result", "summary", "text", "message", "output")


def text_of(content: Any) -> str:
    """Text of a message content: a plain string or a list of input_text/output_text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`input` as a list of items: a bare string is one user message, as in the real API."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [item for item in raw or [] if isinstance(item, dict)]


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user" and item.get("type", "message") == "message":
            return text_of(item.get("content"))
    return ""


def _hint_from_text(text: str) -> str:
    """A plausible string argument: the place after " in " or else the last word.

    "what's it like in sf?" -> "sf"; "how's the weather in new york?" -> "new york". Crude, but it
    makes demo transcripts read like a model answered.
    """
    lowered = f" {text.lower()}"
    at = lowered.find(" in ")
    if at >= 0:
        clause = re.split(r"[,.;:!?\n]", text[at + 3 :], maxsplit=1)[0].split()[:3]
        while clause and clause[-1].lower().strip("'\"") in _FILLER:
            clause.pop()
        words = [w.strip("'\"()[]{}") for w in clause]
    else:
        words = text.split()[-1:]
    return " ".join(w for w in (w.strip(".,;:!?'\"()[]{}") for w in words) if w)


def _function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    return [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]


def _normalised_tools(body: dict[str, Any]) -> list[Any]:
    """Function tools with the keys the Response schema requires (strict/parameters may be null)."""
    tools = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tool = {**tool, "strict": tool.get("strict"), "parameters": tool.get("parameters")}
        tools.append(tool)
    return tools


def _tool_output_text(output: Any) -> str:
    """A tool's output as prose: a JSON object's descriptive string field, else the raw text."""
    text = text_of(output)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(parsed, dict):
        strings = {k: v for k, v in parsed.items() if isinstance(v, str) and v}
        for wanted in _PREFERRED_KEYS:
            for key, value in strings.items():
                if wanted in key.lower():
                    return value
    return text


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _input_text(body: dict[str, Any], items: list[dict[str, Any]]) -> str:
    parts = [text_of(body.get("instructions"))]
    for item in items:
        parts.append(text_of(item.get("content")))
        if item.get("type") == "function_call":
            parts += [str(item.get("name", "")), str(item.get("arguments", ""))]
        if item.get("type") == "function_call_output":
            parts.append(text_of(item.get("output")))
    return "".join(parts)


def respond(body: dict[str, Any], *, always_call: bool = False) -> dict[str, Any]:
    """A request body -> a Response object. Pure and deterministic: ids hash the request (the
    server gives each answer fresh ids: runtime/gym_run/standin/server.py `fresh_ids`).

    always_call: answer a function call even after tool outputs (a model that never stops).
    """
    try:
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
    except UnicodeEncodeError:  # lone surrogates: still canonical, just ASCII-escaped
        ascii_json = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(ascii_json.encode()).hexdigest()

    def make_id(prefix: str) -> str:
        return prefix + hashlib.sha256(f"{digest}:{prefix}".encode()).hexdigest()[:24]

    items = input_items(body)
    user_text = _last_user_text(items)
    tools = _function_tools(body)
    choice = body.get("tool_choice")
    answered = not always_call and any(item.get("type") == "function_call_output" for item in items)
    output: dict[str, Any]
    if tools and not answered and choice != "none":
        forced = (
            choice.get("name")
            if isinstance(choice, dict) and choice.get("type") == "function"
            else None
        )
        tool = next((t for t in tools if forced and t.get("name") == forced), tools[0])
        params = tool.get("parameters")
        params = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        gen = ArgGen(params, _hint_from_text(user_text), tool.get("strict") is True)
        arguments = json.dumps(gen.value(params), ensure_ascii=False, separators=(",", ":"))
        output = {
            "type": "function_call",
            "id": make_id("fc_"),
            "call_id": make_id("call_"),
            "name": str(tool.get("name", "")),
            "arguments": arguments,
            "status": "completed",
        }
        out_text = output["name"] + arguments
    else:
        calls = [i for i in items if i.get("type") == "function_call_output"]
        outputs = [o.strip() for o in (_tool_output_text(i.get("output")) for i in calls)]
        text = _judge_answer(user_text)
        if text is None:
            text = " ".join(o for o in outputs if o) or f"You said: {user_text}".rstrip()
        text = structured.structured_text(structured.text_format(body), text) or text
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        output = {
            "type": "message",
            "id": make_id("msg_"),
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
        out_text = text
    in_tokens, out_tokens = _tokens(_input_text(body, items)), _tokens(out_text)
    now = int(time.time())

    def given(key: str, default: Any) -> Any:
        return default if body.get(key) is None else body[key]

    usage = {
        "input_tokens": in_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": in_tokens + out_tokens,
    }
    return {
        "id": make_id("resp_"),
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body.get("model") or DEFAULT_MODEL,
        "output": [output],
        "parallel_tool_calls": given("parallel_tool_calls", True),
        "tools": _normalised_tools(body),
        "tool_choice": given("tool_choice", "auto"),
        "metadata": given("metadata", {}),
        "temperature": given("temperature", 1.0),
        "top_p": given("top_p", 1.0),
        "text": structured.echoed(body),
        "previous_response_id": body.get("previous_response_id"),
        "usage": usage,
    }
