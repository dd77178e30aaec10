"""Responses the stand-in answered, kept for `previous_response_id` and `GET /v1/responses/{id}`.

OpenAI stores a response (unless `store: false`) with the input it answered; a later request
naming it continues from that input plus its output. The stand-in keeps the most recent
`capacity` of them and forgets the oldest first, so a long run's memory stays bounded; a request
naming a forgotten one gets OpenAI's 404, as an expired response would.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 1000


@dataclass(frozen=True)
class Stored:
    response: dict[str, Any]
    input: list[dict[str, Any]]  # everything the response answered, earlier turns included


class ResponseStore:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 0:
            raise ValueError("the response store's capacity must be >= 0")
        self.capacity = capacity
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self.evicted = 0

    def put(self, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        if self.capacity == 0:
            return
        self._items[response["id"]] = Stored(response, items)
        self._items.move_to_end(response["id"])
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def get(self, response_id: str) -> Stored | None:
        return self._items.get(response_id)

    def delete(self, response_id: str) -> bool:
        return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)

    def conversation(self, previous: Stored) -> list[dict[str, Any]]:
        """The input a follow-up continues from: the previous input, then the previous output."""
        return [*previous.input, *previous.response.get("output", [])]


def shown(response_id: str) -> str:
    """An id as an error message quotes it: a request can send a megabyte of id."""
    return response_id if len(response_id) <= 100 else response_id[:100] + "…"


def not_found(response_id: str) -> tuple[str, str, str]:
    """(message, param, code) of OpenAI's answer for an unknown previous_response_id."""
    return (
        f"Previous response with id '{shown(response_id)}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )
