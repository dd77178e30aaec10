"""A model server's `timeouts` config in, aiohttp's limits out; defaults: the schema's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gym_run.defaults import model_defaults, with_defaults

_TIMEOUTS = model_defaults()["timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None disables a limit. Defaults: the schema's (timeouts.connect/read/total)."""

    connect: float | None = _TIMEOUTS["connect"]
    read: float | None = _TIMEOUTS["read"]
    total: float | None = _TIMEOUTS["total"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Timeouts:
        config = with_defaults(config, "timeouts")
        return cls(connect=config["connect"], read=config["read"], total=config["total"])

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )

    def capped(self, limit: float) -> Timeouts:
        """The same limits, none longer than `limit` (a preflight probe must answer quickly)."""
        return Timeouts(
            *(limit if v is None else min(v, limit) for v in (self.connect, self.read, self.total))
        )
