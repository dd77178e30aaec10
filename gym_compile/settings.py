"""The job's settings as link and costing use them: a value the globals schema refused (already
reported, located) falls back to its default, so no later stage meets `+num_repeats=two`, a
`limit: '5'` string or `+budget.max_usd=abc` where a number belongs (each was an internal error).
"""

from __future__ import annotations

from typing import Any


def count(value: Any, default: int | None, minimum: int = 0) -> int | None:
    """An integer of at least `minimum` (not a bool), else `default`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    return default


def number(value: Any) -> float | int | None:
    """A non-negative number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def fraction(value: Any) -> float | None:
    """A number from 0 to 1 (not a bool) as a float, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def limit(g: dict[str, Any]) -> int | None:
    """First N rows; 0, null or a refused value: all."""
    return count(g.get("limit"), None) or None


def num_repeats(g: dict[str, Any]) -> int:
    return count(g.get("num_repeats"), 1, minimum=1) or 1


def params(g: dict[str, Any]) -> dict[str, Any]:
    value = g.get("responses_create_params")
    return value if isinstance(value, dict) else {}


def budget(g: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    """{key: number or None} for each budget key; None without a budget mapping."""
    value = g.get("budget")
    if not isinstance(value, dict):
        return None
    return {k: number(value.get(k)) for k in keys}


def datasets(config: dict[str, Any]) -> list[dict[str, Any]]:
    """An agent's datasets that name a file (a malformed entry is reported by validate)."""
    value = config.get("datasets")
    if not isinstance(value, list):
        return []
    return [d for d in value if isinstance(d, dict) and text(d.get("jsonl_fpath"))]
