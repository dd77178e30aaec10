"""Token usage in any endpoint's shape in, our record shape out: one rollout's usage, summed per model server.

The one definition of the usage keys and of how usage adds up, shared by the agent loop, the judge,
the response cache, pricing, metrics and the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

USAGE_KEYS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def empty_usage() -> dict[str, int]:
    return dict.fromkeys(USAGE_KEYS, 0)


def normalise_usage(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Our record shape from our own keys, a raw Responses API `usage` object, or a Chat
    Completions one (prompt_tokens / completion_tokens).

    Lenient: endpoints differ in which details they fill in; anything not a positive int counts 0.
    """
    usage = usage if isinstance(usage, Mapping) else {}
    details_in = _mapping(usage.get("input_tokens_details") or usage.get("prompt_tokens_details"))
    details_out = _mapping(
        usage.get("output_tokens_details") or usage.get("completion_tokens_details")
    )
    raw = {
        "input_tokens": usage.get("input_tokens", usage.get("prompt_tokens")),
        "cached_input_tokens": usage.get("cached_input_tokens", details_in.get("cached_tokens")),
        "output_tokens": usage.get("output_tokens", usage.get("completion_tokens")),
        "reasoning_tokens": usage.get("reasoning_tokens", details_out.get("reasoning_tokens")),
        "total_tokens": usage.get("total_tokens"),
    }
    return {
        k: v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0
        for k, v in raw.items()
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def responses_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Record shape back to a Responses API `usage` object: what NeMo Gym puts in `response.usage`."""
    total = normalise_usage(usage)
    return {
        "input_tokens": total["input_tokens"],
        "input_tokens_details": {"cached_tokens": total["cached_input_tokens"]},
        "output_tokens": total["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": total["reasoning_tokens"]},
        "total_tokens": total["total_tokens"],
    }


def add_usage(into: dict[str, int], usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Sums `usage` into `into` (both in record shape); returns `into`."""
    for key, value in normalise_usage(usage).items():
        into[key] = into.get(key, 0) + value
    return into


def merge_usage_by_server(
    *parts: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, int]]:
    """{server: usage} maps summed server by server (policy + judge on one server add up)."""
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for server, usage in (part or {}).items():
            add_usage(merged.setdefault(server, empty_usage()), usage)
    return merged


def total_usage(by_server: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The sum over every server: what `_gym.usage` of a record holds."""
    total = empty_usage()
    for usage in by_server.values():
        add_usage(total, usage)
    return total


def billed_usage(
    usage_by_server: Mapping[str, Mapping[str, Any]],
    replayed_by_server: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, int]]:
    """What was paid for: usage minus what the response cache replayed (never below zero)."""
    billed = merge_usage_by_server(usage_by_server)
    for server, replayed in (replayed_by_server or {}).items():
        if server in billed:
            for key, value in normalise_usage(replayed).items():
                billed[server][key] = max(0, billed[server][key] - value)
    return billed


def record_billed(gym: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """A record's `_gym` -> {server: usage paid for}; a record without a per-server split counts
    its `usage` under the server "?" (so its tokens are never dropped). Not paid for (again):
    what the response cache replayed, and what reverify carried over from the old rollout."""
    by_server = gym.get("usage_by_server") or ({"?": gym["usage"]} if gym.get("usage") else {})
    billed = billed_usage(by_server, (gym.get("cache") or {}).get("saved_usage_by_server"))
    carried = (gym.get("reverify") or {}).get("carried_usage_by_server")
    return billed_usage(billed, carried) if carried else billed
