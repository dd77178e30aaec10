"""Chat Completions on the stand-in: a `/v1/chat/completions` body in, a chat completion out.

NeMo Gym's judges (`use_chat_completions_for_judge`) and some of its agents call a model server's
chat route. The stand-in has one "model" (`respond`, Responses-shaped); this module translates
the request into a Responses body and the Response back, so both routes answer alike: a tool call
when tools are offered and none was answered yet, else text (a judge's verdict, a JSON object for
a `response_format`).
"""

from __future__ import annotations

import uuid
from typing import Any

from gym_run.standin.faults import model_and_tools
from gym_run.standin.model import text_of


def check(body: Any) -> tuple[str, str | None] | None:
    """(message, param) for a chat body OpenAI would refuse first, in its words."""
    if not isinstance(body, dict):
        return f"Invalid body: expected a JSON object, but got {type(body).__name__} instead.", None
    messages = body.get("messages")
    if messages is None:
        return "Missing required parameter: 'messages'.", "messages"
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': expected a non-empty array of messages.", "messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"Missing required parameter: 'messages[{i}].role'.", f"messages[{i}].role"
    if (problem := model_and_tools(body)) is not None:
        return problem
    if body.get("stream") is True:
        return "The stand-in answers chat completions whole: set stream to false.", "stream"
    return None


def as_responses(body: dict[str, Any]) -> dict[str, Any]:
    """The Responses body that asks the same: messages as input items, tools, tool_choice, the
    answer's format and token cap."""
    items: list[dict[str, Any]] = []
    for message in body["messages"]:
        role, content = message["role"], message.get("content")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": str(message.get("tool_call_id", "")),
                    "output": text_of(content),
                }
            )
            continue
        if content is not None:
            items.append({"role": role, "content": text_of(content)})
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": str(call.get("id", "")),
                        "name": str(function.get("name", "")),
                        "arguments": str(function.get("arguments", "")),
                    }
                )
    out: dict[str, Any] = {"input": items, "tools": _tools(body.get("tools"))}
    for key in ("model", "temperature", "top_p", "metadata"):
        if body.get(key) is not None:
            out[key] = body[key]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out["tool_choice"] = {"type": "function", "name": choice["function"].get("name")}
    elif choice is not None:
        out["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, dict) else {}
        out["text"] = {"format": {"type": "json_schema", **spec}}
    elif isinstance(fmt, dict) and fmt.get("type") in ("json_object", "text"):
        out["text"] = {"format": {"type": fmt["type"]}}
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    """Chat's {type: function, function: {name, ...}} as the Responses API's flat function tool."""
    flat = []
    for tool in tools or []:
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, dict):
            flat.append({"type": "function", **function})
    return flat


def as_chat(response: dict[str, Any]) -> dict[str, Any]:
    """The Response as a chat completion (one choice): its text as the message content, its
    function calls as tool_calls, its usage in prompt/completion tokens."""
    text = [
        part.get("text", "")
        for item in response["output"]
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    ]
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in response["output"]
        if item.get("type") == "function_call"
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    usage = response["usage"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": response["created_at"],
        "model": response["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
